"""Online search: bounds compiled to arrays (constraints.py), how chromosomes are scored (penalty.py),
and one registry of strategies (registry.py: the PONAS GA in ga.py, the exact ILP in exact.py), plus
NSGA-II fronts (pareto.py). Modules import deap and highspy only when used.
"""

from __future__ import annotations

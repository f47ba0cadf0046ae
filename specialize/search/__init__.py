"""Online search: bounds compiled to arrays, the PONAS GA, the exact ILP, and NSGA-II fronts.

`SOLVERS` is the registry of strategies that pick the answer; both always run, so every answer
carries the GA value, the optimum and the gap. Modules import deap and scipy only when used.
"""
from __future__ import annotations

SOLVERS = ("ga", "exact")
PENALTIES = ("hard", "soft")

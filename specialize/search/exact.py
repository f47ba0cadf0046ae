"""The exact optimum: a multiple-choice knapsack ILP solved by HiGHS through `scipy.optimize.milp`.

Binary x[l, i] = 1 when layer l takes candidate i; Σ_i x[l, i] = 1 per layer; every bound row is
linear in x; candidates filtered per layer get an upper bound of 0. Maximize Σ T_d[l, i] x[l, i].
When the per-layer best blocks already meet every bound they are the optimum and no ILP is needed.
scipy (about 0.5 s to import) is imported only when an ILP is solved.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from specialize.errors import SpecializeError
from specialize.search.constraints import Problem

MARGINS = (0.0, 1e-7, 1e-6)   # rows are tightened by this share of their range if HiGHS rounds past a limit


@dataclass(frozen=True)
class ExactResult:
    genes: np.ndarray | None      # [L] candidate indices, None when infeasible
    value: float | None           # Σ T_d of the optimum
    seconds: float
    status: str                   # "optimal" | "infeasible"


def solve_exact(problem: Problem, objective: np.ndarray | None = None, time_limit: float = 30.0) -> ExactResult:
    """Optimum of Σ objective (default: the score). Verified against the problem's own feasibility test."""
    start = time.perf_counter()
    objective = problem.score if objective is None else objective
    if problem.fixed_infeasible:
        return ExactResult(None, None, time.perf_counter() - start, "infeasible")
    best = np.where(problem.allowed, objective, -np.inf).argmax(axis=1)
    if problem.feasible(best[None])[0]:    # the per-layer best meets every bound: nothing to solve
        return ExactResult(best, float(problem.scores(best[None])[0]), time.perf_counter() - start, "optimal")
    for margin in MARGINS:
        genes = _milp(problem, objective, margin, time_limit)
        if genes is None or problem.feasible(genes[None])[0]:
            break
    else:
        raise SpecializeError("the exact solver's answer breaks a bound by rounding; loosen the bounds slightly")
    seconds = time.perf_counter() - start
    if genes is None:
        return ExactResult(None, None, seconds, "infeasible")
    return ExactResult(genes, float(problem.scores(genes[None])[0]), seconds, "optimal")


def _milp(problem: Problem, objective: np.ndarray, margin: float, time_limit: float) -> np.ndarray | None:
    from scipy.optimize import Bounds, LinearConstraint, milp

    layers, cands = objective.shape
    one_per_layer = np.kron(np.eye(layers), np.ones(cands))
    constraints = [LinearConstraint(one_per_layer, 1, 1)]
    if len(problem.row_lo):
        scale = problem.row_scale
        coef = problem.rows.reshape(len(scale), -1) / scale[:, None]
        slack = margin + np.zeros_like(scale)
        lo = (problem.row_lo - problem.row_fixed) / scale + slack
        hi = (problem.row_hi - problem.row_fixed) / scale - slack
        constraints.append(LinearConstraint(coef, lo, hi))
    res = milp(-objective.ravel(), integrality=np.ones(layers * cands), bounds=Bounds(0, problem.allowed.ravel()),
               constraints=constraints, options={"mip_rel_gap": 0.0, "time_limit": time_limit})
    if res.status == 2 or res.x is None:
        if res.status not in (0, 2):
            raise SpecializeError(f"the exact solver stopped without an answer: {res.message}")
        return None
    return res.x.reshape(layers, cands).argmax(axis=1)


def find_feasible(problem: Problem, rng: np.random.Generator) -> np.ndarray | None:
    """Any feasible chromosome (a random objective spreads the answers), or None if there is none."""
    return solve_exact(problem, objective=rng.random(problem.score.shape)).genes

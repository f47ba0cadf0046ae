"""The exact optimum: a multiple-choice knapsack ILP solved by HiGHS through its own binding, `highspy`.

Binary x[l, i] = 1 when layer l takes candidate i; Σ_i x[l, i] = 1 per layer; every bound row is
linear in x; candidates filtered per layer get an upper bound of 0. Maximize Σ T_d[l, i] x[l, i].
When the per-layer best blocks already meet every bound they are the optimum and no ILP is needed.

Answers are honest: "optimal" only when HiGHS proves it; when it stops at its time limit holding a
feasible point the answer is "not proven", with HiGHS's proven upper bound on the optimum and the
gap. HiGHS writes nothing (its console output is off before a model is passed). highspy imports in
about 0.02 s, against about 0.4 s for scipy.optimize.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from specialize.errors import SpecializeError
from specialize.search.constraints import Problem
from specialize.search.registry import Budget, SearchResult, register_strategy

MARGINS = (0.0, 1e-7, 1e-6)  # rows are tightened by this share of their range if HiGHS rounds past a limit
TIME_LIMIT = 30.0
FEASIBILITY = 1e-9  # HiGHS's row tolerance on rows scaled to their range: TOLERANCE in constraints.py
HIGHS_OPTIONS = {
    "output_flag": False,
    "log_to_console": False,
    "mip_rel_gap": 0.0,
    "threads": 1,
    "mip_feasibility_tolerance": FEASIBILITY,
    "primal_feasibility_tolerance": FEASIBILITY,
}


@dataclass(frozen=True)
class ExactResult:
    genes: np.ndarray | None  # [L] candidate indices, None when infeasible
    value: float | None  # Σ T_d of the answer
    seconds: float
    status: str  # "optimal" | "not proven" | "infeasible"
    bound: float | None = None  # proven upper bound on the optimum Σ T_d (equals value when optimal)
    method: str = "ILP"  # "ILP" | "per-layer best" (no bound binds: nothing to solve)

    @property
    def gap(self) -> float | None:
        """Proven bound minus the answer's value (0 when optimal)."""
        return None if self.value is None or self.bound is None else max(self.bound - self.value, 0.0)


@dataclass(frozen=True)
class _Solve:
    genes: np.ndarray | None
    status: str
    bound: float | None


def solve_exact(
    problem: Problem, objective: np.ndarray | None = None, time_limit: float = TIME_LIMIT, options: dict | None = None
) -> ExactResult:
    """Optimum of Σ objective (default: the score). Verified against the problem's own feasibility test.
    `options` go to HiGHS as they are (e.g. {"mip_max_nodes": 1}: any limit makes the answer "not proven")."""
    start = time.perf_counter()
    objective = problem.score if objective is None else objective
    if problem.fixed_infeasible:
        return ExactResult(None, None, time.perf_counter() - start, "infeasible")
    best = np.where(problem.allowed, objective, -np.inf).argmax(axis=1)
    if problem.feasible(best[None])[0]:  # the per-layer best meets every bound: nothing to solve
        value = float(problem.scores(best[None])[0])
        return ExactResult(best, value, time.perf_counter() - start, "optimal", value, "per-layer best")
    for margin in MARGINS:  # the retries share the time limit
        solved = _milp(problem, objective, margin, max(time_limit - (time.perf_counter() - start), 0.01), options or {})
        if solved.genes is None or problem.feasible(solved.genes[None])[0]:
            break
    else:
        raise SpecializeError("the exact solver's answer breaks a bound by rounding; loosen the bounds slightly")
    seconds = time.perf_counter() - start
    if solved.genes is None:
        return ExactResult(None, None, seconds, solved.status)
    value = float(problem.scores(solved.genes[None])[0])
    bound = value if solved.status == "optimal" else max(solved.bound, value)
    return ExactResult(solved.genes, value, seconds, solved.status, bound)


def _milp(problem: Problem, objective: np.ndarray, margin: float, time_limit: float, options: dict) -> _Solve:
    import highspy

    highs = highspy._Highs()  # the core binding: the Python wrapper prints a banner on construction
    for name, value in {**HIGHS_OPTIONS, "time_limit": float(time_limit), **options}.items():
        highs.setOptionValue(name, value)
    highs.passModel(_model(highspy, problem, objective, margin))
    highs.run()
    status, info = highs.getModelStatus(), highs.getInfo()
    has_point = info.primal_solution_status == highspy.kSolutionStatusFeasible
    if status == highspy.HighsModelStatus.kInfeasible:
        return _Solve(None, "infeasible", None)
    if not has_point:
        raise SpecializeError(
            f"the exact solver stopped without an answer ({highs.modelStatusToString(status)} "
            f"after {time_limit:g} s); loosen the bounds or give it more time"
        )
    genes = np.asarray(highs.getSolution().col_value).reshape(objective.shape).argmax(axis=1)
    proven = status == highspy.HighsModelStatus.kOptimal
    return _Solve(genes, "optimal" if proven else "not proven", -float(info.mip_dual_bound))


def _model(highspy, problem: Problem, objective: np.ndarray, margin: float):
    """One-per-layer rows, then each bound row scaled by its reachable range (and tightened by `margin`)."""
    layers, cands = objective.shape
    matrix = [np.kron(np.eye(layers), np.ones(cands))]
    lower, upper = [np.ones(layers)], [np.ones(layers)]
    if len(problem.row_lo):
        scale = problem.row_scale
        matrix.append(problem.rows.reshape(len(scale), -1) / scale[:, None])
        lo, hi = (problem.row_lo - problem.row_fixed) / scale, (problem.row_hi - problem.row_fixed) / scale
        slack = np.minimum(margin, np.where(np.isfinite(hi - lo), (hi - lo) / 2, np.inf))
        lower.append(lo + slack)
        upper.append(hi - slack)
    dense = np.concatenate(matrix)
    rows, cols = np.nonzero(dense)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = layers * cands, len(dense)
    lp.col_cost_ = -objective.ravel()
    lp.col_lower_, lp.col_upper_ = np.zeros(layers * cands), problem.allowed.ravel().astype(float)
    lp.row_lower_, lp.row_upper_ = _finite(np.concatenate(lower)), _finite(np.concatenate(upper))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.searchsorted(rows, np.arange(len(dense) + 1)).astype(np.int32)
    lp.a_matrix_.index_ = cols.astype(np.int32)
    lp.a_matrix_.value_ = dense[rows, cols]
    lp.integrality_ = [highspy.HighsVarType.kInteger] * (layers * cands)
    return lp


def _finite(values: np.ndarray) -> np.ndarray:
    """HiGHS reads ±1e30 and beyond as infinite."""
    return np.clip(values, -1e30, 1e30)


def top_k(problem: Problem, k: int, time_limit: float = TIME_LIMIT) -> list[ExactResult]:
    """The k best distinct architectures that meet every bound, best first (fewer if fewer exist):
    each is the optimum once the ones before it are cut off. The candidates a reranker (measured
    accuracy instead of the table's) would choose from."""
    found: list[ExactResult] = []
    for _ in range(k):
        result = solve_exact(problem, time_limit=time_limit)
        if result.genes is None:
            break
        found.append(result)
        problem = problem.excluding(result.genes)
    return found


def find_feasible(problem: Problem, rng: np.random.Generator, time_limit: float = TIME_LIMIT) -> np.ndarray | None:
    """Any feasible chromosome (a random objective spreads the answers), or None if there is none."""
    return solve_exact(problem, objective=rng.random(problem.score.shape), time_limit=time_limit).genes


@register_strategy("exact", exact=True, summary="exact ILP optimum (HiGHS); 'not proven' if its time limit runs out")
def exact_strategy(problem: Problem, evaluation, budget: Budget, seed: int) -> SearchResult:
    """The evaluation is not used: the ILP maximizes Σ T_d under the hard bounds themselves."""
    r = solve_exact(problem, time_limit=budget.time_limit_s)
    return SearchResult(r.genes, r.value, r.seconds, r.status, bound=r.bound, details={"method": r.method})

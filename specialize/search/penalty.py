"""How a search scores chromosomes: hard bounds, or EPNAS's soft penalty wrapped around the evaluation.

An `Evaluation` is what a strategy reads: `fitness` (higher is better), `accept` (children a
search keeps; the others are made again) and `allowed` (the candidates a gene may take).

- "hard" (PONAS): fitness is Σ T_d; a child is kept only if it meets every bound.
- "soft" (EPNAS Eq. 2-3): every child is kept; `SoftPenalty` wraps the evaluation, as DEAP's
  `tools.DeltaPenalty` decorates an evaluation function, multiplying predicted accuracy by
  V(U_i) = p^max(0, U_i/C_u,i - 1, C_l,i/U_i - 1) for every bound i, with p = 0.9.

Either way a strategy's answer is the best chromosome it saw that meets every bound.

Fitness is the table's score unless `accuracy` is given: an offline evaluator of measured accuracy
(`supernet.fitness.SupernetFitness`), called as `accuracy(pop, fidelity=1.0)`. The fitness functions made
here take that keyword (the share of validation images to use, for EcoNAS's cheaper evaluations) and the
table's ignores it; a plain `fitness(pop)` also works (`score_at` then calls it without one).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np

from specialize.registry import Registry
from specialize.search.constraints import Problem

SOFT_BASE = 0.9  # EPNAS's p_i, the same for every bound


@dataclass(frozen=True)
class Evaluation:
    penalty: str  # a key of PENALTIES
    fitness: Callable[..., np.ndarray]  # ([..., L] chromosomes, fidelity=1.0) -> [...], higher is better
    accept: Callable[[np.ndarray], np.ndarray]  # [N, L] -> [N] bool: children a search keeps
    allowed: np.ndarray  # [L, C] bool: candidates a gene may take


class SoftPenalty:
    """Wraps an evaluation function: fitness(pop) · Π_i base^violation_i (EPNAS Eq. 3).
    `evaluate` must be positive (predicted accuracy), so a violation always lowers it.
    A `fidelity` (see offline.py) reaches `evaluate` when it takes one."""

    def __init__(self, evaluate: Callable[..., np.ndarray], problem: Problem, base: float = SOFT_BASE):
        self.evaluate, self.problem, self.base = evaluate, problem, base
        self.takes_fidelity = accepts_fidelity(evaluate)

    def __call__(self, pop: np.ndarray, fidelity: float = 1.0) -> np.ndarray:
        score = score_at(self.evaluate, pop, fidelity, self.takes_fidelity)
        return score * self.base ** soft_violation(self.problem, pop)


def accepts_fidelity(fitness: Callable) -> bool:
    """Whether `fitness(pop, fidelity=...)` may be called: a parameter of that name, or **kwargs."""
    try:
        params = inspect.signature(fitness).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "fidelity" or p.kind == p.VAR_KEYWORD for p in params)


def score_at(fitness: Callable, pop: np.ndarray, fidelity: float, takes_fidelity: bool) -> np.ndarray:
    """fitness(pop, fidelity=...) where it takes a fidelity; plain fitness(pop) (every fidelity alike) where not."""
    return fitness(pop, fidelity=fidelity) if takes_fidelity else fitness(pop)


def soft_violation(problem: Problem, pop: np.ndarray) -> np.ndarray:
    """EPNAS Eq. 2 exponent summed over bounds: Σ_i max(0, U_i/C_u,i - 1, C_l,i/U_i - 1)."""
    values, total = problem.measure(pop), np.zeros(pop.shape[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in problem.bounds:
            u = values[b.metric]
            over = u / b.upper - 1 if b.upper is not None else np.zeros_like(u)
            under = b.lower / u - 1 if b.lower is not None else np.zeros_like(u)
            total += np.nan_to_num(np.maximum(0, np.maximum(over, under)), nan=0.0, posinf=1e6)
    return total


Fitness = Callable[..., np.ndarray]  # (pop [..., L], fidelity: float = 1.0) -> [...]


def hard_bounds(problem: Problem, best_accuracy: float = 1.0, accuracy: Fitness | None = None) -> Evaluation:
    def table_score(pop: np.ndarray, fidelity: float = 1.0) -> np.ndarray:
        """Σ T_d (the table has no cheaper evaluation: `fidelity` is ignored)."""
        return problem.scores(pop)

    return Evaluation("hard", table_score if accuracy is None else accuracy, problem.feasible, problem.allowed)


def soft_penalty(
    problem: Problem, best_accuracy: float = 1.0, accuracy: Fitness | None = None, base: float = SOFT_BASE
) -> Evaluation:
    def predicted_accuracy(pop: np.ndarray, fidelity: float = 1.0) -> np.ndarray:
        """Predicted accuracy, kept positive: the best network's plus Σ T_d (`fidelity` is ignored)."""
        return np.maximum(best_accuracy + problem.scores(pop), 1e-6)

    def accept_all(pop: np.ndarray) -> np.ndarray:
        return np.ones(len(pop), dtype=bool)

    # Bounds become penalties, but the space's own mask (skip only where shapes match) stays hard.
    return Evaluation(
        "soft",
        SoftPenalty(predicted_accuracy if accuracy is None else accuracy, problem, base),
        accept_all,
        problem.structural.copy(),
    )


PENALTIES: Registry[Callable[..., Evaluation]] = Registry(
    "penalty", "penalties", {"hard": hard_bounds, "soft": soft_penalty}
)


def get_penalty(name: str) -> Callable[..., Evaluation]:
    return PENALTIES.lookup(name)

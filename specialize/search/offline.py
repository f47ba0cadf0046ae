"""What an offline strategy spends: distinct architectures scored by an expensive evaluator.

`Evaluations` wraps an `Evaluation` (see `penalty.py`) whose fitness may be the table's score (cheap,
used by tests and the online layer) or supernet accuracy (`supernet/fitness.py`). It caches scores by
chromosome, counts distinct chromosomes scored against `Budget.evaluations`, keeps the best one that meets
every bound, and records the history every strategy returns. Numpy only.
"""
from __future__ import annotations

import time

import numpy as np

from specialize.search.constraints import Problem
from specialize.search.penalty import Evaluation
from specialize.search.registry import SearchResult


class Evaluations:
    """Cached, counted scoring of chromosomes: at most `limit` distinct ones are ever scored."""

    def __init__(self, problem: Problem, evaluation: Evaluation, limit: int):
        self.problem, self.evaluation, self.limit = problem, evaluation, limit
        self.cache: dict[tuple[int, ...], float] = {}
        self.best_genes: np.ndarray | None = None
        self.best_value: float | None = None
        self.history: list[dict] = []
        self.start = time.perf_counter()

    @property
    def used(self) -> int:
        return len(self.cache)

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    def known(self, genes: np.ndarray) -> bool:
        return tuple(int(g) for g in genes) in self.cache

    def __call__(self, pop: np.ndarray) -> np.ndarray:
        """Fitness of each chromosome of `pop` [N, L]: cached ones free, new ones while the budget lasts;
        chromosomes past the budget get -inf (a strategy should stop when `remaining` is 0)."""
        pop = np.atleast_2d(np.asarray(pop, dtype=np.int64))
        keys = [tuple(int(g) for g in row) for row in pop]
        new = [i for i, k in enumerate(keys) if k not in self.cache]
        new = list(dict.fromkeys(keys[i] for i in new))[:max(self.remaining, 0)]
        if new:
            genes = np.array(new, dtype=np.int64)
            for key, score, ok in zip(new, self.evaluation.fitness(genes), self.problem.feasible(genes)):
                self.cache[key] = float(score)
                if ok and (self.best_value is None or score > self.best_value):
                    self.best_genes, self.best_value = np.array(key), float(score)
                self.history.append({"evaluations": len(self.cache), "best": self.best_value})
        return np.array([self.cache.get(k, -np.inf) for k in keys])

    def result(self, details: dict | None = None) -> SearchResult:
        """The best chromosome scored that meets every bound, as a SearchResult whose `value` is its Σ T_d (as
        for every strategy) and `details["fitness"]` its score here; "not found" when none did (a heuristic
        cannot prove bounds infeasible). `details["best_scored"]` is the fittest chromosome scored."""
        seconds = time.perf_counter() - self.start
        info = {"evaluations": self.used, "evaluations_per_second": self.used / max(seconds, 1e-9), **(details or {})}
        if self.best_genes is None:
            fittest = max(self.cache, key=self.cache.get, default=None)
            return SearchResult(None, None, seconds, "not found", history=self.history,
                                details={**info, "best_scored": None if fittest is None else list(fittest)})
        value = float(self.problem.scores(self.best_genes[None])[0])
        return SearchResult(self.best_genes, value, seconds, "heuristic", history=self.history,
                            details={**info, "fitness": self.best_value})

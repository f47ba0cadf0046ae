"""What an offline strategy spends: evaluations of architectures by an expensive evaluator.

`Evaluations` wraps an `Evaluation` (see `penalty.py`) whose fitness may be the table's score (cheap,
used by tests and the online layer) or supernet accuracy (`supernet/fitness.py`). It caches scores by
chromosome, counts what it spent against `Budget.evaluations`, keeps the best one that meets every bound,
and records the history every strategy returns. Numpy only.

Fidelity: an expensive fitness may take `fitness(pop, fidelity=f)`, f in (0, 1], a cheaper, noisier score
(a share f of the validation images). `evaluations(pop, fidelity=f)` passes f on only when the fitness
accepts it (the table's score does not, and scores alike at every fidelity), caches per (architecture,
fidelity), and charges f per new score: the budget is in evaluation units, one full evaluation each.
The answer is the best chromosome meeting every bound among those scored at full fidelity (1.0); only
when none was does it fall back to the best at a lower fidelity (`details["answer_fidelity"]` says which).
Full-fidelity scores are kept in `cache` (architecture -> score), lower ones in `partial`.
"""

from __future__ import annotations

import time

import numpy as np

from specialize.search.constraints import Problem
from specialize.search.penalty import Evaluation, accepts_fidelity, score_at
from specialize.search.registry import SearchResult


FULL = 1.0
SLACK = 1e-9  # budget units: 1/3 + 1/3 + 1/3 may add up to a hair over 1


class Evaluations:
    """Cached, counted scoring of chromosomes: at most `limit` evaluation units are ever spent."""

    def __init__(self, problem: Problem, evaluation: Evaluation, limit: float):
        self.problem, self.evaluation, self.limit = problem, evaluation, limit
        self.cache: dict[tuple[int, ...], float] = {}  # full-fidelity scores
        self.partial: dict[tuple[tuple[int, ...], float], float] = {}  # (architecture, fidelity < 1) -> score
        self.spent = 0.0
        self.spent_by_fidelity: dict[float, float] = {}
        self.best_genes: np.ndarray | None = None
        self.best_value: float | None = None
        self.cheap_best: tuple[np.ndarray, float, float] | None = None  # (genes, score, fidelity) below full
        self.history: list[dict] = []
        self.takes_fidelity = accepts_fidelity(evaluation.fitness)
        self.start = time.perf_counter()

    @property
    def used(self) -> float:
        """Evaluation units spent (distinct architectures, at full fidelity)."""
        return self.spent

    @property
    def left(self) -> float:
        """Evaluation units not spent yet."""
        return self.limit - self.spent

    @property
    def remaining(self) -> int:
        """Full-fidelity evaluations the budget still pays for (the distinct architectures left, without fidelity)."""
        return self.affordable(FULL)

    def affordable(self, fidelity: float = FULL) -> int:
        """How many new scores at `fidelity` the budget still pays for."""
        return max(int((self.left + SLACK) / fidelity), 0)

    def known(self, genes: np.ndarray, fidelity: float = FULL) -> bool:
        fidelity = _check_fidelity(fidelity)
        return _key(genes, fidelity) in self._store(fidelity)

    def _store(self, fidelity: float) -> dict:
        return self.cache if fidelity == FULL else self.partial

    def __call__(self, pop: np.ndarray, fidelity: float = FULL) -> np.ndarray:
        """Fitness of each chromosome of `pop` [N, L] at `fidelity`: cached ones free, new ones while the budget
        lasts (each costs `fidelity`); chromosomes past the budget get -inf (stop when `affordable` is 0)."""
        level = _check_fidelity(fidelity)
        pop = np.atleast_2d(np.asarray(pop, dtype=np.int64))
        store, keys = self._store(level), [_key(row, level) for row in pop]  # rows of int64: tolist gives ints
        new = list(dict.fromkeys(k for k in keys if k not in store))[: self.affordable(fidelity)]
        if new:
            self._score(np.array([_genes(k, level) for k in new], dtype=np.int64), new, float(fidelity), level)
        return np.array([store.get(k, -np.inf) for k in keys])

    def _score(self, genes: np.ndarray, keys: list, fidelity: float, level: float) -> None:
        """Score new chromosomes at `fidelity` (charged as given; `level` is its rounded cache key)."""
        scores = score_at(self.evaluation.fitness, genes, fidelity, self.takes_fidelity)
        store = self._store(level)
        for row, key, score, ok in zip(genes, keys, scores, self.problem.feasible(genes)):
            store[key] = float(score)
            self.spent += fidelity
            self.spent_by_fidelity[level] = self.spent_by_fidelity.get(level, 0.0) + fidelity
            if ok:
                self._keep_best(row, float(score), level)
            self.history.append({"evaluations": self.spent, "fidelity": level, "best": self.best_value})

    def _keep_best(self, genes: np.ndarray, score: float, fidelity: float) -> None:
        if fidelity == FULL and (self.best_value is None or score > self.best_value):
            self.best_genes, self.best_value = genes.copy(), score
        elif fidelity < FULL and (
            self.cheap_best is None or (fidelity, score) > (self.cheap_best[2], self.cheap_best[1])
        ):
            self.cheap_best = (genes.copy(), score, fidelity)  # the highest fidelity first, then the score

    def result(self, details: dict | None = None) -> SearchResult:
        """The best chromosome scored that meets every bound (at full fidelity when any was), as a SearchResult
        whose `value` is its Σ T_d (as for every strategy) and `details["fitness"]` its score here; "not found"
        when none did (a heuristic cannot prove bounds infeasible). `details["best_scored"]` is then the fittest
        chromosome scored."""
        seconds = time.perf_counter() - self.start
        info = {
            "evaluations": self.spent,
            "architectures": len(set(self.cache) | {arch for arch, _ in self.partial}),
            "evaluations_per_second": self.spent / max(seconds, 1e-9),
            "evaluations_by_fidelity": {f"{f:.4g}": units for f, units in sorted(self.spent_by_fidelity.items())},
            **(details or {}),
        }
        fittest = max(self.cache, key=self.cache.get, default=None)
        if fittest is not None:
            info.update(fittest=list(fittest), fittest_value=self.cache[fittest])  # at full fidelity, any bounds
        genes, value, fidelity = self.answer()
        if genes is None:
            scored = {**self.cache, **{k: v for (k, _), v in self.partial.items()}}
            fittest = max(scored, key=scored.get, default=None)
            return SearchResult(
                None,
                None,
                seconds,
                "not found",
                history=self.history,
                details={**info, "best_scored": None if fittest is None else list(fittest)},
            )
        table_value = float(self.problem.scores(np.asarray(genes)[None])[0])
        return SearchResult(
            np.asarray(genes),
            table_value,
            seconds,
            "heuristic",
            history=self.history,
            details={**info, "fitness": value, "answer_fidelity": fidelity},
        )

    def answer(self) -> tuple[np.ndarray | None, float | None, float | None]:
        """(genes, score, fidelity) of the answer: the best full-fidelity one meeting every bound, else the best
        cheaper one."""
        if self.best_genes is not None:
            return self.best_genes, self.best_value, FULL
        return self.cheap_best if self.cheap_best is not None else (None, None, None)


def _check_fidelity(fidelity: float) -> float:
    if not 0 < fidelity <= FULL:
        raise ValueError(f"fidelity {fidelity} is outside (0, 1]")
    return round(float(fidelity), 9)


def _key(genes: np.ndarray, fidelity: float):
    """The cache key of a chromosome at a (checked) fidelity."""
    arch = tuple(np.asarray(genes, dtype=np.int64).tolist())
    return arch if fidelity == FULL else (arch, fidelity)


def _genes(key, fidelity: float) -> tuple[int, ...]:
    return key if fidelity == FULL else key[0]

"""Accuracy loss versus latency or MACs: NSGA-II (DEAP `selNSGA2`) over the same operators as the GA.

Children come from the GA toolbox (pairs, one-point crossover, 0.1 mutation, infeasible children made
again), so every point meets the other bounds. Parents and children are ranked by `selNSGA2`
(maximize Σ T_d, minimize the objective); every non-dominated chromosome seen goes to an archive,
which is the front returned. Labelled points (most accurate, knee, cheapest) are checked against
the exact solver at their own cost.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from deap import creator, tools

from specialize.search.constraints import Problem
from specialize.search.exact import solve_exact
from specialize.search.ga import build_toolbox

OBJECTIVES = {"latency": "latency_ms", "macs": "macs"}


@dataclass(frozen=True)
class RawFront:
    genes: np.ndarray        # [M, L], sorted by cost
    scores: np.ndarray       # [M] Σ T_d
    costs: np.ndarray        # [M] objective value
    labels: dict[int, str]   # index into the front -> label
    optimum: dict[int, float]  # index -> exact optimum of Σ T_d at that cost
    seconds: float


def nsga2(problem: Problem, metric: str, seed: int = 0, population: int = 48, generations: int = 200) -> RawFront:
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    toolbox = build_toolbox(problem, rng, parents=population)
    toolbox.register("select", _select_nsga2)
    cost_table, fixed = problem.linear[metric]
    def evaluate(pop: np.ndarray) -> np.ndarray:
        return np.stack([problem.scores(pop), problem.gather(cost_table, pop).sum(axis=-1) + fixed], axis=1)
    pop, _ = toolbox.population(population)
    archive = pop
    for gen in range(generations):
        children, _ = toolbox.breed(pop[None], toolbox.draw())
        children = children[0]
        both = np.concatenate([pop, children])
        pop = both[toolbox.select(evaluate(both), population)]
        archive = _nondominated(np.concatenate([archive, children]), evaluate)
    values = evaluate(archive)
    order = np.argsort(values[:, 1], kind="stable")
    archive, values = archive[order], values[order]
    labels = _labels(values)
    optimum = {i: solve_exact(problem.capped(metric, values[i, 1])).value for i in labels}
    return RawFront(archive, values[:, 0], values[:, 1], labels, optimum, time.perf_counter() - start)


def _select_nsga2(values: np.ndarray, k: int) -> np.ndarray:
    """Indices chosen by DEAP's selNSGA2 (non-dominated sorting, then crowding distance)."""
    individuals = []
    for i, v in enumerate(values):
        ind = creator.FrontChromosome([i])
        ind.fitness.values = (float(v[0]), float(v[1]))
        individuals.append(ind)
    return np.array([ind[0] for ind in tools.selNSGA2(individuals, k)])


def _nondominated(pop: np.ndarray, evaluate) -> np.ndarray:
    pop = np.unique(pop, axis=0)
    v = evaluate(pop)
    s, c = v[:, 0], v[:, 1]
    dominated = ((s[None] >= s[:, None]) & (c[None] <= c[:, None]) & ((s[None] > s[:, None]) | (c[None] < c[:, None]))).any(axis=1)
    return pop[~dominated]


def _labels(values: np.ndarray) -> dict[int, str]:
    """Most accurate, cheapest, and the knee (farthest from the line joining them, in normalized units)."""
    s, c = values[:, 0], values[:, 1]
    labels = {int(np.argmax(s)): "most accurate", int(np.argmin(c)): "cheapest"}
    span_s, span_c = np.ptp(s) or 1.0, np.ptp(c) or 1.0
    x, y = (c - c.min()) / span_c, (s - s.min()) / span_s
    knee = int(np.argmax(y - x))     # the line runs from (0, 0), the cheapest, to (1, 1), the most accurate
    labels.setdefault(knee, "knee")
    return labels

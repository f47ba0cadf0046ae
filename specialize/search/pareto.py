"""Accuracy loss versus latency or MACs: NSGA-II (DEAP `selNSGA2`) over the same operators as the GA.

Children come from the GA toolbox (pairs, one-point crossover, 0.1 mutation, infeasible children made
again), so every point meets the other bounds. Parents and children are ranked by `selNSGA2`
(maximize Σ T_d, minimize the objective); every non-dominated chromosome seen goes to an archive,
which is the front returned. The exact optimum under the other bounds is in the first population,
so the front's accurate end is the optimum. Scores within NOISE of each other count as equal (sums
of the same numbers in another order differ in the last bits), so a costlier point that is better
only by float noise is dropped. Labelled points (most accurate, knee, cheapest) are checked against
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
NOISE = 1e-12  # Σ T_d closer than this is one value; costs closer than NOISE of their largest are one value


@dataclass(frozen=True)
class RawFront:
    genes: np.ndarray  # [M, L], sorted by cost
    scores: np.ndarray  # [M] Σ T_d
    costs: np.ndarray  # [M] objective value
    labels: dict[int, str]  # index into the front -> label
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
    pop[0] = solve_exact(problem).genes  # the accurate end of the front: the optimum under the other bounds
    archive = _nondominated(pop, evaluate)
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
    return pop[nondominated(v[:, 0], v[:, 1])]


def nondominated(scores: np.ndarray, costs: np.ndarray, noise: float = NOISE) -> np.ndarray:
    """[N] mask of the points no other point dominates (higher score, lower cost), where scores within
    `noise` and costs within `noise` of the largest cost are equal; of equal points the first stays."""
    cost_noise = noise * max(float(np.abs(costs).max()), 1e-300)
    ds, dc = scores[None, :] - scores[:, None], costs[None, :] - costs[:, None]  # [i, j]: j against i
    no_worse = (ds >= -noise) & (dc <= cost_noise)
    better = (ds > noise) | (dc < -cost_noise)
    order = np.arange(len(scores))
    equal_before = no_worse & ~better & (order[None, :] < order[:, None])
    return ~((no_worse & better) | equal_before).any(axis=1)


def _labels(values: np.ndarray) -> dict[int, str]:
    """Most accurate, cheapest, and the knee (farthest from the line joining them, in normalized units)."""
    s, c = values[:, 0], values[:, 1]
    labels = {int(np.argmax(s)): "most accurate", int(np.argmin(c)): "cheapest"}
    span_s, span_c = np.ptp(s) or 1.0, np.ptp(c) or 1.0
    x, y = (c - c.min()) / span_c, (s - s.min()) / span_s
    knee = int(np.argmax(y - x))  # the line runs from (0, 0), the cheapest, to (1, 1), the most accurate
    labels.setdefault(knee, "knee")
    return labels

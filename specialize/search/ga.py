"""PONAS §3.3 genetic algorithm over the accuracy-loss table, on a DEAP toolbox with numpy operators.

A chromosome is one candidate index per layer; its fitness is Σ_l T_d[l, g_l] (maximize: least
accuracy loss). 20 feasible chromosomes start; each generation the top 10 are shuffled into 5 pairs,
each pair makes two children by one-point crossover, each gene then mutates with probability 0.1;
a child that breaks a bound is made again (FIRST_TRIES tries at once, then ROUNDS rounds of `tries`
more; then it is repaired by greedy descent on the bound violation, and if that fails its parent
stays). Parents and children form the next 20; since parents survive, the best chromosome ever seen
is in the final population. 1,000 generations.

Additions to the paper, each measured by `benchmarks/online.py`:
- ISLANDS independent populations (an island model without migration; ring migration did not help)
  run side by side in the same numpy calls; the best island wins. One 20-chromosome population
  converges early: its 95th-percentile gap to the optimum was about 1% of the loss range.
- Against collapse into copies: a child equal to one of its island's parents is made again, and one
  equal to its own parents first gets one more mutated gene; the first population comes from random
  chromosomes repaired the same way (an ILP feasibility answer seeds it if none is found).
- Polish: each island's winner takes the best feasible change of one or two genes until none helps
  (`GAResult.value_before_polish` keeps the GA's own value).

The operators are registered on a DEAP `Toolbox` but work on whole populations as [I, N, L] int arrays
(DEAP's per-individual objects would cost more than the whole 0.3 s budget at 1,000 generations).
With `penalty="soft"` (EPNAS Eq. 2-3) no child is rejected: fitness is the predicted accuracy times
Π_i p^max(0, U_i/C_u,i - 1, C_l,i/U_i - 1) with p = 0.9, and the winner is the best feasible one seen.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from deap import base, creator

from specialize.search.constraints import Problem
from specialize.search.exact import find_feasible
from specialize.search.reach import explain_infeasible

POPULATION, PARENTS, MUTATION, SOFT_BASE = 20, 10, 0.1, 0.9
ISLANDS = 6          # independent populations
FIRST_TRIES = 4      # tries per pair made at once each generation
ROUNDS = 1           # further rounds of `tries` for pairs whose children were all rejected


@dataclass(frozen=True)
class GAResult:
    genes: np.ndarray | None          # [L] best chromosome (None: soft search never met every bound)
    value: float | None               # its Σ T_d
    seconds: float
    generations: int
    evaluations: int
    failed_children: int              # children whose regeneration cap ran out (the parent stayed)
    seeded_by_solver: bool            # random sampling + repair found too few feasible starts
    value_before_polish: float | None = None   # the GA's own best, before the 2-exchange polish
    history: list[dict] = field(default_factory=list, repr=False)  # best value every 10 generations


@dataclass(frozen=True)
class Genome:
    """Per-layer allowed candidates, laid out for vectorized sampling and mutation."""

    choices: np.ndarray               # [L, Cmax] allowed candidate indices (padded by repetition)
    count: np.ndarray                 # [L] number of allowed candidates
    moves: np.ndarray                 # [L, C, Cmax] candidate reached from g by moving s places along the list
    weights: np.ndarray               # [L] random int64 weights: chromosome @ weights identifies it
    layers: np.ndarray                # [L] 0..L-1

    @classmethod
    def from_mask(cls, allowed: np.ndarray, rng: np.random.Generator) -> "Genome":
        layers, (_, cands) = np.arange(len(allowed)), allowed.shape
        count = allowed.sum(axis=1)
        choices = np.stack([np.resize(np.flatnonzero(row), cands) for row in allowed])
        position = np.cumsum(allowed, axis=1) - 1
        places = (position[:, :, None] + np.arange(cands)) % count[:, None, None]
        moves = choices[layers[:, None, None], places]
        return cls(choices, count, moves, rng.integers(1, 2**62, size=len(count)), layers)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        picks = (rng.random((n, len(self.count))) * self.count).astype(np.int64)
        return self.choices[self.layers, picks]


@dataclass(frozen=True)
class Draws:
    """The random numbers of one generation for every island (pairings, cuts, mutations), T tries per pair."""

    order: np.ndarray                 # [I, parents] how each island's parents are paired (empty on a retry)
    head: np.ndarray                  # [I*P, T, 1, L] True: the child keeps its first parent's gene
    hit: np.ndarray                   # [I*P, T, 2, L] True: the gene mutates
    step: np.ndarray                  # [I*P, T, 2, L] how far along its layer's allowed list it moves
    nudge: np.ndarray                 # [I*P, T, 2, L] one gene per child, mutated too if the child copies a parent


class DrawPool:
    """Random numbers drawn `block` generations at a time (one numpy call each, not a handful per
    generation): `next()` hands out one generation's worth, `first` tries per pair; `retry(count)`
    draws `tries` more for each of `count` pairs whose children were rejected."""

    def __init__(self, genome: Genome, rng: np.random.Generator, islands: int, parents: int, first: int,
                 tries: int, rate: float, block: int = 50):
        self.genome, self.rng, self.block, self.rate = genome, rng, block, rate
        self.islands, self.parents, self.first, self.tries = islands, parents, first, tries
        self.used, self.stock = block, ()

    def next(self) -> Draws:
        if self.used == self.block:
            order = self.rng.random((self.block, self.islands, self.parents)).argsort(axis=-1)
            self.stock, self.used = (order, *self._cross_and_mutate((self.block, self.islands * (self.parents // 2), self.first))), 0
        draws = Draws(*(a[self.used] for a in self.stock))
        self.used += 1
        return draws

    def retry(self, count: int) -> Draws:
        return Draws(np.empty(0), *self._cross_and_mutate((count, self.tries)))

    def _cross_and_mutate(self, lead: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        """head [*lead, 1, L] (one-point crossover cut); hit, step and nudge [*lead, 2, L] (mutations)."""
        layers, count = len(self.genome.count), self.genome.count
        shape = (*lead, 2, layers)
        cut = self.rng.integers(1, max(layers, 2), size=(*lead, 1, 1))
        step = 1 + (self.rng.random(shape) * np.maximum(count - 1, 1)).astype(np.int64)
        nudge = np.arange(layers) == self.rng.integers(0, layers, size=(*lead, 2, 1))
        return np.arange(layers) < cut, self.rng.random(shape) < self.rate, step, nudge


def create_classes() -> None:
    """DEAP's creator is global state: make its classes once."""
    if not hasattr(creator, "FitnessLoss"):
        creator.create("FitnessLoss", base.Fitness, weights=(1.0,))
        creator.create("Chromosome", list, fitness=creator.FitnessLoss)
        creator.create("FitnessFront", base.Fitness, weights=(1.0, -1.0))
        creator.create("FrontChromosome", list, fitness=creator.FitnessFront)


def build_toolbox(problem: Problem, rng: np.random.Generator, penalty: str = "hard", best_accuracy: float = 1.0,
                  parents: int = PARENTS, islands: int = 1, tries: int = 8, rounds: int = ROUNDS) -> base.Toolbox:
    """The one place search operators are declared (the Pareto search adds NSGA-II selection on top)."""
    create_classes()
    soft = penalty == "soft"
    genome = Genome.from_mask(np.ones_like(problem.allowed) if soft else problem.allowed, rng)
    toolbox = base.Toolbox()
    toolbox.register("population", init_population, problem, genome, rng, soft=soft)
    if soft:
        toolbox.register("evaluate", soft_reward, problem, best_accuracy)
    else:
        toolbox.register("evaluate", problem.scores)
    toolbox.register("select", select_best)
    pool = DrawPool(genome, rng, islands, parents, FIRST_TRIES, tries, MUTATION)
    toolbox.register("draw", pool.next)
    toolbox.register("redraw", pool.retry)
    toolbox.register("mate", one_point_crossover)
    toolbox.register("mutate", mutate, genome)
    toolbox.register("accept", accept_all if soft else problem.feasible)
    toolbox.register("repair", (lambda pop: pop) if soft else lambda pop: repair(problem, rng, pop))
    toolbox.register("breed", breed, toolbox, genome, rounds)
    return toolbox


def accept_all(pop: np.ndarray) -> np.ndarray:
    return np.ones(len(pop), dtype=bool)


def select_best(fitness: np.ndarray, k: int) -> np.ndarray:
    """Per island, indices of the k fittest, best first (stable: ties keep population order)."""
    return np.argsort(-fitness, axis=-1, kind="stable")[..., :k]


def one_point_crossover(pairs: np.ndarray, head: np.ndarray) -> np.ndarray:
    """pairs [P, 2, L], head [P, T, 1, L] -> [P, T, 2, L]: both children of a cut, T tries per pair."""
    pairs = pairs[:, None]
    return np.where(head, pairs, pairs[:, :, ::-1])


def mutate(genome: Genome, pop: np.ndarray, hit: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Where `hit`, a gene moves `step` places along its layer's allowed list (to another candidate)."""
    cands = genome.moves.shape[1]
    return np.where(hit, np.take(genome.moves, (genome.layers * cands + pop) * cands + step), pop)


def breed(toolbox: base.Toolbox, genome: Genome, rounds: int, parents: np.ndarray, draws: Draws) -> tuple[np.ndarray, int]:
    """parents [I, n, L] -> children [I, n, L]: two per pair, pairs within an island. A child that breaks
    a bound or copies one of its island's parents is made again: `rounds` more rounds of `tries` each
    for the pairs still missing a child, then a repair; failing that its parent stays. A child that
    copies its own parents first gets one more mutated gene. Returns the children and how many fell back."""
    islands, n, layers = parents.shape
    pairs = parents[np.arange(islands)[:, None], draws.order].reshape(-1, 2, layers)   # [I*P, 2, L]
    known = np.repeat(parents @ genome.weights, n // 2, axis=0)                                # [I*P, n]
    own = pairs @ genome.weights                                                                # [I*P, 2]
    children, done = pairs.copy(), np.zeros(pairs.shape[:2], dtype=bool)
    todo, d = np.arange(len(pairs)), draws
    for attempt in range(rounds + 1):
        kids = toolbox.mutate(toolbox.mate(pairs[todo], d.head), d.hit, d.step)                 # [t, T, 2, L]
        copies = ((kids @ genome.weights)[..., None] == own[todo, None, None]).any(axis=-1)
        kids = toolbox.mutate(kids, copies[..., None] & d.nudge, d.step)
        new = ~((kids @ genome.weights)[..., None] == known[todo, None, None]).any(axis=-1)
        ok = toolbox.accept(kids.reshape(-1, layers)).reshape(kids.shape[:3]) & new & ~done[todo, None]
        found = ok.any(axis=1)
        picked = kids[np.arange(len(todo))[:, None], ok.argmax(axis=1), np.arange(2)]
        children[todo[:, None], np.arange(2)] = np.where(found[..., None], picked, children[todo])
        done[todo] |= found
        left = ~done[todo].all(axis=1)
        if not left.any():
            break
        todo, last = todo[left], kids[left]
        if attempt < rounds:
            d = toolbox.redraw(len(todo))
    if not done.all():                          # the cap ran out: try repairing the last children
        idx = np.argwhere(~done)
        fixed = toolbox.repair(last[np.searchsorted(todo, idx[:, 0]), 0, idx[:, 1]])
        good = toolbox.accept(fixed) & ~((fixed @ genome.weights)[:, None] == known[idx[:, 0]]).any(axis=1)
        children[idx[good, 0], idx[good, 1]] = fixed[good]
        done[idx[good, 0], idx[good, 1]] = True
    return children.reshape(islands, n, layers), int((~done).sum())


def soft_reward(problem: Problem, best_accuracy: float, pop: np.ndarray) -> np.ndarray:
    """EPNAS Eq. 3: predicted accuracy (made positive) times Π_i 0.9^violation_i."""
    accuracy = np.maximum(best_accuracy + problem.scores(pop), 1e-6)
    return accuracy * SOFT_BASE ** soft_violation(problem, pop)


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


def init_population(problem: Problem, genome: Genome, rng: np.random.Generator, n: int, soft: bool = False,
                    batches: int = 8, batch: int = 64) -> tuple[np.ndarray, bool]:
    """n feasible chromosomes: random + repair (capped); else walk out from a solver-found feasible one."""
    if soft:
        return genome.sample(rng, n), False
    found = np.zeros((0, problem.num_layers), dtype=np.int64)
    for _ in range(batches):
        pop = repair(problem, rng, genome.sample(rng, batch))
        found = np.concatenate([found, pop[problem.feasible(pop)]])
        if len(found) >= n:
            return found[:n], False
    if not len(found):
        start = find_feasible(problem, rng)
        if start is None:
            raise explain_infeasible(problem)
        found = start[None]
    return _walk(problem, genome, rng, found, n), True


def _walk(problem: Problem, genome: Genome, rng: np.random.Generator, pop: np.ndarray, n: int,
          steps: int = 50) -> np.ndarray:
    """Grow a feasible population by mutating feasible members and keeping feasible results."""
    for _ in range(steps):
        if len(pop) >= n:
            break
        kids = random_mutation(genome, rng, pop[rng.integers(0, len(pop), size=4 * n)])
        pop = np.concatenate([pop, kids[problem.feasible(kids)]])
    return pop[rng.integers(0, len(pop), size=n)] if len(pop) < n else pop[:n]


def random_mutation(genome: Genome, rng: np.random.Generator, pop: np.ndarray, rate: float = MUTATION) -> np.ndarray:
    step = 1 + (rng.random(pop.shape) * np.maximum(genome.count - 1, 1)).astype(np.int64)
    return mutate(genome, pop, rng.random(pop.shape) < rate, step)


def repair(problem: Problem, rng: np.random.Generator, pop: np.ndarray, steps: int | None = None) -> np.ndarray:
    """Greedy descent on total bound violation: each step changes the one gene that helps most."""
    if not len(problem.row_lo):
        return pop
    pop, layers = pop.copy(), np.arange(problem.num_layers)
    rows = problem.rows                                                   # [K, L, C]
    blocked = np.where(problem.allowed, 0.0, np.inf)
    for _ in range(steps or problem.num_layers):
        values = problem.row_values(pop)                                  # [K, N]
        bad = problem.row_violation(values).sum(axis=0) > 0
        if not bad.any():
            break
        current = rows[:, layers, pop[bad]]                               # [K, n, L]
        trial = values[:, bad, None, None] - current[..., None] + rows[:, None]   # [K, n, L, C]
        cost = problem.row_violation(trial.reshape(len(rows), -1)).sum(axis=0).reshape(trial.shape[1:])
        cost = cost + blocked - 1e-6 * problem.score + 1e-9 * rng.random(cost.shape)
        flat = cost.reshape(len(cost), -1).argmin(axis=1)
        idx = np.flatnonzero(bad)
        pop[idx, flat // rows.shape[2]] = flat % rows.shape[2]
    return pop


def run_ga(problem: Problem, seed: int = 0, generations: int = 1000, penalty: str = "hard",
           best_accuracy: float = 1.0, islands: int = ISLANDS) -> GAResult:
    """Run the PONAS GA on `islands` independent populations at once; deterministic for a given seed.
    Elitism (parents survive) keeps the best chromosome each island has seen in its population, so with
    hard bounds the winner is the best of the final populations."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    toolbox = build_toolbox(problem, rng, penalty, best_accuracy, islands=islands)
    pop, seeded = toolbox.population(islands * POPULATION)
    pop = pop.reshape(islands, POPULATION, -1)
    fitness = toolbox.evaluate(pop)
    best = _Best(problem) if penalty == "soft" else None
    if best is not None:
        best.update(pop)
    failed, history, rows = 0, [], np.arange(islands)[:, None]
    for gen in range(generations):
        order = toolbox.select(fitness, PARENTS)
        parents = pop[rows, order]
        children, lost = toolbox.breed(parents, toolbox.draw())
        pop = np.concatenate([parents, children], axis=1)
        fitness = np.concatenate([fitness[rows, order], toolbox.evaluate(children)], axis=1)
        failed += lost
        if best is not None:
            best.update(pop)
        if gen % 10 == 9:
            history.append({"generation": gen + 1, "best": float(fitness.max())})
    if best is not None:
        genes, value, polished = best.genes, best.value, None if best.genes is None else polish(problem, best.genes)
    else:
        winners = pop[rows[:, 0], fitness.argmax(axis=1)]   # [I, L]
        genes, value = _fittest(problem, winners, problem.scores(winners))
        candidates = np.stack([polish(problem, g) for g in winners])
        polished = _fittest(problem, candidates, problem.scores(candidates))[0]
    return GAResult(polished, None if genes is None else float(problem.scores(polished[None])[0]),
                    time.perf_counter() - start, generations, islands * (POPULATION + generations * (POPULATION - PARENTS)),
                    failed, seeded, value_before_polish=value, history=history)


def polish(problem: Problem, genes: np.ndarray, steps: int = 50) -> np.ndarray:
    """Local search on the winner: take the best feasible change of one or two genes until none helps.
    Changes are scored as deltas over [L, C] (one gene) and [L, C, L, C] (two genes), all at once."""
    genes, layers = genes.copy(), np.arange(problem.num_layers)
    rows, limits = problem.one_sided
    cands = problem.score.shape[1]
    for _ in range(steps):
        d_score = problem.score - problem.score[layers, genes][:, None]            # [L, C]
        d_rows = rows - rows[:, layers, genes][:, :, None]                          # [K, L, C]
        base = problem.gather(rows, genes[None]).sum(axis=-1)[:, 0]                 # [K]
        pair_rows = d_rows[:, :, :, None, None] + d_rows[:, None, None]             # [K, L, C, L, C]
        ok = (base[:, None, None, None, None] + pair_rows <= limits[:, :, None, None, None]).all(axis=0)
        ok &= problem.allowed[:, :, None, None] & problem.allowed[None, None]
        same = layers[:, None, None, None] == layers[None, None, :, None]
        gain = np.where(ok & ~same, d_score[:, :, None, None] + d_score[None, None], -np.inf)
        single = np.where(ok[layers, :, layers, genes], d_score, -np.inf)           # [L, C]: second move is a no-op
        best_pair, best_single = gain.max(), single.max()
        if max(best_pair, best_single) <= 1e-15:
            break
        if best_single >= best_pair:
            l, c = np.unravel_index(single.argmax(), single.shape)
            genes[l] = c
        else:
            l1, c1, l2, c2 = np.unravel_index(gain.argmax(), gain.shape)
            genes[l1], genes[l2] = c1, c2
    return genes


def _fittest(problem: Problem, pop: np.ndarray, fitness: np.ndarray) -> tuple[np.ndarray, float]:
    i = int(np.argmax(fitness))
    return pop[i].copy(), float(problem.scores(pop[i:i + 1])[0])


class _Best:
    """Soft search: the best chromosome seen that meets every bound (rewards there equal accuracy)."""

    def __init__(self, problem: Problem):
        self.problem = problem
        self.genes: np.ndarray | None = None
        self.value: float | None = None

    def update(self, pop: np.ndarray) -> None:
        pop = pop.reshape(-1, pop.shape[-1])
        scores = np.where(self.problem.feasible(pop), self.problem.scores(pop), -np.inf)
        i = int(np.argmax(scores))
        if np.isfinite(scores[i]) and (self.value is None or scores[i] > self.value):
            self.genes, self.value = pop[i].copy(), float(scores[i])

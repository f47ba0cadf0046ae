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
How chromosomes are scored and which children are kept comes from an `Evaluation` (penalty.py): the
hard bounds (PONAS), or EPNAS's soft penalty wrapped around the evaluation, under which no child is
rejected. The GA itself has no branch for either; its answer is the best chromosome seen that meets
every bound, polished. Registered as the strategy "ga".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from deap import base, creator

from specialize.sampling import uniform_genes
from specialize.search.constraints import Problem
from specialize.search.penalty import Evaluation, hard_bounds
from specialize.search.reach import explain_infeasible
from specialize.search.registry import Budget, SearchResult, register_strategy

POPULATION, PARENTS, MUTATION = 20, 10, 0.1
ISLANDS = 6  # independent populations
FIRST_TRIES = 4  # tries per pair made at once each generation
ROUNDS = 1  # further rounds of `tries` for pairs whose children were all rejected
FAILED_PER_GENERATION = 10  # the "ga" strategy stops at 10 x generations failed children (about 1 in 6 made)


@dataclass(frozen=True)
class GAResult:
    genes: np.ndarray | None  # [L] best chromosome (None: no chromosome seen met every bound)
    value: float | None  # its Σ T_d
    seconds: float
    generations: int
    evaluations: int
    failed_children: int  # children whose regeneration cap ran out (the parent stayed)
    seeded_by_solver: bool  # random sampling + repair found too few feasible starts
    value_before_polish: float | None = None  # the GA's own best, before the 2-exchange polish
    stopped: str | None = None  # why it ran fewer generations than asked ("time limit", "failed children")
    history: list[dict] = field(default_factory=list, repr=False)  # best feasible Σ T_d every 10 generations


@dataclass(frozen=True)
class Genome:
    """Per-layer allowed candidates, laid out for vectorized sampling and mutation."""

    choices: np.ndarray  # [L, Cmax] allowed candidate indices (padded by repetition)
    count: np.ndarray  # [L] number of allowed candidates
    moves: np.ndarray  # [L, C, Cmax] candidate reached from g by moving s places along the list
    weights: np.ndarray  # [L] random int64 weights: chromosome @ weights identifies it
    layers: np.ndarray  # [L] 0..L-1
    allowed: np.ndarray  # [L, C] the mask it was built from (sampled by specialize.sampling.uniform_genes)

    @classmethod
    def from_mask(cls, allowed: np.ndarray, rng: np.random.Generator) -> "Genome":
        layers, (_, cands) = np.arange(len(allowed)), allowed.shape
        count = allowed.sum(axis=1)
        choices = np.stack([np.resize(np.flatnonzero(row), cands) for row in allowed])
        position = np.cumsum(allowed, axis=1) - 1
        places = (position[:, :, None] + np.arange(cands)) % count[:, None, None]
        moves = choices[layers[:, None, None], places]
        return cls(choices, count, moves, rng.integers(1, 2**62, size=len(count)), layers, allowed)


@dataclass(frozen=True)
class Draws:
    """The random numbers of one generation for every island (pairings, cuts, mutations), T tries per pair."""

    order: np.ndarray  # [I, parents] how each island's parents are paired (empty on a retry)
    head: np.ndarray  # [I*P, T, 1, L] True: the child keeps its first parent's gene
    hit: np.ndarray  # [I*P, T, 2, L] True: the gene mutates
    step: np.ndarray  # [I*P, T, 2, L] how far along its layer's allowed list it moves
    nudge: np.ndarray  # [I*P, T, 2, L] one gene per child, mutated too if the child copies a parent


class DrawPool:
    """Random numbers drawn `block` generations at a time (one numpy call each, not a handful per
    generation): `next()` hands out one generation's worth, `first` tries per pair; `retry(count)`
    draws `tries` more for each of `count` pairs whose children were rejected."""

    def __init__(
        self,
        genome: Genome,
        rng: np.random.Generator,
        islands: int,
        parents: int,
        first: int,
        tries: int,
        rate: float,
        block: int = 50,
    ):
        self.genome, self.rng, self.block, self.rate = genome, rng, block, rate
        self.islands, self.parents, self.first, self.tries = islands, parents, first, tries
        self.used, self.stock = block, ()

    def next(self) -> Draws:
        if self.used == self.block:
            order = self.rng.random((self.block, self.islands, self.parents)).argsort(axis=-1)
            self.stock, self.used = (
                (order, *self._cross_and_mutate((self.block, self.islands * (self.parents // 2), self.first))),
                0,
            )
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
        creator.create("AgedChromosome", list, fitness=creator.FitnessLoss, born=0, level=0)  # EcoNAS (econas.py)


def build_toolbox(
    problem: Problem,
    rng: np.random.Generator,
    evaluation: Evaluation | None = None,
    parents: int = PARENTS,
    islands: int = 1,
    tries: int = 8,
    rounds: int = ROUNDS,
) -> base.Toolbox:
    """The one place search operators are declared (the Pareto search adds NSGA-II selection on top).
    `evaluation` (default: the hard bounds) gives fitness, which children are kept, and the genes allowed."""
    create_classes()
    evaluation = evaluation or hard_bounds(problem)
    if not evaluation.allowed.any(axis=1).all():  # a bound no candidate of some layer meets: nothing to draw from
        raise explain_infeasible(problem)
    genome = Genome.from_mask(evaluation.allowed, rng)
    toolbox = base.Toolbox()
    toolbox.register("evaluate", evaluation.fitness)
    toolbox.register("accept", evaluation.accept)
    toolbox.register("repair", lambda pop: repair(problem, rng, pop))
    toolbox.register("population", init_population, problem, genome, rng, toolbox)
    toolbox.register("select", select_best)
    pool = DrawPool(genome, rng, islands, parents, FIRST_TRIES, tries, MUTATION)
    toolbox.register("draw", pool.next)
    toolbox.register("redraw", pool.retry)
    toolbox.register("mate", one_point_crossover)
    toolbox.register("mutate", mutate, genome)
    toolbox.register("breed", breed, toolbox, genome, rounds)
    return toolbox


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


def breed(
    toolbox: base.Toolbox, genome: Genome, rounds: int, parents: np.ndarray, draws: Draws
) -> tuple[np.ndarray, int]:
    """parents [I, n, L] -> children [I, n, L]: two per pair, pairs within an island. A child that breaks
    a bound or copies one of its island's parents is made again: `rounds` more rounds of `tries` each
    for the pairs still missing a child, then a repair; failing that its parent stays. A child that
    copies its own parents first gets one more mutated gene. Returns the children and how many fell back."""
    islands, n, layers = parents.shape
    pairs = parents[np.arange(islands)[:, None], draws.order].reshape(-1, 2, layers)  # [I*P, 2, L]
    known = np.repeat(parents @ genome.weights, n // 2, axis=0)  # [I*P, n]
    own = pairs @ genome.weights  # [I*P, 2]
    children, done = pairs.copy(), np.zeros(pairs.shape[:2], dtype=bool)
    todo, d = np.arange(len(pairs)), draws
    for attempt in range(rounds + 1):
        kids = toolbox.mutate(toolbox.mate(pairs[todo], d.head), d.hit, d.step)  # [t, T, 2, L]
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
    if not done.all():  # the cap ran out: try repairing the last children
        idx = np.argwhere(~done)
        fixed = toolbox.repair(last[np.searchsorted(todo, idx[:, 0]), 0, idx[:, 1]])
        good = toolbox.accept(fixed) & ~((fixed @ genome.weights)[:, None] == known[idx[:, 0]]).any(axis=1)
        children[idx[good, 0], idx[good, 1]] = fixed[good]
        done[idx[good, 0], idx[good, 1]] = True
    return children.reshape(islands, n, layers), int((~done).sum())


def init_population(
    problem: Problem,
    genome: Genome,
    rng: np.random.Generator,
    toolbox: base.Toolbox,
    n: int,
    batches: int = 8,
    batch: int = 64,
) -> tuple[np.ndarray, bool]:
    """n accepted chromosomes: random ones, those rejected repaired (capped); else walk out from a
    solver-found feasible one. Returns them and whether the solver had to seed them."""
    found = np.zeros((0, problem.num_layers), dtype=np.int64)
    for _ in range(batches):
        pop = uniform_genes(genome.allowed, rng, batch)
        rejected = ~toolbox.accept(pop)
        pop[rejected] = toolbox.repair(pop[rejected])
        found = np.concatenate([found, pop[toolbox.accept(pop)]])
        if len(found) >= n:
            return found[:n], False
    if not len(found):
        from specialize.search.exact import find_feasible

        start = find_feasible(problem, rng)
        if start is None:
            raise explain_infeasible(problem)
        found = start[None]
    return _walk(problem, genome, rng, found, n), True


def _walk(
    problem: Problem, genome: Genome, rng: np.random.Generator, pop: np.ndarray, n: int, steps: int = 50
) -> np.ndarray:
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


def repair(
    problem: Problem,
    rng: np.random.Generator,
    pop: np.ndarray,
    steps: int | None = None,
    frozen: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy descent on total bound violation: each step changes the one gene that helps most.
    `frozen` [L] bool: layers that keep their gene (PNAS completes a fixed prefix)."""
    if not len(problem.row_lo) or (frozen is not None and frozen.all()):
        return pop
    pop, layers = pop.copy(), np.arange(problem.num_layers)
    rows = problem.rows  # [K, L, C]
    blocked = np.where(problem.allowed, 0.0, np.inf)
    if frozen is not None:
        blocked = blocked + np.where(frozen[:, None], np.inf, 0.0)
    for _ in range(steps or problem.num_layers):
        values = problem.row_values(pop)  # [K, N]
        bad = problem.row_violation(values).sum(axis=0) > 0
        if not bad.any():
            break
        current = rows[:, layers, pop[bad]]  # [K, n, L]
        trial = values[:, bad, None, None] - current[..., None] + rows[:, None]  # [K, n, L, C]
        cost = problem.row_violation(trial.reshape(len(rows), -1)).sum(axis=0).reshape(trial.shape[1:])
        cost = cost + blocked - 1e-6 * problem.score + 1e-9 * rng.random(cost.shape)
        flat = cost.reshape(len(cost), -1).argmin(axis=1)
        idx = np.flatnonzero(bad)
        pop[idx, flat // rows.shape[2]] = flat % rows.shape[2]
    return pop


def run_ga(
    problem: Problem,
    seed: int = 0,
    generations: int = 1000,
    evaluation: Evaluation | None = None,
    islands: int = ISLANDS,
    time_limit: float | None = None,
    max_failed: int | None = None,
) -> GAResult:
    """Run the PONAS GA on `islands` independent populations at once; deterministic for a given seed.
    It stops early once `max_failed` children have failed (deterministic: where nearly every child
    breaks a bound, each generation costs several times more) or after `time_limit` seconds (a safety
    net; the seed then no longer fixes the answer); GAResult.generations and .stopped say so.
    The answer is the best chromosome seen that meets every bound; each island's best is polished too."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    toolbox = build_toolbox(problem, rng, evaluation, islands=islands)
    pop, seeded = toolbox.population(islands * POPULATION)
    pop = pop.reshape(islands, POPULATION, -1)
    fitness, best = toolbox.evaluate(pop), _Best(problem)
    best.update(pop)
    failed, history, rows, done, stopped = 0, [], np.arange(islands)[:, None], 0, None
    for gen in range(generations):
        stopped = _stop_reason(start, time_limit, failed, max_failed)
        if stopped:
            break
        done = gen + 1
        order = toolbox.select(fitness, PARENTS)
        parents = pop[rows, order]
        children, lost = toolbox.breed(parents, toolbox.draw())
        pop = np.concatenate([parents, children], axis=1)
        fitness = np.concatenate([fitness[rows, order], toolbox.evaluate(children)], axis=1)
        best.update(children)
        failed += lost
        if gen % 10 == 9:
            history.append({"generation": gen + 1, "best": best.value})
    genes = _polished_best(problem, [*_island_bests(problem, pop), best.genes])
    return GAResult(
        genes,
        None if genes is None else float(problem.scores(genes[None])[0]),
        time.perf_counter() - start,
        done,
        islands * (POPULATION + done * (POPULATION - PARENTS)),
        failed,
        seeded,
        value_before_polish=best.value,
        stopped=stopped,
        history=history,
    )


def _stop_reason(start: float, time_limit: float | None, failed: int, max_failed: int | None) -> str | None:
    if max_failed is not None and failed >= max_failed:
        return f"{failed} failed children (cap {max_failed})"
    if time_limit is not None and time.perf_counter() - start > time_limit:
        return f"time limit {time_limit:.2f} s"
    return None


@register_strategy("ga", summary="PONAS genetic algorithm: 6 islands of 20, 1,000 generations, winner polished")
def ga_strategy(problem: Problem, evaluation: Evaluation, budget: Budget, seed: int) -> SearchResult:
    r = run_ga(
        problem,
        seed=seed,
        generations=budget.generations,
        evaluation=evaluation,
        time_limit=budget.time_limit_s,
        max_failed=FAILED_PER_GENERATION * budget.generations,
    )
    details = {
        "generations": r.generations,
        "generations_asked": budget.generations,
        "stopped": r.stopped,
        "evaluations": r.evaluations,
        "failed_children": r.failed_children,
        "seeded_by_solver": r.seeded_by_solver,
        "value_before_polish": r.value_before_polish,
    }
    status = "heuristic" if r.genes is not None else "not found"  # soft penalty: no child it saw met every bound
    return SearchResult(r.genes, r.value, r.seconds, status, history=r.history, details=details)


def _island_bests(problem: Problem, pop: np.ndarray) -> list[np.ndarray]:
    """Each island's best chromosome that meets every bound (islands with none give nothing)."""
    flat = pop.reshape(-1, pop.shape[-1])
    scores = np.where(problem.feasible(flat), problem.scores(flat), -np.inf).reshape(pop.shape[:2])
    return [pop[i, scores[i].argmax()] for i in range(len(pop)) if np.isfinite(scores[i].max())]


def _polished_best(problem: Problem, candidates: list[np.ndarray | None]) -> np.ndarray | None:
    polished = [polish(problem, g) for g in candidates if g is not None]
    if not polished:
        return None
    stack = np.stack(polished)
    return stack[int(np.argmax(problem.scores(stack)))]


def polish(problem: Problem, genes: np.ndarray, steps: int = 50) -> np.ndarray:
    """Local search on the winner: take the best feasible change of one or two genes until none helps.
    Changes are scored as deltas over [L, C] (one gene) and [L, C, L, C] (two genes), all at once."""
    genes, layers = genes.copy(), np.arange(problem.num_layers)
    rows, limits = problem.one_sided
    for _ in range(steps):
        d_score = problem.score - problem.score[layers, genes][:, None]  # [L, C]
        d_rows = rows - rows[:, layers, genes][:, :, None]  # [K, L, C]
        base = problem.gather(rows, genes[None]).sum(axis=-1)[:, 0]  # [K]
        pair_rows = d_rows[:, :, :, None, None] + d_rows[:, None, None]  # [K, L, C, L, C]
        ok = (base[:, None, None, None, None] + pair_rows <= limits[:, :, None, None, None]).all(axis=0)
        ok &= problem.allowed[:, :, None, None] & problem.allowed[None, None]
        same = layers[:, None, None, None] == layers[None, None, :, None]
        gain = np.where(ok & ~same, d_score[:, :, None, None] + d_score[None, None], -np.inf)
        single = np.where(ok[layers, :, layers, genes], d_score, -np.inf)  # [L, C]: second move is a no-op
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


class _Best:
    """The best chromosome seen that meets every bound, by Σ T_d (under a soft penalty the fittest may not)."""

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

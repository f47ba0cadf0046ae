"""PONAS §3.3 genetic algorithm over the accuracy-loss table, on a DEAP toolbox with numpy operators.

A chromosome is one candidate index per layer; its fitness is Σ_l T_d[l, g_l] (maximize: least
accuracy loss). 20 feasible chromosomes start; each generation the top 10 are shuffled into 5 pairs,
each pair makes two children by one-point crossover, each gene then mutates with probability 0.1;
a child that breaks a bound is made again (up to `tries x rounds` times; then it is repaired by greedy
descent on the bound violation, and if that fails its parent stays). Two additions to the paper keep
the 20 chromosomes from collapsing into copies: a child equal to a parent is made again too, and the
first population comes from random chromosomes repaired the same way (an ILP feasibility answer
seeds it if none is found). Parents and children form the next 20; since parents survive, the best
chromosome ever seen is in the final population and wins. That winner is then polished: the best
feasible change of one or two genes is taken until none helps (`GAResult.value_before_polish` keeps
the GA's own value).

The operators are registered on a DEAP `Toolbox` but work on whole populations as [N, L] int arrays
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
    """The random numbers of `n` generations, drawn in one call each (not a handful per generation)."""

    order: np.ndarray                 # [n, parents] how parents are paired
    head: np.ndarray                  # [n, P, T, 1, L] True: the child keeps its first parent's gene
    hit: np.ndarray                   # [n, P, T, 2, L] True: the gene mutates
    step: np.ndarray                  # [n, P, T, 2, L] how far along its layer's allowed list it moves

    def __getitem__(self, i: int) -> "Draws":
        return Draws(self.order[i], self.head[i], self.hit[i], self.step[i])


def draw(genome: Genome, rng: np.random.Generator, parents: int, tries: int, rate: float, n: int) -> Draws:
    layers = len(genome.count)
    shape = (n, parents // 2, tries, 2, layers)
    cut = rng.integers(1, max(layers, 2), size=(n, parents // 2, tries, 1, 1))
    step = 1 + (rng.random(shape) * np.maximum(genome.count - 1, 1)).astype(np.int64)
    return Draws(rng.random((n, parents)).argsort(axis=1), np.arange(layers) < cut, rng.random(shape) < rate, step)


def create_classes() -> None:
    """DEAP's creator is global state: make its classes once."""
    if not hasattr(creator, "FitnessLoss"):
        creator.create("FitnessLoss", base.Fitness, weights=(1.0,))
        creator.create("Chromosome", list, fitness=creator.FitnessLoss)
        creator.create("FitnessFront", base.Fitness, weights=(1.0, -1.0))
        creator.create("FrontChromosome", list, fitness=creator.FitnessFront)


def build_toolbox(problem: Problem, rng: np.random.Generator, penalty: str = "hard", best_accuracy: float = 1.0,
                  parents: int = PARENTS, tries: int = 8, rounds: int = 4) -> base.Toolbox:
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
    toolbox.register("draw", draw, genome, rng, parents, tries, MUTATION)
    toolbox.register("mate", one_point_crossover)
    toolbox.register("mutate", mutate, genome)
    toolbox.register("accept", accept_all if soft else problem.feasible)
    toolbox.register("repair", (lambda pop: pop) if soft else lambda pop: repair(problem, rng, pop))
    toolbox.register("breed", breed, toolbox, genome, rounds)
    return toolbox


def accept_all(pop: np.ndarray) -> np.ndarray:
    return np.ones(len(pop), dtype=bool)


def select_best(fitness: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k fittest, best first (stable: ties keep population order)."""
    return np.argsort(-fitness, kind="stable")[:k]


def one_point_crossover(pairs: np.ndarray, head: np.ndarray) -> np.ndarray:
    """pairs [P, 2, L], head [P, T, 1, L] -> [P, T, 2, L]: both children of a cut, T tries per pair."""
    pairs = pairs[:, None]
    return np.where(head, pairs, pairs[:, :, ::-1])


def mutate(genome: Genome, pop: np.ndarray, hit: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Where `hit`, a gene moves `step` places along its layer's allowed list (to another candidate)."""
    return np.where(hit, genome.moves[genome.layers, pop, step], pop)


def breed(toolbox: base.Toolbox, genome: Genome, rounds: int, parents: np.ndarray, draws: Draws) -> tuple[np.ndarray, int]:
    """Two children per pair; a child that breaks a bound or copies a parent is made again (`rounds` x
    tries times at most), then its parent stays. Returns the children and how many fell back."""
    pairs = parents[draws.order].reshape(-1, 2, parents.shape[-1])     # [P, 2, L]
    children, done = pairs.copy(), np.zeros(pairs.shape[:2], dtype=bool)
    known = parents @ genome.weights
    for attempt in range(rounds):
        d = draws if attempt == 0 else toolbox.draw(1)[0]
        kids = toolbox.mutate(toolbox.mate(pairs, d.head), d.hit, d.step)          # [P, T, 2, L]
        flat = kids.reshape(-1, kids.shape[-1])
        new = ~(flat @ genome.weights == known[:, None]).any(axis=0)
        ok = (toolbox.accept(flat) & new).reshape(kids.shape[:3])
        found = ok.any(axis=1) & ~done
        picked = kids[np.arange(len(kids))[:, None], ok.argmax(axis=1), np.arange(2)]
        children[found] = picked[found]
        done |= found
        if done.all():
            break
    if not done.all():                          # the cap ran out: try repairing the last children
        fixed = toolbox.repair(kids[:, 0][~done])
        good = toolbox.accept(fixed) & ~(fixed @ genome.weights == known[:, None]).any(axis=0)
        idx = np.argwhere(~done)[good]
        children[idx[:, 0], idx[:, 1]] = fixed[good]
        done[idx[:, 0], idx[:, 1]] = True
    return children.reshape(-1, parents.shape[-1]), int((~done).sum())


def soft_reward(problem: Problem, best_accuracy: float, pop: np.ndarray) -> np.ndarray:
    """EPNAS Eq. 3: predicted accuracy (made positive) times Π_i 0.9^violation_i."""
    accuracy = np.maximum(best_accuracy + problem.scores(pop), 1e-6)
    return accuracy * SOFT_BASE ** soft_violation(problem, pop)


def soft_violation(problem: Problem, pop: np.ndarray) -> np.ndarray:
    """EPNAS Eq. 2 exponent summed over bounds: Σ_i max(0, U_i/C_u,i - 1, C_l,i/U_i - 1)."""
    values, total = problem.measure(pop), np.zeros(len(pop))
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
    for _ in range(steps or 2 * problem.num_layers):
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
           best_accuracy: float = 1.0, block: int = 50) -> GAResult:
    """Run the PONAS GA; deterministic for a given seed. Elitism (parents survive) keeps the best
    chromosome ever seen in the population, so with hard bounds it is the final population's best."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    toolbox = build_toolbox(problem, rng, penalty, best_accuracy)
    pop, seeded = toolbox.population(POPULATION)
    fitness = toolbox.evaluate(pop)
    best = _Best(problem) if penalty == "soft" else None
    if best is not None:
        best.update(pop)
    failed, history = 0, []
    for gen in range(generations):
        draws = toolbox.draw(min(block, generations - gen)) if gen % block == 0 else draws
        order = toolbox.select(fitness, PARENTS)
        children, lost = toolbox.breed(pop[order], draws[gen % block])
        pop = np.concatenate([pop[order], children])
        fitness = np.concatenate([fitness[order], toolbox.evaluate(children)])
        failed += lost
        if best is not None:
            best.update(pop)
        if gen % 10 == 9:
            history.append({"generation": gen + 1, "best": float(fitness.max())})
    genes, value = (best.genes, best.value) if best is not None else _fittest(problem, pop, fitness)
    polished = polish(problem, genes) if genes is not None else None
    return GAResult(polished, None if genes is None else float(problem.scores(polished[None])[0]),
                    time.perf_counter() - start, generations, POPULATION + generations * (len(pop) - PARENTS),
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
        scores = np.where(self.problem.feasible(pop), self.problem.scores(pop), -np.inf)
        i = int(np.argmax(scores))
        if np.isfinite(scores[i]) and (self.value is None or scores[i] > self.value):
            self.genes, self.value = pop[i].copy(), float(scores[i])

"""EcoNAS Algorithm 1 (Zhou et al. 2020), hierarchical proxy evolution, on DEAP: strategy "econas".

Three population sets P_E, P_2E, P_3E hold architectures evaluated at growing cost: fidelity 1/3, 2/3
and 1 of a full evaluation (for the supernet evaluator, that share of the validation images; EcoNAS
trains E, 2E and 3E epochs). The table's score has no fidelity and scores alike at all three.

- Start: INITIAL architectures the evaluation accepts (the GA's initial population), scored at 1/3, in P_E.
- Each cycle: CHILDREN parents are sampled, a set first (P_E, P_2E, P_3E with weights 1 : 2 : 3 among
  the non-empty ones: better sets more often), then a DEAP tournament within it (`tools.selTournament`,
  the fitter more often). Each child changes one gene of its parent (AmoebaNet's mutation without the
  identity): of TRIES such mutants, those the evaluation rejects are repaired (the GA's greedy descent,
  near a bound a two-gene move), and the first accepted one not scored before is kept; it is scored at
  1/3 into P_E. Repairing, rather than only redrawing, took the hard bounds' answers on the 6-layer test
  space from optimal on 17 of 24 bound sets to 24 of 24 at 300 evaluations. The best PROMOTE[0] of P_E are
  scored at 2/3 and move to P_2E, then the best
  PROMOTE[1] of P_2E at full fidelity into P_3E. Then the oldest die (aging, by birth, in any set)
  until CAPACITY are left.
- Budget (`Budget.evaluations`, in evaluation units through `offline.Evaluations`: a score at fidelity f
  costs f): cycles run while a whole cycle is affordable; what is left promotes the best of P_E and P_2E.
  A cycle that spends nothing (every child seen before) counts as stale; STALE_CYCLES of them stop it.

DEAP's creator classes come from `ga.create_classes` (made once); a `tools.HallOfFame` keeps the best
fully evaluated architectures and a `tools.Logbook` records each cycle (both in the result's details).
The answer is the best architecture scored at full fidelity that meets every bound (offline.py).
Deterministic for a seed: numpy draws the sets and mutations, and Python's `random`, which DEAP's
tournament reads, is seeded from it for the run and restored after.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from deap import creator, tools

from specialize.search.constraints import Problem
from specialize.search.offline import Evaluations
from specialize.search.penalty import Evaluation
from specialize.search.registry import Budget, SearchResult, register_strategy

FIDELITIES = (1 / 3, 2 / 3, 1.0)  # P_E, P_2E, P_3E
INITIAL = 50  # EcoNAS: 50 random architectures to start
CHILDREN = 16  # EcoNAS: 16 mutated per cycle
PROMOTE = (4, 2)  # P_E -> P_2E, P_2E -> P_3E per cycle (the paper does not give N_1, N_2)
SET_WEIGHTS = (1.0, 2.0, 3.0)  # chance of sampling a parent from P_E, P_2E, P_3E
TOURNAMENT = 3
CAPACITY = INITIAL  # architectures alive across the three sets; the oldest die beyond it
TRIES = 8  # mutations drawn for a child before repairing one
STALE_CYCLES = 10
HALL_OF_FAME = 5


@dataclass
class Populations:
    sets: list[list] = field(default_factory=lambda: [[], [], []])  # P_E, P_2E, P_3E of AgedChromosome
    born: int = 0  # births so far (the next one's age stamp)
    dead: list[int] = field(default_factory=list)  # birth stamps of those that died

    def alive(self) -> list:
        return [ind for members in self.sets for ind in members]


@contextmanager
def seeded_python_random(seed: int) -> Iterator[None]:
    """DEAP's selection reads Python's global `random`: seed it for a run, then give the caller's state back."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


class Evolution:
    """One EcoNAS run: the populations, the DEAP records and the operators they need."""

    def __init__(self, problem: Problem, evaluation: Evaluation, evaluations: Evaluations, rng: np.random.Generator):
        from specialize.search.ga import Genome, build_toolbox

        self.problem, self.evaluation, self.evaluations, self.rng = problem, evaluation, evaluations, rng
        self.toolbox = build_toolbox(problem, rng, evaluation)  # makes the creator classes once
        self.genome = Genome.from_mask(evaluation.allowed, rng)
        self.pops = Populations()
        self.hall = tools.HallOfFame(HALL_OF_FAME)
        self.log = tools.Logbook()

    def individuals(self, genes: np.ndarray) -> list:
        out = []
        for row in genes:
            ind = creator.AgedChromosome(int(g) for g in row)
            ind.born, self.pops.born = self.pops.born, self.pops.born + 1
            out.append(ind)
        return out

    def score(self, inds: list, level: int) -> list:
        """Score `inds` at level's fidelity (as many as the budget pays for); returns those scored."""
        if not inds:
            return []
        values = self.evaluations(np.array(inds, dtype=np.int64), fidelity=FIDELITIES[level])
        scored = []
        for ind, value in zip(inds, values):
            if np.isfinite(value):
                ind.fitness.values, ind.level = (float(value),), level
                scored.append(ind)
        return scored

    def start(self) -> None:
        n = min(INITIAL, self.evaluations.affordable(FIDELITIES[0]))
        genes = self.toolbox.population(n)[0] if n else np.zeros((0, self.problem.num_layers), dtype=np.int64)
        self.pops.sets[0] = self.score(self.individuals(np.unique(genes, axis=0)), 0)

    def parent(self):
        """A set by SET_WEIGHTS among the non-empty ones, then a DEAP tournament within it."""
        weights = np.cumsum([w if members else 0.0 for w, members in zip(SET_WEIGHTS, self.pops.sets)])
        members = self.pops.sets[int(np.searchsorted(weights, self.rng.random() * weights[-1], side="right"))]
        return tools.selTournament(members, 1, min(TOURNAMENT, len(members)))[0]

    def mutants(self, parents: np.ndarray) -> np.ndarray:
        """TRIES one-gene changes of each parent [P, L] -> [P, TRIES, L]: each moves one gene to another
        allowed candidate."""
        from specialize.search.ga import mutate

        shape = (len(parents), TRIES, self.problem.num_layers)
        hit = np.arange(shape[2]) == self.rng.integers(0, shape[2], size=(*shape[:2], 1))
        step = 1 + (self.rng.random(shape) * np.maximum(self.genome.count - 1, 1)).astype(np.int64)
        return mutate(self.genome, np.repeat(parents[:, None], TRIES, axis=1), hit & (self.genome.count > 1), step)

    def child(self, tries: np.ndarray, accepted: np.ndarray) -> np.ndarray | None:
        """Of one parent's mutants (rejected ones repaired), the first the evaluation accepts and that was
        not scored before; else the first accepted; None when none is."""
        fresh = [g for g in tries[accepted] if not self.evaluations.known(g, FIDELITIES[0])]
        return fresh[0] if fresh else (tries[accepted.argmax()] if accepted.any() else None)

    def breed(self, count: int) -> list:
        """`count` children scored at 1/3 and added to P_E (the ones the budget pays for). A mutant that breaks a
        bound is repaired (the GA's greedy descent), which near a bound makes it a two-gene move."""
        parents = np.array([self.parent() for _ in range(count)], dtype=np.int64)
        tries = self.mutants(parents).reshape(-1, self.problem.num_layers)
        rejected = ~self.evaluation.accept(tries)
        tries[rejected] = self.toolbox.repair(tries[rejected])
        accepted = self.evaluation.accept(tries).reshape(count, TRIES)
        tries = tries.reshape(count, TRIES, -1)
        genes = [g for g in (self.child(t, a) for t, a in zip(tries, accepted)) if g is not None]
        children = self.score(self.individuals(np.array(genes, dtype=np.int64).reshape(-1, self.problem.num_layers)), 0)
        self.pops.sets[0] += children
        return children

    def promote(self, level: int, count: int) -> int:
        """The best `count` of set `level` scored at the next fidelity and moved up; returns how many moved."""
        members = self.pops.sets[level]
        best = tools.selBest(members, min(count, len(members), self.evaluations.affordable(FIDELITIES[level + 1])))
        moved = self.score(best, level + 1)
        ids = {id(ind) for ind in moved}
        self.pops.sets[level] = [ind for ind in members if id(ind) not in ids]
        self.pops.sets[level + 1] += moved
        return len(moved)

    def age(self) -> int:
        """The oldest die until CAPACITY are alive; returns how many died."""
        alive = sorted(self.pops.alive(), key=lambda ind: ind.born)
        dying = {id(ind) for ind in alive[: max(len(alive) - CAPACITY, 0)]}
        self.pops.dead += [ind.born for ind in alive if id(ind) in dying]
        self.pops.sets = [[ind for ind in members if id(ind) not in dying] for members in self.pops.sets]
        return len(dying)

    def record(self, cycle: int, children: int, promoted: tuple[int, int], died: int) -> None:
        self.hall.update(self.pops.sets[2])
        sizes = [len(members) for members in self.pops.sets]
        self.log.record(
            cycle=cycle,
            spent=self.evaluations.spent,
            children=children,
            promoted_2E=promoted[0],
            promoted_3E=promoted[1],
            died=died,
            P_E=sizes[0],
            P_2E=sizes[1],
            P_3E=sizes[2],
            best=self.evaluations.best_value,
        )


def cycle_cost(children: int = CHILDREN, promote: tuple[int, int] = PROMOTE) -> float:
    """Evaluation units of one full cycle."""
    return children * FIDELITIES[0] + promote[0] * FIDELITIES[1] + promote[1] * FIDELITIES[2]


def evolve(evo: Evolution) -> str:
    """Algorithm 1: start, then cycles while one is affordable, then promote with what is left.
    Returns why it stopped."""
    evo.start()
    cycle, stale, stopped = 0, 0, "budget spent"
    while evo.evaluations.left + 1e-9 >= cycle_cost() and evo.pops.alive():
        spent = evo.evaluations.spent
        cycle += 1
        children = len(evo.breed(CHILDREN))
        promoted = (evo.promote(0, PROMOTE[0]), evo.promote(1, PROMOTE[1]))
        evo.record(cycle, children, promoted, evo.age())
        stale = stale + 1 if evo.evaluations.spent == spent else 0
        if stale == STALE_CYCLES:
            stopped = f"{STALE_CYCLES} cycles in a row scored nothing new"
            break
    last = evo.promote(0, PROMOTE[0])
    evo.record(cycle + 1, 0, (last, evo.promote(1, PROMOTE[1])), 0)  # the closing promotion, no children
    return stopped


@register_strategy(
    "econas",
    offline=True,
    summary="EcoNAS: hierarchical proxy evolution, children at 1/3 fidelity, the best promoted to 2/3 and 1, aging",
)
def econas_strategy(problem: Problem, evaluation: Evaluation, budget: Budget, seed: int) -> SearchResult:
    rng = np.random.default_rng(seed)
    evaluations = Evaluations(problem, evaluation, budget.evaluations)
    with seeded_python_random(int(rng.integers(2**31))):
        evo = Evolution(problem, evaluation, evaluations, rng)
        stopped = evolve(evo)
    hall = [{"arch": list(ind), "fitness": ind.fitness.values[0]} for ind in evo.hall]
    return evaluations.result(
        {
            "cycles": len(evo.log) - 1,
            "stopped": stopped,
            "logbook": list(evo.log),
            "hall_of_fame": hall,
            "died": len(evo.pops.dead),
        }
    )

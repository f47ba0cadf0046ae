"""PNAS §4 (Liu et al. 2018), sequential model-based optimization, over a layer-wise space: strategy "pnas".

PNAS grows cells one block at a time; here an architecture grows one layer at a time. At level b the
beam holds K partial architectures fixing layers 1..b. Each is expanded by every allowed candidate at
layer b+1; the surrogate (an ensemble of 5 MLPs, each on a different 4/5 of the data, `surrogate.py`)
ranks all expansions by its mean; the top K are evaluated and refit the surrogate from scratch; they
are the next beam. Level 1 has no surrogate yet: its expansions are evaluated in random order.

A partial architecture is evaluated as a whole network, completed this way: the layers it does not fix
take their largest candidate (most MACs), as PONAS trains a layer with the later ones at the largest
block; when that breaks a bound, the free layers are repaired (the GA's greedy descent on the bound
violation, fixed layers frozen); when that fails too, the free layers are copied from its parent's
completion, then from a few architectures the evaluation accepts (the GA's initial population), each
repaired likewise. Under the hard bounds an expansion with no completion meeting them is dropped; under
EPNAS's soft penalty it keeps its repaired largest completion (scored with the penalty).

The levels get half of `Budget.evaluations` (PROGRESSIVE_SHARE): K per level is that share's remainder
over the levels left, so K = budget / (2 L) at most (completions repeat, so levels may cost less). As an
addition to the paper, the rest refines the answer: the surrogate ranks every one-gene change (meeting
every bound) of the K best architectures found that meet every bound, the top K are evaluated, the
surrogate is refit, and so on until the budget is spent. On the 6-layer test space at 300 evaluations
this took the soft penalty's answers from optimal on 18 of 24 bound sets (0.7 of the budget to the
levels) to 24 of 24; the hard bounds' were 23 and 24 of 24. Everything is spent through
`offline.Evaluations` (cached: an architecture seen before costs nothing). The answer is the best
evaluated architecture meeting every bound. Deterministic for a seed. Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specialize.search.constraints import Problem
from specialize.search.offline import Evaluations
from specialize.search.penalty import Evaluation
from specialize.search.registry import Budget, SearchResult, register_strategy
from specialize.search.surrogate import SurrogateEnsemble, fit_ensemble, one_hot

SEEDS = 4  # architectures meeting every bound, kept as last-resort completion templates
MIN_SAMPLES = 5  # evaluations before the surrogate ranks anything (fewer: random order)
REFINE_ROUNDS = 50  # cap on the rounds of one-gene changes after the last layer
PROGRESSIVE_SHARE = 0.5  # of the budget for the levels; the rest (and what they leave) refines the best


@dataclass
class Beam:
    prefixes: np.ndarray  # [K, b] the layers each partial architecture fixes
    completions: np.ndarray  # [K, L] the whole networks they were evaluated as


class Completer:
    """Completes partial architectures into whole networks the evaluation accepts (see the module doc)."""

    def __init__(self, problem: Problem, evaluation: Evaluation, rng: np.random.Generator):
        from specialize.search.ga import build_toolbox

        self.problem, self.evaluation, self.rng = problem, evaluation, rng
        macs = np.where(evaluation.allowed, problem.linear["macs"][0], -np.inf)
        self.largest = macs.argmax(axis=1)
        toolbox = build_toolbox(problem, rng, evaluation)
        self.seeds = toolbox.population(SEEDS)[0]

    def __call__(self, prefixes: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """prefixes [N, b], parents [N, L] (the parent's completion) -> completions [N, L] and which the
        evaluation accepts. A completion meeting every bound is preferred under any penalty; under a soft one,
        a prefix none of the templates completes within the bounds keeps its largest completion, repaired."""
        n, fixed = prefixes.shape
        templates = [np.tile(self.largest, (n, 1)), parents, *(np.tile(s, (n, 1)) for s in self.seeds)]
        first = self._fill(templates[0], prefixes)
        out, done = first.copy(), self.problem.feasible(first)
        for template in templates[1:]:
            todo = np.flatnonzero(~done)
            if not len(todo):
                break
            trial = self._fill(template[todo], prefixes[todo])
            ok = self.problem.feasible(trial)
            out[todo[ok]], done[todo[ok]] = trial[ok], True
        return out, done | self.evaluation.accept(out)

    def _fill(self, template: np.ndarray, prefixes: np.ndarray) -> np.ndarray:
        """`template` with its first layers set to `prefixes`, the free layers repaired where a bound breaks."""
        from specialize.search.ga import repair

        trial = template.copy()
        trial[:, : prefixes.shape[1]] = prefixes
        broken = ~self.problem.feasible(trial)
        frozen = np.arange(self.problem.num_layers) < prefixes.shape[1]
        trial[broken] = repair(self.problem, self.rng, trial[broken], frozen=frozen)
        return trial


def expand(beam: Beam, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every partial architecture of the beam with one more layer, at each allowed candidate:
    prefixes [K*C', b+1] and their parents' completions [K*C', L]."""
    layer = beam.prefixes.shape[1]
    choices = np.flatnonzero(allowed[layer])
    prefixes = np.concatenate(
        [np.repeat(beam.prefixes, len(choices), axis=0), np.tile(choices, len(beam.prefixes))[:, None]], axis=1
    )
    return prefixes, np.repeat(beam.completions, len(choices), axis=0)


def fit_surrogate(evaluations: Evaluations, num_candidates: int, rng: np.random.Generator) -> SurrogateEnsemble | None:
    """The ensemble refit from scratch on every full-fidelity score so far (None with too few)."""
    if len(evaluations.cache) < MIN_SAMPLES:
        return None
    genes = np.array(list(evaluations.cache), dtype=np.int64)
    return fit_ensemble(
        one_hot(genes, num_candidates), np.array(list(evaluations.cache.values())), seed=int(rng.integers(2**31))
    )


def rank(
    surrogate: SurrogateEnsemble | None, genes: np.ndarray, num_candidates: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of `genes` best first by the ensemble mean; random order without a surrogate."""
    if surrogate is None:
        return rng.permutation(len(genes))
    return np.argsort(-surrogate.predict(one_hot(genes, num_candidates)), kind="stable")


def pick_new(order: np.ndarray, genes: np.ndarray, evaluations: Evaluations, k: int) -> np.ndarray:
    """The first indices of `order` whose architectures are distinct, up to k not scored before
    (scored ones ride along: they cost nothing)."""
    picked, seen, new = [], set(), 0
    for i in order:
        key = tuple(int(g) for g in genes[i])
        if key in seen:
            continue
        seen.add(key)
        fresh = not evaluations.known(genes[i])
        if fresh and new == k:
            break
        picked.append(i)
        new += fresh
    return np.array(picked, dtype=np.int64)


def progressive(
    problem: Problem,
    evaluations: Evaluations,
    completer: Completer,
    allowed: np.ndarray,
    rng: np.random.Generator,
    budget: float,
) -> list[dict]:
    """Levels 1..L of the beam search within `budget` units; returns one log line per level."""
    layers, cands = allowed.shape
    beam, log, surrogate = Beam(np.zeros((1, 0), dtype=np.int64), completer.seeds[:1]), [], None
    for level in range(layers):
        k = max(int(budget - evaluations.spent + 1e-9) // (layers - level), 1)
        prefixes, parents = expand(beam, allowed)
        completions, ok = completer(prefixes, parents)
        prefixes, completions = prefixes[ok], completions[ok]
        if not len(prefixes) or not evaluations.affordable():
            log.append({"level": level + 1, "expansions": int(len(ok)), "completed": int(ok.sum()), "evaluated": 0})
            break
        picked = pick_new(rank(surrogate, completions, cands, rng), completions, evaluations, k)
        scores = evaluations(completions[picked])
        picked = picked[np.isfinite(scores)]
        beam = Beam(prefixes[picked], completions[picked])
        surrogate = fit_surrogate(evaluations, cands, rng)
        log.append(
            {
                "level": level + 1,
                "expansions": int(len(ok)),
                "completed": int(ok.sum()),
                "evaluated": int(len(picked)),
                "spent": evaluations.spent,
                "best": evaluations.best_value,
            }
        )
    return log


def neighbours(genes: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Every one-gene change of each architecture in `genes` [N, L] to another allowed candidate."""
    layers, cands = np.nonzero(allowed)
    out = np.repeat(genes, len(layers), axis=0)
    rows = np.arange(len(out))
    out[rows, np.tile(layers, len(genes))] = np.tile(cands, len(genes))
    changed = np.tile(cands, len(genes)) != np.repeat(genes, len(layers), axis=0)[rows, np.tile(layers, len(genes))]
    return out[changed]


def refine(problem: Problem, evaluations: Evaluations, allowed: np.ndarray, k: int, rng: np.random.Generator) -> int:
    """Spend what the levels left on the surrogate's best one-gene changes (meeting every bound) of the k best
    scored architectures that meet every bound, k at a time, refitting between rounds."""
    rounds = 0
    while evaluations.affordable() and rounds < REFINE_ROUNDS:
        pool = neighbours(best_feasible(problem, evaluations, k), allowed)
        pool = pool[problem.feasible(pool)] if len(pool) else pool
        fresh = pool[[not evaluations.known(g) for g in pool]] if len(pool) else pool
        if not len(fresh):
            break
        surrogate = fit_surrogate(evaluations, allowed.shape[1], rng)
        picked = pick_new(
            rank(surrogate, fresh, allowed.shape[1], rng), fresh, evaluations, min(k, evaluations.affordable())
        )
        evaluations(fresh[picked])
        rounds += 1
    return rounds


def best_feasible(problem: Problem, evaluations: Evaluations, k: int) -> np.ndarray:
    """[<=k, L] the best-scored architectures that meet every bound."""
    genes = np.array(list(evaluations.cache), dtype=np.int64).reshape(-1, problem.num_layers)
    scores = (
        np.where(problem.feasible(genes), np.array(list(evaluations.cache.values())), -np.inf) if len(genes) else []
    )
    order = np.argsort(-np.asarray(scores), kind="stable")[:k]
    return genes[order[np.isfinite(np.asarray(scores)[order])]]


@register_strategy(
    "pnas",
    offline=True,
    summary="PNAS: progressive layer-by-layer beam search ranked by an ensemble of 5 MLP surrogates",
)
def pnas_strategy(problem: Problem, evaluation: Evaluation, budget: Budget, seed: int) -> SearchResult:
    rng = np.random.default_rng(seed)
    evaluations = Evaluations(problem, evaluation, budget.evaluations)
    completer = Completer(problem, evaluation, rng)
    levels = progressive(
        problem, evaluations, completer, evaluation.allowed, rng, PROGRESSIVE_SHARE * budget.evaluations
    )
    k = max(int(budget.evaluations * PROGRESSIVE_SHARE) // problem.num_layers, 1)
    rounds = refine(problem, evaluations, evaluation.allowed, k, rng)
    return evaluations.result({"levels": levels, "beam": k, "refine_rounds": rounds})

"""Random search: the baseline every offline strategy is compared with (numpy only).

Architectures are drawn uniformly over each layer's allowed candidates (`Evaluation.allowed`) and scored
through `Evaluations` until the budget of distinct architectures is spent; the answer is the best one
scored that meets every bound. A space smaller than the budget stops once draws stop finding new
architectures (at most DRAWS_PER_EVALUATION draws per evaluation). Registered as the strategy "random".
"""

from __future__ import annotations

import numpy as np

from specialize.sampling import uniform_genes
from specialize.search.constraints import Problem
from specialize.search.offline import Evaluations
from specialize.search.penalty import Evaluation
from specialize.search.registry import Budget, SearchResult, register_strategy

BATCH = 32  # architectures drawn (and scored) at a time
DRAWS_PER_EVALUATION = 20  # cap on draws, so a space smaller than the budget ends


def leaves_a_layer_empty(allowed: np.ndarray) -> bool:
    """True when some layer has no allowed candidate (a per-layer cap below all of them): nothing to draw."""
    return not np.asarray(allowed).any(axis=1).all()


@register_strategy(
    "random", offline=True, summary="random search: uniform architectures until the evaluation budget is spent"
)
def random_strategy(problem: Problem, evaluation: Evaluation, budget: Budget, seed: int) -> SearchResult:
    rng = np.random.default_rng(seed)
    scores = Evaluations(problem, evaluation, budget.evaluations)
    if leaves_a_layer_empty(evaluation.allowed):
        return scores.result({"draws": 0})
    draws = 0
    while scores.remaining > 0 and draws < DRAWS_PER_EVALUATION * budget.evaluations:
        n = min(BATCH, scores.remaining)
        scores(uniform_genes(evaluation.allowed, rng, n))
        draws += n
    return scores.result({"draws": draws})

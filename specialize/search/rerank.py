"""Re-ranking the table's best answers with measured accuracy (`--rerank surrogate`, `rerank=`). Numpy only.

The table's score Σ T_d is a sum over layers; the sub-networks training measured after batch-norm
recalibration (the table's `results.spread`, about 30 spread over the MACs range) are whole-network truth.
"surrogate" fits PNAS's predictor (`surrogate.py`: 5 MLPs, each on a different 4/5 of the measured
sub-networks, one-hot architectures in, measured accuracy out) and re-ranks the k best distinct
architectures meeting every bound (`exact.top_k`) by its mean prediction; the top one is the answer.
Its cross-validated error (each member on the fifth it did not see) is reported beside the predictions:
with ~30 samples over a 12-layer space it is a coarse guide, and says so in numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from specialize.errors import SpecializeError
from specialize.registry import Registry
from specialize.search.surrogate import fit_ensemble, one_hot

MIN_MEASURED = 10  # measured sub-networks below which a surrogate is refused
TOP_K = 10  # candidates re-ranked by default


@dataclass(frozen=True)
class Reranked:
    order: np.ndarray  # [k] candidate indices, best first by the reranker
    predicted: np.ndarray  # [k] predicted accuracy of each candidate (ensemble mean)
    spread: np.ndarray  # [k] standard deviation across the ensemble's members
    cv_error: float | None  # mean |error| of each member on the measured sub-networks it did not see


def rerank_by_surrogate(
    candidates: np.ndarray, measured: np.ndarray, accuracy: np.ndarray, num_candidates: int, seed: int = 0
) -> Reranked:
    """candidates [k, L], measured [n, L] with their accuracy [n] -> the candidates re-ranked by the ensemble mean
    (ties keep the table's order)."""
    if len(measured) < MIN_MEASURED:
        raise SpecializeError(
            f"a surrogate rerank needs at least {MIN_MEASURED} measured sub-networks; got {len(measured)}"
        )
    ensemble = fit_ensemble(one_hot(measured, num_candidates), accuracy, seed=seed)
    members = ensemble.predict_members(one_hot(candidates, num_candidates))
    mean = members.mean(axis=0)
    return Reranked(np.argsort(-mean, kind="stable"), mean, members.std(axis=0), ensemble.cv_error)


RERANKERS: Registry[Callable[..., Reranked]] = Registry("rerank", "reranks", {"surrogate": rerank_by_surrogate})


def get_reranker(name: str) -> Callable[..., Reranked]:
    return RERANKERS.lookup(name)

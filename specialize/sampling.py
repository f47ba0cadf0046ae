"""The samplers, one of each kind. Numpy only.

- `uniform_genes` / `uniform_architectures`: each layer's candidate uniform over what the layer allows (the GA's
  first population, random search, EPNAS's starts, tests).
- `spread_architectures`: architectures spread over a space's MACs range (training's accuracy fit, table
  validation, benchmarks and the profiler's whole-network workloads).
"""

from __future__ import annotations

import numpy as np

from specialize.cost import cost_arrays
from specialize.errors import SpecializeError, option
from specialize.space import Architecture, SearchSpace


def uniform_genes(allowed: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, L] chromosomes, each gene uniform over its layer's allowed candidates ([L, C] mask)."""
    count = allowed.sum(axis=1)
    choices = np.stack([np.resize(np.flatnonzero(row), allowed.shape[1]) for row in allowed])
    picks = (rng.random((n, len(count))) * count).astype(np.int64)
    return choices[np.arange(len(count)), picks]


def uniform_architectures(space: SearchSpace, rng: np.random.Generator, n: int) -> list[Architecture]:
    """`n` architectures drawn by `uniform_genes` from the space's own mask."""
    return [space.arch_from_indices(g) for g in uniform_genes(np.array(space.allowed_mask()), rng, n)]


def check_seed(seed: int) -> None:
    """A sampling seed is a non-negative integer (numpy's generators refuse the rest with a traceback)."""
    if seed < 0:
        raise SpecializeError(f"{option('seed')} must be a non-negative integer, got {seed}")


def spread_architectures(space: SearchSpace, n: int, seed: int = 0) -> list[Architecture]:
    """`n` distinct architectures spread from the cheapest to the largest end of the space.

    Each draws a stratified size level u in [0, 1) and picks, per layer, the candidate near rank u of that
    layer's allowed candidates sorted by MACs (Gaussian jitter of a quarter of the ranks), so the sample is
    random within each stratum and covers the whole MACs range. Duplicates are redrawn. A `skip` a layer
    may not take sorts last and lies beyond that layer's top rank, so it is never drawn."""
    check_seed(seed)
    rng = np.random.default_rng(seed)
    costs = cost_arrays(space)
    order = np.argsort(np.where(costs.allowed, costs.macs, np.iinfo(np.int64).max), axis=1, kind="stable")
    top, layers = costs.allowed.sum(axis=1) - 1, np.arange(space.num_layers)
    archs: list[Architecture] = []
    seen: set[tuple[int, ...]] = set()
    for i in range(n):
        for _ in range(100):
            level = (i + rng.random()) / max(n, 1)
            ranks = np.clip(np.rint(level * top + rng.normal(0, 0.25 * top, space.num_layers)), 0, top).astype(int)
            indices = tuple(int(g) for g in order[layers, ranks])
            if indices not in seen:
                break
        seen.add(indices)
        archs.append(space.arch_from_indices(indices))
    return archs

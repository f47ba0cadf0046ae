"""The analytic cost model agrees exactly with torch's FLOP counter and parameter count."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from specialize.cost import arch_cost, cost_arrays, space_ranges
from specialize.sampling import uniform_architectures
from specialize.space import Architecture, SearchSpace, get_space
from supernet.elastic import Supernet

PONAS_A = (
    "k5e6,k5e3,k7e3se,k5e3se,k5e3,k7e3,k7e6se,k5e3se,k5e3se,k5e3se,"
    "k5e3,k7e3,k7e3,k7e3se,k7e6se,k7e3se,k5e3,k7e3se,k5e6se"
)


@lru_cache(maxsize=None)
def supernet(name: str) -> Supernet:
    return Supernet(get_space(name)).eval()


def random_archs(space: SearchSpace, n: int, seed: int = 0) -> list[Architecture]:
    fixed = [space.largest_arch(), space.smallest_arch()]
    return (fixed + uniform_architectures(space, np.random.default_rng(seed), n))[:n]


def counted(net: Supernet, arch: Architecture) -> tuple[int, int]:
    """(MACs, params) of the extracted sub-network as torch counts them (batch 1)."""
    static = net.extract(arch).eval()
    x = torch.rand(1, 3, arch.space.resolution, arch.space.resolution)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        static(x)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2, sum(p.numel() for p in static.parameters())


def assert_exact(name: str, n: int, seed: int = 0) -> None:
    space, net = get_space(name), supernet(name)
    mismatches = []
    for arch in random_archs(space, n, seed):
        cost = arch_cost(arch)
        macs, params = counted(net, arch)
        if (macs, params) != (cost["macs"], cost["params"]):
            mismatches.append((str(arch), macs, cost["macs"], params, cost["params"]))
    assert not mismatches, mismatches


def test_cifar10_50_archs_exact():
    assert_exact("cifar10", 50)


@pytest.mark.parametrize("name", ["ponas-imagenet", "ponas-table1"])
def test_ponas_few_archs_exact(name):
    assert_exact(name, 10)


def test_elastic_depth_archs_exact():
    """Architectures with skips (the smallest has one on every skippable layer) cost what torch counts."""
    space = get_space("cifar10-depth")
    skip = space.skip_index
    archs = random_archs(space, 30, seed=3)
    assert sum(skip in a.indices for a in archs) >= 5 and skip in archs[1].indices
    assert_exact("cifar10-depth", 30, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ponas-imagenet", "ponas-table1"])
def test_ponas_50_archs_exact(name):
    assert_exact(name, 50)


def test_ponas_a_matches_paper():
    cost = arch_cost(get_space("ponas-imagenet").parse_arch(PONAS_A))
    assert abs(cost["macs"] / 326e6 - 1) <= 0.015, cost["macs"]
    assert abs(cost["params"] / 5.1e6 - 1) <= 0.015, cost["params"]


def test_totals_keys_and_intensity():
    cost = arch_cost(get_space("cifar10").largest_arch(), dtype_bytes=2, batch=4)
    assert set(cost) == {"macs", "params", "bytes", "intensity", "peak_activation_bytes"}
    assert cost["intensity"] == pytest.approx(2 * cost["macs"] / cost["bytes"])
    assert all(cost[k] > 0 for k in cost)


def test_weights_are_read_once_per_batch_and_the_residual_is_held():
    """An op's bytes: its weights once, its activations once per image; a residual block's peak holds its input."""
    from specialize.cost import mbconv_ops

    op = mbconv_ops(16, 16, 8, 1, 3, 6, False)[0]
    assert op.bytes(4, 2) - op.bytes(4, 1) == 4 * (op.in_elems + op.out_elems)
    assert op.bytes(4, 1) == 4 * (op.params + op.in_elems + op.out_elems)
    held = max(o.activation_bytes() for o in mbconv_ops(16, 16, 8, 1, 3, 6, False))
    free = max(o.activation_bytes() for o in mbconv_ops(16, 24, 8, 1, 3, 6, False))  # no residual
    assert held == 4 * (2 * 96 * 64 + 16 * 64) and free == 4 * (2 * 96 * 64)  # the depthwise op peaks


def test_bytes_scale_with_dtype_and_batch():
    arch = get_space("cifar10").largest_arch()
    base, half, batched = arch_cost(arch), arch_cost(arch, dtype_bytes=2), arch_cost(arch, batch=8)
    assert half["bytes"] * 2 == base["bytes"]
    assert half["peak_activation_bytes"] * 2 == base["peak_activation_bytes"]
    assert batched["bytes"] > base["bytes"] and batched["peak_activation_bytes"] == 8 * base["peak_activation_bytes"]
    assert batched["macs"] == base["macs"] and batched["params"] == base["params"]


def test_cost_arrays_default_to_fp32_at_batch_one():
    arrays = cost_arrays(get_space("cifar10"))
    assert (arrays.dtype_bytes, arrays.batch) == (4, 1)
    arch = get_space("cifar10").largest_arch()
    block_bytes = sum(int(arrays.bytes[layer, i]) for layer, i in enumerate(arch.indices))
    assert arrays.fixed_bytes + block_bytes == arch_cost(arch, dtype_bytes=4, batch=1)["bytes"]


@pytest.mark.parametrize("name", ["cifar10", "cifar10-depth", "ponas-imagenet", "ponas-table1"])
def test_arrays_shape_and_ranges(name):
    space = get_space(name)
    arrays = cost_arrays(space)
    assert arrays.macs.shape == (space.num_layers, space.num_candidates)
    assert not arrays.macs.flags.writeable
    ranges = space_ranges(space)
    assert ranges["macs"] == (arch_cost(space.smallest_arch())["macs"], arch_cost(space.largest_arch())["macs"])
    for arch in random_archs(space, 10, seed=1):
        cost = arch_cost(arch)
        assert ranges["macs"][0] <= cost["macs"] <= ranges["macs"][1]
        assert ranges["params"][0] <= cost["params"] <= ranges["params"][1]


def test_arrays_sum_to_totals():
    space = get_space("cifar10")
    arrays, arch = cost_arrays(space), random_archs(space, 3, seed=2)[2]
    rows, cols = np.arange(space.num_layers), np.asarray(arch.indices)
    assert int(arrays.macs[rows, cols].sum()) + arrays.fixed_macs == arch_cost(arch)["macs"]
    data = arrays.to_dict()
    assert np.asarray(data["params"]).shape == (space.num_layers, space.num_candidates)

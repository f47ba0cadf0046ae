"""The cost model against brute force: every total recomputed from the ops by the formulas the module docstring
states (not by the Op methods under test), on a space no other test has built (so no cache answers for it), at a
dtype and batch other than the defaults. Plus the exact edges of the argument checks and the file form."""

from dataclasses import replace

import numpy as np
import pytest

from specialize import cost
from specialize.cost import (
    MAX_BATCH,
    MAX_DTYPE_BYTES,
    Op,
    arch_cost,
    arch_ops,
    candidate_ops,
    cost_arrays,
    head_ops,
    mbconv_ops,
    se_channels,
    stem_ops,
)
from specialize.errors import SpecializeError
from specialize.sampling import uniform_architectures
from specialize.space import get_space

SPACE = replace(get_space("cifar10-depth"), name="cost-brute-force", resolution=24)


@pytest.fixture(autouse=True)
def no_cached_arrays():
    """Every test computes the arrays itself: a cache filled elsewhere (another test, a mutation run's first pass)
    must not answer for the code under test."""
    cost._cost_arrays.cache_clear()
    yield
    cost._cost_arrays.cache_clear()


def brute_force(arch, dtype_bytes: int, batch: int) -> dict:
    ops = arch_ops(arch)
    macs = sum(o.macs for o in ops)
    moved = sum(dtype_bytes * (o.params + batch * (o.in_elems + o.out_elems)) for o in ops)
    return {
        "macs": macs,
        "params": sum(o.params for o in ops),
        "bytes": moved,
        "intensity": 2 * macs / moved,
        "peak_activation_bytes": max(dtype_bytes * batch * (o.in_elems + o.out_elems + o.held_elems) for o in ops),
    }


@pytest.mark.parametrize("dtype_bytes,batch", [(4, 1), (2, 3), (1, 7)])
def test_every_total_equals_the_sum_over_its_ops(dtype_bytes, batch):
    for arch in uniform_architectures(SPACE, np.random.default_rng(batch), 25):
        assert arch_cost(arch, dtype_bytes, batch) == pytest.approx(brute_force(arch, dtype_bytes, batch), rel=1e-12)


def test_the_op_methods_follow_the_documented_formulas():
    op = Op("conv", macs=10, params=6, in_elems=4, out_elems=5, held_elems=3)
    assert op.bytes(2, 3) == 2 * (6 + 3 * (4 + 5)) and op.bytes() == 4 * (6 + 4 + 5)
    assert op.activation_bytes(2, 3) == 2 * 3 * (4 + 5 + 3) and op.activation_bytes() == 4 * (4 + 5 + 3)


def test_squeeze_excite_candidates_have_their_se_op_and_skip_has_none():
    names = list(SPACE.candidate_names)
    se, plain = SPACE.candidates[names.index("k3e3se")], SPACE.candidates[names.index("k3e3")]
    assert [o.kind for o in candidate_ops(SPACE, 1, se)] == ["conv", "dwconv", "se", "conv"]
    assert [o.kind for o in candidate_ops(SPACE, 1, plain)] == ["conv", "dwconv", "conv"]
    assert candidate_ops(SPACE, 1, SPACE.candidates[names.index("skip")]) == []


def test_mbconv_by_hand_residual_held_se_width_and_mid_channels():
    residual = mbconv_ops(16, 16, 8, 1, 3, 3, True)
    assert [o.kind for o in residual] == ["conv", "dwconv", "se", "conv"]
    assert all(o.held_elems == 16 * 8 * 8 for o in residual)  # the block input stays alive for the add
    assert all(o.held_elems == 0 for o in mbconv_ops(16, 24, 8, 2, 3, 3, True))  # no residual: nothing held
    assert residual[2].macs == 2 * 48 * se_channels(48) and (se_channels(16), se_channels(48)) == (8, 12)
    assert mbconv_ops(16, 16, 8, 1, 3, 3, True, se_reduced=4)[2].macs == 2 * 48 * 4
    wide = mbconv_ops(16, 16, 8, 1, 3, 3, False, mid_channels=200)
    assert wide[0].out_elems == 200 * 64 and wide[1].macs == 64 * 200 * 9


def test_stem_and_head_by_hand():
    size, out, c = SPACE.resolution, SPACE.stem_out_size, SPACE.stem_channels
    assert stem_ops(SPACE)[0] == Op("conv", out * out * 3 * c * 9, 3 * c * 9 + 2 * c, 3 * size * size, c * out * out)
    head, classes = SPACE.head_channels, SPACE.num_classes
    assert head_ops(SPACE)[-1] == Op("fc", head * classes, head * classes + classes, head, classes)
    assert head_ops(SPACE)[0].kind == "conv"


def test_the_arrays_as_a_file_name_every_part():
    arrays = cost_arrays(SPACE, 2, 3)
    data = arrays.to_dict()
    assert set(data) == {"macs", "params", "bytes", "peak_activation_bytes", "fixed", "dtype_bytes", "batch", "allowed"}
    assert data["macs"] == arrays.macs.tolist() and data["bytes"] == arrays.bytes.tolist()
    assert data["peak_activation_bytes"] == arrays.peak_activation_bytes.tolist()
    assert data["fixed"] == {
        "macs": arrays.fixed_macs,
        "params": arrays.fixed_params,
        "bytes": arrays.fixed_bytes,
        "peak_activation_bytes": arrays.fixed_peak_activation_bytes,
    }
    assert (data["dtype_bytes"], data["batch"], data["allowed"]) == (2, 3, arrays.allowed.tolist())
    assert "allowed" not in cost_arrays(get_space("cifar10")).to_dict()  # every cell allowed: nothing to say


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"batch": 0}, f"batch 0 is out of range: 1..{MAX_BATCH}"),
        ({"batch": MAX_BATCH + 1}, f"batch {MAX_BATCH + 1} is out of range: 1..{MAX_BATCH}"),
        ({"batch": True}, f"batch True is out of range: 1..{MAX_BATCH}"),
        ({"batch": 2.0}, f"batch 2.0 is out of range: 1..{MAX_BATCH}"),
        ({"dtype_bytes": 0}, f"dtype bytes 0 is out of range: 1..{MAX_DTYPE_BYTES}"),
        ({"dtype_bytes": MAX_DTYPE_BYTES + 1}, f"dtype bytes 17 is out of range: 1..{MAX_DTYPE_BYTES}"),
        ({"dtype_bytes": True}, f"dtype bytes True is out of range: 1..{MAX_DTYPE_BYTES}"),
        ({"dtype_bytes": 4.0}, f"dtype bytes 4.0 is out of range: 1..{MAX_DTYPE_BYTES}"),
    ],
)
def test_bad_batch_and_dtype_get_one_exact_line(kwargs, message):
    with pytest.raises(SpecializeError) as info:
        cost_arrays(SPACE, **kwargs)
    assert str(info.value) == message


def test_the_range_edges_are_accepted():
    tiny = replace(SPACE, name="cost-edges", resolution=8)
    for dtype_bytes, batch in ((1, 1), (MAX_DTYPE_BYTES, MAX_BATCH)):
        arrays = cost_arrays(tiny, dtype_bytes, batch)
        assert (arrays.dtype_bytes, arrays.batch) == (dtype_bytes, batch)

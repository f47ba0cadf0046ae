"""Analytic cost model: MACs, parameters, bytes moved, compute intensity, peak activation memory.

Pure Python and numpy (no torch). Every block is broken into its ops; an op's cost counts:
- MACs of convolutions and the fully connected layer, the ops that `FlopCounterMode` counts
  (it reports 2 FLOPs per MAC). Squeeze-and-excite's two 1x1 convs are counted; its pooling and
  multiply, batch norm, activations, residual adds, global pooling and the in-graph input
  normalization are not (FlopCounterMode does not count them either).
- parameters: conv and FC weights, FC and SE biases, batch-norm scale and shift (not running stats).
- bytes moved: the op's weights plus its input and output activations, for a dtype and batch.
  Batch norm and activations are taken as fused into the op before them.
- peak activation: the largest input + output (+ a residual held aside) of any op.
The identity `skip` (elastic depth) has no ops: zero MACs, parameters and bytes, and it adds nothing to
the peak (its tensor is already counted as the output of the op before it and the input of the next).
MobileNet-family papers call MACs "FLOPs"; intensity is in FLOPs (2 x MACs) per byte, as in EPNAS.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from specialize.errors import SpecializeError
from specialize.space import Architecture, Candidate, SearchSpace, conv_out_size


@dataclass(frozen=True)
class Op:
    kind: str  # conv, dwconv, se, fc
    macs: int
    params: int
    in_elems: int  # activation elements read (per image)
    out_elems: int  # activation elements written (per image)
    held_elems: int = 0  # elements kept alive beside the op (residual input)

    def bytes(self, dtype_bytes: int = 4, batch: int = 1) -> int:
        return dtype_bytes * (self.params + batch * (self.in_elems + self.out_elems))

    def activation_bytes(self, dtype_bytes: int = 4, batch: int = 1) -> int:
        return dtype_bytes * batch * (self.in_elems + self.out_elems + self.held_elems)


def se_channels(expanded: int) -> int:
    return max(expanded // 4, 8)


def mbconv_ops(
    in_c: int,
    out_c: int,
    size: int,
    stride: int,
    kernel: int,
    expansion: int,
    se: bool,
    se_reduced: int | None = None,
    mid_channels: int | None = None,
) -> list[Op]:
    """Ops of MBConv: [1x1 expand] -> kxk depthwise -> [SE] -> 1x1 project; residual if it fits.
    The SE squeezes to `se_reduced` channels (default: this project's `se_channels` of the expanded width);
    `mid_channels` sets the expanded width where it is not in_c x expansion (MobileNetV3's 200 or 184)."""
    mid = in_c * expansion if mid_channels is None else mid_channels
    out_size = conv_out_size(size, stride)
    hw_in, hw_out = size * size, out_size * out_size
    held = in_c * hw_in if stride == 1 and in_c == out_c else 0
    ops = []
    if mid != in_c:
        ops.append(Op("conv", hw_in * in_c * mid, in_c * mid + 2 * mid, in_c * hw_in, mid * hw_in, held))
    ops.append(
        Op("dwconv", hw_out * mid * kernel * kernel, mid * kernel * kernel + 2 * mid, mid * hw_in, mid * hw_out, held)
    )
    if se:
        r = se_channels(mid) if se_reduced is None else se_reduced
        ops.append(Op("se", 2 * mid * r, 2 * mid * r + r + mid, mid * hw_out, mid * hw_out, held))
    ops.append(Op("conv", hw_out * mid * out_c, mid * out_c + 2 * out_c, mid * hw_out, out_c * hw_out, held))
    return ops


def candidate_ops(space: SearchSpace, layer: int, cand: Candidate) -> list[Op]:
    """The ops of `cand` at `layer`; none for `skip` (the identity runs nothing)."""
    if cand.is_skip:
        return []
    spec, size = space.layers[layer], space.layer_in_sizes()[layer]
    return mbconv_ops(spec.in_channels, spec.out_channels, size, spec.stride, cand.kernel, cand.expansion, cand.se)


def stem_ops(space: SearchSpace) -> list[Op]:
    size, out = space.resolution, space.stem_out_size
    c = space.stem_channels
    conv = Op("conv", out * out * 3 * c * 9, 3 * c * 9 + 2 * c, 3 * size * size, c * out * out)
    return [conv] + mbconv_ops(c, space.first_block_channels, out, 1, 3, 1, False)


def head_ops(space: SearchSpace) -> list[Op]:
    size, c_in, c = space.final_size, space.layers[-1].out_channels, space.head_channels
    hw = size * size
    conv = Op("conv", hw * c_in * c, c_in * c + 2 * c, c_in * hw, c * hw)
    fc = Op("fc", c * space.num_classes, c * space.num_classes + space.num_classes, c, space.num_classes)
    return [conv, fc]


def arch_ops(arch: Architecture) -> list[Op]:
    """Every op of a whole architecture: stem, head and each layer's chosen block."""
    space = arch.space
    return (
        stem_ops(space)
        + head_ops(space)
        + [op for layer, cand in enumerate(arch.candidates) for op in candidate_ops(space, layer, cand)]
    )


@dataclass(frozen=True)
class CostArrays:
    """Per (layer, candidate) costs shaped [layers, candidates], plus the fixed stem and head. `allowed`
    is the space's mask (`SearchSpace.allowed_mask`): a `skip` cell where the layer changes shape holds
    zeros and must never be chosen; every extreme over candidates reads the mask (`masked_extremes`)."""

    macs: np.ndarray
    params: np.ndarray
    bytes: np.ndarray
    peak_activation_bytes: np.ndarray
    fixed_macs: int
    fixed_params: int
    fixed_bytes: int
    fixed_peak_activation_bytes: int
    dtype_bytes: int
    batch: int
    allowed: np.ndarray

    def to_dict(self) -> dict:
        return {
            "macs": self.macs.tolist(),
            "params": self.params.tolist(),
            "bytes": self.bytes.tolist(),
            "peak_activation_bytes": self.peak_activation_bytes.tolist(),
            "fixed": {
                "macs": self.fixed_macs,
                "params": self.fixed_params,
                "bytes": self.fixed_bytes,
                "peak_activation_bytes": self.fixed_peak_activation_bytes,
            },
            "dtype_bytes": self.dtype_bytes,
            "batch": self.batch,
            **({} if self.allowed.all() else {"allowed": self.allowed.tolist()}),
        }


def _sum_ops(ops: list[Op], dtype_bytes: int, batch: int) -> tuple[int, int, int, int]:
    return (
        sum(o.macs for o in ops),
        sum(o.params for o in ops),
        sum(o.bytes(dtype_bytes, batch) for o in ops),
        max((o.activation_bytes(dtype_bytes, batch) for o in ops), default=0),
    )


@lru_cache(maxsize=32)
def _cost_arrays(space: SearchSpace, dtype_bytes: int, batch: int) -> CostArrays:
    shape = (space.num_layers, space.num_candidates)
    arrays = [np.zeros(shape, dtype=np.int64) for _ in range(4)]
    for l in range(space.num_layers):
        for i, cand in enumerate(space.candidates):
            for array, value in zip(arrays, _sum_ops(candidate_ops(space, l, cand), dtype_bytes, batch)):
                array[l, i] = value
    allowed = np.array(space.allowed_mask(), dtype=bool).reshape(shape)
    for array in (*arrays, allowed):
        array.setflags(write=False)
    fixed = _sum_ops(stem_ops(space) + head_ops(space), dtype_bytes, batch)
    return CostArrays(*arrays, *fixed, dtype_bytes=dtype_bytes, batch=batch, allowed=allowed)


MAX_BATCH, MAX_DTYPE_BYTES = 1 << 20, 16  # int64 byte counts stay exact far beyond these


def cost_arrays(space: SearchSpace, dtype_bytes: int = 4, batch: int = 1) -> CostArrays:
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or not 1 <= batch <= MAX_BATCH:
        raise SpecializeError(f"batch {batch!r} is out of range: 1..{MAX_BATCH}")
    if (
        isinstance(dtype_bytes, bool)
        or not isinstance(dtype_bytes, numbers.Integral)
        or not 1 <= dtype_bytes <= MAX_DTYPE_BYTES
    ):
        raise SpecializeError(f"dtype bytes {dtype_bytes!r} is out of range: 1..{MAX_DTYPE_BYTES}")
    return _cost_arrays(space, dtype_bytes, batch)


def arch_cost(arch: Architecture, dtype_bytes: int = 4, batch: int = 1) -> dict:
    """Totals for one architecture: macs, params, bytes, intensity (FLOPs/byte), peak activation bytes."""
    arrays = cost_arrays(arch.space, dtype_bytes, batch)
    rows = np.arange(arch.space.num_layers)
    cols = np.asarray(arch.indices)
    macs = int(arrays.macs[rows, cols].sum()) + arrays.fixed_macs
    total_bytes = int(arrays.bytes[rows, cols].sum()) + arrays.fixed_bytes
    return {
        "macs": macs,
        "params": int(arrays.params[rows, cols].sum()) + arrays.fixed_params,
        "bytes": total_bytes,
        "intensity": 2 * macs / total_bytes,
        "peak_activation_bytes": int(
            max(arrays.peak_activation_bytes[rows, cols].max(), arrays.fixed_peak_activation_bytes)
        ),
    }


def masked_extremes(values: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[L] per-layer min and max of `values` [L, C] over the allowed candidates only."""
    values = np.asarray(values, dtype=float)
    return np.where(allowed, values, np.inf).min(axis=1), np.where(allowed, values, -np.inf).max(axis=1)


def space_ranges(space: SearchSpace) -> dict:
    """Smallest and largest MACs and params over the space (each is a per-layer min/max over allowed cells)."""
    a = cost_arrays(space)

    def span(values: np.ndarray, fixed: int) -> tuple[int, int]:
        low, high = masked_extremes(values, a.allowed)
        return int(low.sum()) + fixed, int(high.sum()) + fixed

    return {"macs": span(a.macs, a.fixed_macs), "params": span(a.params, a.fixed_params)}

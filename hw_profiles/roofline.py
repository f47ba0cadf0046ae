"""Estimated profiles from a roofline model over the analytic cost model's ops.

Per op: time = max(2 * MACs * batch / peak FLOP/s, bytes moved / memory bandwidth) + per-kernel
overhead. A block's latency is the sum over its ops; the stem and head likewise. The figures come
from the device registry (datasheet peaks, an assumed overhead). An estimate ranks architectures; its
absolute values are only as good as the roofline: measure (`specialize profile`) to know.
"""
from __future__ import annotations

import numpy as np

from hw_profiles.devices import Device
from hw_profiles.profile import DeviceProfile
from specialize.cost import Op, candidate_ops, head_ops, stem_ops
from specialize.errors import SpecializeError
from specialize.fileio import provenance
from specialize.space import SearchSpace

DTYPE_BYTES = {"fp32": 4, "fp16": 2}


def ops_ms(ops: list[Op], device: Device, precision: str, batch: int = 1) -> float:
    peak, bandwidth = device.peak_flops(precision), device.figure("memory_bandwidth")
    overhead = device.figure("kernel_overhead_s")
    dtype_bytes = DTYPE_BYTES[precision]
    seconds = sum(max(2 * op.macs * batch / peak, op.bytes(dtype_bytes, batch) / bandwidth) + overhead for op in ops)
    return 1e3 * seconds


def estimate_profile(device: Device, space: SearchSpace, precision: str | None = None, batch: int = 1,
                     resolved_from: str | None = None) -> DeviceProfile:
    """A `kind="estimated"`, `runtime="roofline"` profile of `space` on `device`."""
    precision = precision or device.default_precision
    if precision not in DTYPE_BYTES:
        raise SpecializeError(f"unknown precision {precision!r}; valid: {', '.join(DTYPE_BYTES)}")
    latency = np.array([[ops_ms(candidate_ops(space, layer, cand), device, precision, batch) for cand in space.candidates]
                        for layer in range(space.num_layers)])
    fixed = {"stem": ops_ms(stem_ops(space), device, precision, batch), "head": ops_ms(head_ops(space), device, precision, batch)}
    hardware = {"device": device.name, "description": device.description, "processor": device.processor,
                "figures": device.figures, "figures_date": device.date,
                "model": "per op: max(2*MACs/peak_flops, bytes/memory_bandwidth) + kernel_overhead_s"}
    return DeviceProfile(
        name=device.name, kind="estimated", runtime="roofline", space=space, latency_ms=latency, fixed_ms=fixed,
        precision=precision, batch=batch, hardware=hardware, resolved_from=resolved_from,
        provenance=provenance(device=device.name, precision=precision, batch=batch, model="roofline"),
    )

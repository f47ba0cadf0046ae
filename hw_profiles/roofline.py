"""Estimated profiles: the op-type cost model on datasheet figures, scaled to a published anchor.

Per op: compute_weight[type] * FLOPs / peak FLOP/s + bytes / memory bandwidth + kernels[type] *
per-kernel overhead, with the op-type terms fitted on this CPU (`hw_profiles.opmodel`) and peak,
bandwidth and overhead from the device file. That datasheet model is then scaled by one factor so
that it reproduces the device's "fit" anchor: a published end-to-end latency of a named MobileNet
on that device (`hw_profiles.reference_networks`). Anchors marked "check" are not used for the
scale; their residuals, with the op model's own fit error on this CPU, give the expected error band
(`DeviceProfile.expected_error`). A device without a check anchor has no band: say so, not ±0%.
"""
from __future__ import annotations

import math
import numpy as np

from hw_profiles.devices import Device
from hw_profiles.opmodel import OP_TYPES, features, op_model
from hw_profiles.profile import DeviceProfile
from hw_profiles.reference_networks import REFERENCE_NETWORKS
from specialize.cost import Op, candidate_ops, head_ops, stem_ops
from specialize.errors import SpecializeError
from specialize.fileio import provenance
from specialize.space import SearchSpace

DTYPE_BYTES = {"fp32": 4, "fp16": 2}
ANCHOR_BATCH = 1   # published anchors are single-image latencies


def term_ms(ops: list[Op], device: Device, precision: str, batch: int = 1) -> np.ndarray:
    """[compute, memory, per-kernel] ms of `ops` under the op-type model on the datasheet figures."""
    model, n = op_model(), len(OP_TYPES)
    row = features(ops, DTYPE_BYTES[precision], batch)
    compute = sum(model["compute_weight"][t] * row[i] for i, t in enumerate(OP_TYPES)) / device.peak_flops(precision)
    kernels = sum(model["kernels"][t] * row[n + i] for i, t in enumerate(OP_TYPES)) * device.figure("kernel_overhead_s")
    return 1e3 * np.array([compute, row[-1] / device.figure("memory_bandwidth"), kernels])


def datasheet_ms(ops: list[Op], device: Device, precision: str, batch: int = 1) -> float:
    """The op-type model on the device's datasheet figures, before anchoring (ms)."""
    return float(term_ms(ops, device, precision, batch).sum())


def anchoring(device: Device, precision: str) -> dict:
    """Scale, residuals and expected error band from the device's anchors at this precision (its
    anchors of another precision when it has none at this one; each row says its precision)."""
    anchors = [a for a in device.anchors if a["precision"] == precision] or list(device.anchors)
    fits = [a for a in anchors if a["role"] == "fit"]
    if not fits:
        return {"scale": 1.0, "anchors": [], "expected_error": None,
                "note": "no published anchor: datasheet figures only, error unknown"}
    predicted = {a["network"]: datasheet_ms(REFERENCE_NETWORKS[a["network"]](), device, precision) for a in anchors}
    scale = float(np.exp(np.mean([math.log(a["latency_ms"] / predicted[a["network"]]) for a in fits])))
    rows = [{**a, "estimated_ms": round(float(scale * predicted[a["network"]]), 3),
             "residual": round(float(scale * predicted[a["network"]] / a["latency_ms"] - 1), 4)} for a in anchors]
    checks = [r["residual"] for r in rows if r["role"] == "check"]
    fit_error = op_model()["fit"]["network_mape"]
    band = math.sqrt(max(abs(c) for c in checks) ** 2 + fit_error ** 2) if checks else None
    return {"scale": scale, "anchors": rows, "expected_error": None if band is None else round(float(band), 3),
            "note": "band = largest check-anchor residual and the op model's fit error on this CPU, in quadrature"
                    if checks else "no check anchor: the fit anchor is reproduced by construction, error unknown"}


def at_batch(anchor: dict, batch: int) -> dict:
    """The anchoring as it applies at `batch`: the scale carries over (the op model scales FLOPs and
    activation bytes by the batch, kernel overheads are paid once), the error band does not."""
    if batch == ANCHOR_BATCH or anchor["expected_error"] is None:
        return anchor
    return {**anchor, "expected_error": None,
            "note": f"anchors are batch-{ANCHOR_BATCH} latencies; at batch {batch} the op model extrapolates "
                    f"(FLOPs and activation bytes x {batch}, per-kernel overheads once), so the error is unknown"}


def ops_ms(ops: list[Op], device: Device, precision: str, batch: int = 1, scale: float | None = None) -> float:
    """Estimated ms of `ops` on `device`: the datasheet model times the anchor scale."""
    scale = anchoring(device, precision)["scale"] if scale is None else scale
    return scale * datasheet_ms(ops, device, precision, batch)


def estimate_profile(device: Device, space: SearchSpace, precision: str | None = None, batch: int = 1,
                     resolved_from: str | None = None) -> DeviceProfile:
    """A `kind="estimated"`, `runtime="roofline"` profile of `space` on `device`."""
    precision = precision or device.default_precision
    if precision not in DTYPE_BYTES:
        raise SpecializeError(f"unknown precision {precision!r}; valid: {', '.join(DTYPE_BYTES)}")
    anchor = at_batch(anchoring(device, precision), batch)
    scale = anchor["scale"]
    latency = np.array([[ops_ms(candidate_ops(space, layer, cand), device, precision, batch, scale) for cand in space.candidates]
                        for layer in range(space.num_layers)])
    fixed = {part: ops_ms(ops, device, precision, batch, scale) for part, ops in (("stem", stem_ops(space)), ("head", head_ops(space)))}
    hardware = {"device": device.name, "description": device.description, "processor": device.processor,
                "figures": device.figures, "figures_date": device.date, "anchor": anchor,
                "model": "per op: compute_weight[type]*FLOPs/peak_flops + bytes/memory_bandwidth + kernels[type]*"
                         "kernel_overhead_s (op-type terms fitted on this CPU, hw_profiles/op_model.json), x anchor scale"}
    return DeviceProfile(
        name=device.name, kind="estimated", runtime="roofline", space=space, latency_ms=latency, fixed_ms=fixed,
        precision=precision, batch=batch, hardware=hardware, resolved_from=resolved_from,
        provenance=provenance(device=device.name, precision=precision, batch=batch, model="op-type roofline, anchored"),
    )

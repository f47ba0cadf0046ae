"""Estimated profiles: the op-type cost model on datasheet figures, scaled to a published anchor.

Per op: compute_weight[type] * FLOPs / peak FLOP/s + bytes / memory bandwidth + kernels[type] *
per-kernel overhead, with the op-type terms fitted on this CPU (`hw_profiles.opmodel`) and peak,
bandwidth and overhead from the device file. That datasheet model is then scaled by one factor so
that it reproduces the device's "fit" anchor: a published end-to-end latency of a named MobileNet
on that device (`hw_profiles.reference_networks`). Anchors marked "check" are not used for the
scale; their residuals, with the op model's own fit error on this CPU, give the expected error band
(`DeviceProfile.expected_error`). A device without a check anchor has no band: say so, not ±0%.
Squeeze-excite gets its own factor on its per-kernel weight where a device publishes a network that has
it (EfficientNet-B0) beside one that does not; other devices of the same processor class borrow it
(`anchoring`).
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

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
ANCHOR_BATCH = 1  # published anchors are single-image latencies


def term_ms(ops: list[Op], device: Device, precision: str, batch: int = 1, se_factor: float = 1.0) -> np.ndarray:
    """[compute, memory, per-kernel] ms of `ops` under the op-type model on the datasheet figures;
    `se_factor` scales squeeze-excite's per-kernel weight (see `anchoring`)."""
    model, n = op_model(), len(OP_TYPES)
    row = features(ops, DTYPE_BYTES[precision], batch)
    weights = {**model["kernels"], "squeeze_excite": se_factor * model["kernels"]["squeeze_excite"]}
    compute = sum(model["compute_weight"][t] * row[i] for i, t in enumerate(OP_TYPES)) / device.peak_flops(precision)
    kernels = sum(weights[t] * row[n + i] for i, t in enumerate(OP_TYPES)) * device.figure("kernel_overhead_s")
    return 1e3 * np.array([compute, row[-1] / device.figure("memory_bandwidth"), kernels])


def datasheet_ms(ops: list[Op], device: Device, precision: str, batch: int = 1, se_factor: float = 1.0) -> float:
    """The op-type model on the device's datasheet figures, before anchoring (ms)."""
    return float(term_ms(ops, device, precision, batch, se_factor).sum())


def has_squeeze_excite(network: str) -> bool:
    return any(op.kind == "se" for op in REFERENCE_NETWORKS[network]())


def device_anchors(device: Device, precision: str) -> list[dict]:
    """The device's anchors at this precision; when it has none there, those at its default precision (else all):
    one precision's anchors at a time, never a mixture."""
    at = [a for a in device.anchors if a["precision"] == precision]
    return at or [a for a in device.anchors if a["precision"] == device.default_precision] or list(device.anchors)


def fitted_se_factor(device: Device, precision: str, scale: float) -> float | None:
    """Squeeze-excite's per-kernel weight relative to this CPU's, solved from the device's fit anchors
    that have squeeze-excite once `scale` is set by the ones that do not (None without such a pair)."""
    anchors = device_anchors(device, precision)
    se_fits = [a for a in anchors if a["role"] == "fit" and has_squeeze_excite(a["network"])]
    if not se_fits or all(has_squeeze_excite(a["network"]) for a in anchors if a["role"] == "fit"):
        return None
    factors = []
    for a in se_fits:
        ops = REFERENCE_NETWORKS[a["network"]]()
        without = datasheet_ms(ops, device, precision, se_factor=0.0)
        per_unit = datasheet_ms(ops, device, precision, se_factor=1.0) - without
        factors.append(max(0.0, (a["latency_ms"] / scale - without) / per_unit))
    return float(np.mean(factors))


def borrowed_se_factor(device: Device, precision: str) -> tuple[float, str]:
    """(factor, where it comes from) for a device without its own squeeze-excite fit anchor: the mean
    factor of the registered devices of the same processor class that have one at this precision, else at the
    device's default precision (an int8 GPU estimate takes fp16's), else 1 (this CPU's)."""
    from hw_profiles.devices import devices

    donors = {}
    for other in devices().values():
        has_figure = f"peak_flops_{precision}" in other.figures
        if other.processor == device.processor and other.name != device.name and has_figure:
            scale = plain_scale(other, precision)
            factor = None if scale is None else fitted_se_factor(other, precision, scale)
            if factor is not None:
                donors[other.name] = factor
    if not donors and precision != device.default_precision:  # squeeze-excite's cost is its kernels': borrow
        factor, source = borrowed_se_factor(device, device.default_precision)  # the default precision's factor
        if "borrowed" in source:
            return factor, f"{source} at {device.default_precision} (none at {precision})"
    if not donors:
        return 1.0, "as fitted on this CPU (no squeeze-excite fit anchor on a device of this kind)"
    return float(np.mean(list(donors.values()))), f"borrowed from {', '.join(donors)}'s EfficientNet-B0 fit anchor"


def plain_scale(device: Device, precision: str) -> float | None:
    """The anchor scale: geometric mean of published / datasheet ms over the fit anchors without
    squeeze-excite (all fit anchors when every one has it); None without a fit anchor."""
    fits = [a for a in device_anchors(device, precision) if a["role"] == "fit"]
    plain = [a for a in fits if not has_squeeze_excite(a["network"])] or fits
    if not plain:
        return None
    return float(
        np.exp(
            np.mean(
                [
                    math.log(a["latency_ms"] / datasheet_ms(REFERENCE_NETWORKS[a["network"]](), device, precision))
                    for a in plain
                ]
            )
        )
    )


def anchoring(device: Device, precision: str) -> dict:
    """Scale, squeeze-excite factor, residuals and expected error band from the device's anchors at this
    precision (its anchors of another precision when it has none at this one; each row says its precision).

    One scale cannot carry squeeze-excite from this CPU to a GPU: EfficientNet-B0 on jetson-agx-orin came
    out 4.4x too slow with it, because this CPU pays about 18 conv kernels' overhead per squeeze-excite and
    a GPU far fewer. So where a device has a squeeze-excite fit anchor beside a plain one, the plain ones set
    the scale and the squeeze-excite one sets squeeze-excite's kernel weight; devices of the same processor
    class without one borrow that factor, and say so."""
    anchors = device_anchors(device, precision)
    scale = plain_scale(device, precision)
    borrowed = bool(anchors) and all(a["precision"] != precision for a in anchors)
    if scale is None:
        return {
            "scale": 1.0,
            "se_factor": 1.0,
            "se_source": "as fitted on this CPU",
            "anchors": [],
            "expected_error": None,
            "note": "no published anchor: datasheet figures only, error unknown",
        }
    own = fitted_se_factor(device, precision, scale)
    se_factor, se_source = (
        (own, "fitted on this device's EfficientNet-B0 anchor")
        if own is not None
        else borrowed_se_factor(device, precision)
    )
    predicted = {
        a["network"]: datasheet_ms(REFERENCE_NETWORKS[a["network"]](), device, precision, se_factor=se_factor)
        for a in anchors
    }
    rows = [
        {
            **a,
            "estimated_ms": round(float(scale * predicted[a["network"]]), 3),
            "residual": round(float(scale * predicted[a["network"]] / a["latency_ms"] - 1), 4),
        }
        for a in anchors
    ]
    checks = [r["residual"] for r in rows if r["role"] == "check"]
    fit_error = op_model()["fit"]["network_mape"]
    band = math.sqrt(max(abs(c) for c in checks) ** 2 + fit_error**2) if checks else None
    if borrowed and precision == "int8":  # no published INT8 latency checks this: its error is unknown
        return {
            "scale": scale,
            "se_factor": round(se_factor, 4),
            "se_source": se_source,
            "anchors": rows,
            "expected_error": None,
            "note": f"no published int8 anchor: scaled by its {anchors[0]['precision']} anchors, error unknown",
        }
    return {
        "scale": scale,
        "se_factor": round(se_factor, 4),
        "se_source": se_source,
        "anchors": rows,
        "expected_error": None if band is None else round(float(band), 3),
        "note": "band = largest check-anchor residual and the op model's fit error on this CPU, in quadrature"
        if checks
        else "no check anchor: the fit anchor is reproduced by construction, error unknown",
    }


def at_batch(anchor: dict, batch: int) -> dict:
    """The anchoring as it applies at `batch`: the scale carries over (the op model scales FLOPs and
    activation bytes by the batch, kernel overheads are paid once), the error band does not."""
    if batch == ANCHOR_BATCH or anchor["expected_error"] is None:
        return anchor
    return {
        **anchor,
        "expected_error": None,
        "note": f"anchors are batch-{ANCHOR_BATCH} latencies; at batch {batch} the op model extrapolates "
        f"(FLOPs and activation bytes x {batch}, per-kernel overheads once), so the error is unknown",
    }


def ops_ms(ops: list[Op], device: Device, precision: str, batch: int = 1, anchor: dict | None = None) -> float:
    """Estimated ms of `ops` on `device`: the datasheet model (squeeze-excite factor applied) times the anchor scale."""
    anchor = anchoring(device, precision) if anchor is None else anchor
    return anchor["scale"] * datasheet_ms(ops, device, precision, batch, anchor["se_factor"])


def estimate_profile(
    device: Device, space: SearchSpace, precision: str | None = None, batch: int = 1, resolved_from: str | None = None
) -> DeviceProfile:
    """A `kind="estimated"`, `runtime="roofline"` profile of `space` on `device`."""
    precision = precision or device.default_precision
    if precision not in DTYPE_BYTES:
        raise SpecializeError(f"unknown precision {precision!r}; valid: {', '.join(DTYPE_BYTES)}")
    anchor = at_batch(anchoring(device, precision), batch)
    latency = np.array(
        [
            [ops_ms(candidate_ops(space, layer, cand), device, precision, batch, anchor) for cand in space.candidates]
            for layer in range(space.num_layers)
        ]
    )
    fixed = {
        part: ops_ms(ops, device, precision, batch, anchor)
        for part, ops in (("stem", stem_ops(space)), ("head", head_ops(space)))
    }
    hardware = {
        "device": device.name,
        "description": device.description,
        "processor": device.processor,
        "figures": device.figures,
        "figures_date": device.date,
        "anchor": anchor,
        "model": "per op: compute_weight[type]*FLOPs/peak_flops + bytes/memory_bandwidth + kernels[type]*"
        "kernel_overhead_s (op-type terms fitted on this CPU, hw_profiles/op_model.json; squeeze-excite's kernel "
        "weight x anchor se_factor), x anchor scale",
    }
    return DeviceProfile(
        name=device.name,
        kind="estimated",
        runtime="roofline",
        space=space,
        latency_ms=latency,
        fixed_ms=fixed,
        precision=precision,
        batch=batch,
        hardware=hardware,
        resolved_from=resolved_from,
        provenance=provenance(device=device.name, precision=precision, batch=batch, model="op-type roofline, anchored"),
    )

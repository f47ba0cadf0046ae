"""The op-type cost model behind estimated profiles, fitted on what this machine measures.

Each op of the analytic cost model has a type (dense conv, pointwise conv, depthwise conv,
squeeze-excite, pooling + classifier). An op costs
    compute_weight[type] * FLOPs / (peak FLOP/s * efficiency) + bytes / memory bandwidth
    + kernels[type] * per-kernel overhead
(compute, memory and per-kernel times add; no overlap is assumed). `compute_weight` (relative to a
pointwise conv, 1) and `kernels` (per-kernel overhead relative to one dense conv kernel) are fitted
by non-negative least squares on the shipped measured profiles of this CPU at batch 1 and 1 thread
(hw_profiles/data/), and
saved in hw_profiles/op_model.json with their fit error. Regenerate with
    python -m hw_profiles.opmodel
A device's `efficiency` then comes from its published anchor (hw_profiles.roofline). Pure numpy.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from specialize.cost import Op, arch_ops, candidate_ops, head_ops, stem_ops
from specialize.errors import SpecializeError

OP_TYPES = ("conv", "pointwise", "depthwise", "squeeze_excite", "pool_fc")
MODEL_PATH = Path(__file__).with_name("op_model.json")


def op_type(op: Op) -> str:
    """The op's type. A conv is pointwise when its MACs per output element (in_channels x k x k)
    equal its input channels at the output size, i.e. k = 1 and stride 1; the per-output spatial
    size follows from params = MACs / hw_out + 2 x out_channels (weights plus batch-norm terms)."""
    if op.kind in ("dwconv", "se", "fc"):
        return {"dwconv": "depthwise", "se": "squeeze_excite", "fc": "pool_fc"}[op.kind]
    hw_out = (op.macs + 2 * op.out_elems) / op.params
    per_output = op.macs / op.out_elems
    return "pointwise" if abs(op.in_elems / hw_out - per_output) <= 1e-6 * per_output else "conv"


def features(ops: list[Op], dtype_bytes: int = 4, batch: int = 1) -> np.ndarray:
    """[FLOPs per type..., kernels per type..., bytes] of a list of ops."""
    row = np.zeros(2 * len(OP_TYPES) + 1)
    for op in ops:
        i = OP_TYPES.index(op_type(op))
        row[i] += 2 * op.macs * batch
        row[len(OP_TYPES) + i] += 1
        row[-1] += op.bytes(dtype_bytes, batch)
    return row


def profile_rows(profile) -> tuple[list[np.ndarray], list[float]]:
    """Features and measured ms of every block, the stem and the head of a measured profile (not `skip`:
    it has no ops and is not timed)."""
    space, rows, times = profile.space, [], []
    for layer in range(space.num_layers):
        for c, cand in enumerate(space.candidates):
            if cand.is_skip:
                continue
            rows.append(features(candidate_ops(space, layer, cand), batch=profile.batch))
            times.append(float(profile.latency_ms[layer, c]))
    for part, ops in (("stem", stem_ops(space)), ("head", head_ops(space))):
        rows.append(features(ops, batch=profile.batch))
        times.append(float(profile.fixed_ms[part]))
    return rows, times


def fit_op_model(profiles: list) -> dict:
    """Non-negative least squares of measured entry ms on the features of `profiles` (all entries), each
    entry weighted by 1/sqrt(ms): in plain ms the fit followed ponas-imagenet's large blocks and ranked
    cifar10's networks worse than MACs alone; in full relative error the near-empty entries dominate.
    The error that matters, and the one estimated bands use, is on whole networks (`network_error`)."""
    from scipy.optimize import nnls
    from scipy.stats import kendalltau

    rows, times = [], []
    for profile in profiles:
        r, t = profile_rows(profile)
        rows += r
        times += t
    x, y = np.array(rows), np.array(times)
    norm = np.where(x.max(0) > 0, x.max(0), 1.0)
    weight = 1.0 / np.sqrt(np.maximum(y, 1e-6))[:, None]
    coef = nnls(x / norm * weight, y * weight[:, 0])[0] / norm
    n = len(OP_TYPES)
    flop_ms, kernel_ms, byte_ms = coef[:n], coef[n : 2 * n], coef[-1]
    if flop_ms[1] <= 0 or kernel_ms[0] <= 0:
        raise SpecializeError(
            "op-model fit gave no cost to pointwise FLOPs or dense conv kernels; measure more entries"
        )
    predicted = x @ coef
    return {
        "compute_weight": dict(zip(OP_TYPES, (flop_ms / flop_ms[1]).round(4).tolist())),
        "kernels": dict(zip(OP_TYPES, (kernel_ms / kernel_ms[0]).round(3).tolist())),
        "this_cpu": {
            "pointwise_flops_per_s": float(1e3 / flop_ms[1]),
            "bytes_per_s": float(1e3 / byte_ms) if byte_ms > 0 else None,
            "conv_kernel_overhead_s": float(kernel_ms[0] / 1e3),
        },
        "fit": {
            "entries": len(y),
            "mape": float(np.mean(np.abs(predicted - y) / y)),
            "kendall_tau": float(kendalltau(predicted, y)[0]),
            "kendall_tau_macs_alone": float(kendalltau(x[:, :n].sum(1), y)[0]),
            **network_error(profiles, coef),
        },
        "profiles": [f"{p.path.name if p.path else p.name} ({p.label})" for p in profiles],
    }


NETWORKS_PER_PROFILE = 200


def network_error(profiles: list, coef: np.ndarray) -> dict:
    """The fitted model against each profile's block sums (stem + blocks + head, no dispatch) on
    NETWORKS_PER_PROFILE whole networks spread over its space: MAPE and Kendall tau per space, and the
    worst MAPE ("network_mape"), which estimated bands carry."""
    from scipy.stats import kendalltau

    from specialize.sampling import spread_architectures

    per_space = {}
    for profile in profiles:
        space = profile.space
        archs = spread_architectures(space, NETWORKS_PER_PROFILE, seed=0)
        rows = np.array([features(arch_ops(a), batch=profile.batch) for a in archs])
        truth = np.array(
            [
                profile.latency_ms[np.arange(space.num_layers), list(a.indices)].sum()
                + profile.fixed_ms["stem"]
                + profile.fixed_ms["head"]
                for a in archs
            ]
        )
        predicted = rows @ coef
        macs = rows[:, : len(OP_TYPES)].sum(1)
        per_space[space.name] = {
            "mape": float(np.mean(np.abs(predicted - truth) / truth)),
            "kendall_tau": float(kendalltau(predicted, truth)[0]),
            "kendall_tau_macs_alone": float(kendalltau(macs, truth)[0]),
        }
    return {"networks": per_space, "network_mape": max(v["mape"] for v in per_space.values())}


@lru_cache(maxsize=1)
def op_model() -> dict:
    """The fitted op model (hw_profiles/op_model.json)."""
    try:
        return json.loads(MODEL_PATH.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecializeError(
            f"op model file {MODEL_PATH} cannot be read ({exc}); regenerate it with "
            f"`python -m hw_profiles.refit_opmodel`"
        ) from None

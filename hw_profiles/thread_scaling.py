"""A T-thread profile from a 1-thread profile's block timings and whole networks timed at T threads.

Timing each block at several threads is the unsteady part of profiling where cores come and go (a VM's
second vCPU): on 2026-12-01 a cifar10 2-thread profile's blocks came out 1.1x or 2-3x their 1-thread
time depending on the moment each was timed, and ranked 2-thread networks worse (Kendall τ 0.87-0.89)
than the 1-thread blocks did (0.92). The 1-thread blocks are steady, and threads change a block's cost
in two ways a linear model captures: its work is shared (x a) and every op pays a synchronisation cost
(+ b per op). So

    ms at T threads = a * (block sum at 1 thread) + b * (ops in the network) + c,

fitted by least squares (or a simpler model where the terms cannot be told apart: `fit_scaling`) on
`networks` whole networks exported and timed as deployed at T threads, in
`rounds` rounds (their median fitted, their spread recorded as the machine's drift), with the
leave-one-out error recorded as the profile's expected error. Per block the table becomes
a * ms_1thread + b * ops, so the search still adds blocks; c is the profile's calibration offset.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from hw_profiles.profile import DeviceProfile
from hw_profiles.validate import (
    CALIBRATION_NETWORKS,
    CALIBRATION_SEED,
    DEPLOYED_RUNS,
    CalibrationRounds,
    agreement,
    repeatability,
)
from specialize.cost import arch_ops, candidate_ops, head_ops, masked_extremes, stem_ops
from specialize.errors import SpecializeError, option
from specialize.fileio import provenance
from specialize.space import Architecture

SCALING_ROUNDS = 3


def op_counts(profile: DeviceProfile) -> tuple[np.ndarray, dict[str, int]]:
    """Ops per (layer, candidate) block, and per fixed part (stem, head; dispatch runs none)."""
    space = profile.space
    blocks = np.array(
        [[len(candidate_ops(space, layer, cand)) for cand in space.candidates] for layer in range(space.num_layers)]
    )
    return blocks, {"stem": len(stem_ops(space)), "head": len(head_ops(space))}


def scaling_features(base: DeviceProfile, archs: list[Architecture]) -> np.ndarray:
    """[1-thread block sum (ms), ops, 1] per network."""
    return np.array([[base.predict_ms(a, calibrated=False), len(arch_ops(a)), 1.0] for a in archs])


def fit_scaling(x: np.ndarray, y: np.ndarray, fastest: Callable[[np.ndarray], float] | None = None) -> np.ndarray:
    """Least-squares (a, b, c), the simplest model that keeps the per-op cost b >= 0, the share a > 0 and,
    given `fastest` (coef -> the scaled profile's fastest architecture in ms), every prediction positive:
    all three terms; else b = 0; else c = 0 too (a alone, the median ratio), which networks too alike in
    size to separate the terms need. A negative offset c fitted on mid-sized networks can price the space's
    smallest one below zero (it did on the tiny test space, whose networks take microseconds).
    `scaling_model` names which one a fit is."""
    full = np.linalg.lstsq(x, y, rcond=None)[0]
    ac = np.linalg.lstsq(x[:, [0, 2]], y, rcond=None)[0]
    for coef in (full, np.array([ac[0], 0.0, ac[1]])):
        if coef[0] > 0 and coef[1] >= 0 and (fastest is None or fastest(coef) > 0):
            return coef
    return np.array([float(np.median(y / x[:, 0])), 0.0, 0.0])


def scaling_model(coef: np.ndarray) -> str:
    return "a * ms + b * ops + c" if coef[1] > 0 else "a * ms + c" if coef[2] != 0 else "a * ms"


def loo_error(x: np.ndarray, y: np.ndarray, fastest: Callable[[np.ndarray], float] | None = None) -> float:
    """Leave-one-out mean absolute percentage error of `fit_scaling`."""
    errors = []
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        errors.append(abs(x[i] @ fit_scaling(x[rest], y[rest], fastest) - y[i]) / y[i])
    return float(np.mean(errors))


def check_base(base: DeviceProfile) -> None:
    """Only the base's raw block timings are used (not its 1-thread whole-network correction)."""
    if base.kind != "measured" or base.threads != 1 or base.runtime != "onnxruntime":
        raise SpecializeError(
            f"{option('from_one_thread')} needs a measured onnxruntime profile timed at 1 thread; "
            f"{base.path or base.name} is {base.label}"
        )


def scaled_blocks(base: DeviceProfile, a: float, b: float) -> tuple[np.ndarray, dict[str, float]]:
    """Per-block and fixed-part ms at T threads: a * ms_1thread + b * ops."""
    blocks, fixed_ops = op_counts(base)
    latency = np.where(base.latency_ms > 0, a * base.latency_ms + b * blocks, 0.0)
    return latency, {part: a * ms + b * fixed_ops.get(part, 0) for part, ms in base.fixed_ms.items()}


def scaled_fastest_ms(base: DeviceProfile) -> Callable[[np.ndarray], float]:
    """coef -> the fastest allowed architecture's ms in the profile those coefficients would make."""
    allowed = np.array(base.space.allowed_mask())

    def fastest(coef: np.ndarray) -> float:
        latency, fixed = scaled_blocks(base, float(coef[0]), float(coef[1]))
        return float(masked_extremes(latency, allowed)[0].sum() + sum(fixed.values()) + coef[2])

    return fastest


def scaled_profile(base: DeviceProfile, threads: int, coef: np.ndarray, whole: dict) -> DeviceProfile:
    """`base` with every block a * ms + b * ops, threads T and the fitted offset c as its calibration."""
    a, b, c = (float(v) for v in coef)
    latency, fixed = scaled_blocks(base, a, b)
    spread = None if base.spread_ms is None else a * base.spread_ms
    fixed_spread = None if base.fixed_spread_ms is None else {k: a * v for k, v in base.fixed_spread_ms.items()}
    calibration = {
        "scale": 1.0,
        "offset_ms": c,
        "thread_scaling": {"share_of_1_thread_ms": a, "ms_per_op": b, "model": scaling_model(coef)},
        "fit": {"networks": whole["networks"], "mape": whole["fit_mape"]},
        "leave_one_out": {"mape": whole["calibrated_loo_mape"], "uncalibrated_mape": whole["uncalibrated_mape"]},
    }
    measurement = {
        **base.measurement,
        "whole_network": whole,
        "validations": [],
        "threads": threads,
        "blocks": f"timed at 1 thread ({base.path.name if base.path else base.name}), "
        f"scaled to {threads} threads by a whole-network fit (hw_profiles.thread_scaling)",
    }
    return replace(
        base,
        latency_ms=latency,
        fixed_ms=fixed,
        spread_ms=spread,
        fixed_spread_ms=fixed_spread,
        threads=threads,
        calibration=calibration,
        measurement=measurement,
        provenance=provenance(
            **{**base.provenance.get("settings", {}), "threads": threads},
            scaled_from=str(base.path or base.name),
            blocks_timed=base.provenance.get("date"),
        ),
        path=None,
    )


def scale_to_threads(
    base: DeviceProfile,
    threads: int,
    networks: int = CALIBRATION_NETWORKS,
    rounds: int = SCALING_ROUNDS,
    runs: int = DEPLOYED_RUNS,
    progress: Callable[[str], None] | None = None,
) -> DeviceProfile:
    """The `threads`-thread profile of `base`'s space (see the module docstring)."""
    check_base(base)
    if threads < 2:
        raise SpecializeError(f"{option('from_one_thread')} scales to 2 or more threads, not {threads}")
    if networks < 4:
        raise SpecializeError(
            f"thread scaling fits 3 terms: give at least 4 {option('calibration_networks')}, not {networks}"
        )
    timing = CalibrationRounds(
        base.space,
        base.batch,
        "onnxruntime",
        base.precision,
        threads,
        base.graph_optimization_level,
        networks,
        CALIBRATION_SEED,
        runs,
        progress,
    )
    with timing:
        for _ in range(rounds):
            timing.time_round()
    measured = np.array(timing.rounds)
    y = np.median(measured, axis=0)
    x = scaling_features(base, timing.archs)
    fastest = scaled_fastest_ms(base)
    coef = fit_scaling(x, y, fastest)
    whole = {
        "networks": networks,
        "rounds": rounds,
        "repeatability": repeatability(measured),
        "source": f"{networks} exported networks, seed {CALIBRATION_SEED}, {rounds} rounds at {threads} threads, "
        f"each the median of {runs} deployed runs; fitted: a * 1-thread block sum + b * ops + c "
        f"(uncalibrated_mape: the 1-thread block sums taken as they are)",
        "uncalibrated_mape": agreement(list(x[:, 0]), list(y))["mape"],
        "fit_mape": agreement(list(x @ coef), list(y))["mape"],
        "calibrated_loo_mape": loo_error(x, y, fastest),
    }
    return scaled_profile(base, threads, coef, whole)

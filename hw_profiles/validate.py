"""Check a profile against whole networks, and fit its optional linear calibration.

Per-block sums miss what happens between blocks (layout changes, cache reuse, fusion across a
block boundary). `validate_profile` exports random sub-networks end to end, measures them on the
profile's runtime and compares with the prediction. `--calibrate` fits
measured = scale * uncalibrated prediction + offset on a separate set of networks and keeps the fit
only if it lowers the error on the held-out (validation) networks.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
from scipy.stats import kendalltau

from hw_profiles.runtime import Protocol, get_runtime, torch_threads
from hw_profiles.profiler import measure_workloads
from hw_profiles.profile import DeviceProfile
from hw_profiles.workloads import network_workload
from specialize.sampling import spread_architectures
from specialize.errors import SpecializeError
from specialize.space import Architecture

NETWORK_PROTOCOL = Protocol(warmup_s=0.05, sample_s=0.004, repeats=21, budget_s=0.25, rel_iqr_max=0.05, passes=5)


def uncalibrated_ms(profile: DeviceProfile, arch: Architecture) -> float:
    rows = np.arange(profile.space.num_layers)
    return float(profile.latency_ms[rows, np.asarray(arch.indices)].sum() + sum(profile.fixed_ms.values()))


def measure_networks(profile: DeviceProfile, archs: list[Architecture], runtime_name: str | None = None,
                     threads: int | None = None, protocol: Protocol = NETWORK_PROTOCOL,
                     progress: Callable[[str], None] | None = None) -> list[float]:
    """Median latency (ms) of each whole network on the profile's runtime (or `runtime_name`)."""
    runtime_name = runtime_name or profile.runtime
    if runtime_name == "roofline":
        raise SpecializeError(f"profile {profile.path or profile.name} is estimated (roofline), so there is no runtime "
                              f"to measure it on; give --runtime (e.g. onnxruntime) to compare it with this machine")
    runtime = get_runtime(runtime_name, profile.precision, threads or profile.measurement.get("threads"))
    workloads = [network_workload(profile.space, arch, profile.batch) for arch in archs]
    with torch_threads(1):
        timings = measure_workloads(runtime, profile.space, workloads, protocol, progress)
    return [timings[w.key].median_ms for w in workloads]


def agreement(predicted: list[float], measured: list[float]) -> dict:
    """Mean absolute percentage error, share within +-10%, Kendall tau of predicted vs measured."""
    p, m = np.asarray(predicted), np.asarray(measured)
    error = np.abs(p - m) / m
    tau = kendalltau(p, m)[0] if len(p) > 1 else float("nan")
    return {"mape": float(error.mean()), "within_10pct": float((error <= 0.10).mean()), "kendall_tau": float(tau)}


def fit_calibration(predicted: list[float], measured: list[float]) -> dict:
    """Least-squares measured = scale * predicted + offset_ms, with its fit statistics."""
    p, m = np.asarray(predicted), np.asarray(measured)
    if len(p) < 3 or np.ptp(p) == 0:
        raise SpecializeError("calibration needs at least 3 networks of different predicted latency")
    scale, offset = np.polyfit(p, m, 1)
    if scale <= 0:
        raise SpecializeError(f"calibration fit a non-positive scale ({scale:.3g}): the profile does not track these networks")
    fitted = agreement(list(scale * p + offset), list(m))
    return {"scale": float(scale), "offset_ms": float(offset),
            "fit": {"networks": len(p), "mape": fitted["mape"], "within_10pct": fitted["within_10pct"]}}


def validate_profile(profile: DeviceProfile, samples: int = 30, seed: int = 0, calibrate: bool = False,
                     fit_samples: int | None = None, runtime_name: str | None = None, threads: int | None = None,
                     progress: Callable[[str], None] | None = None) -> tuple[dict, DeviceProfile]:
    """Figures on `samples` held-out networks, and the profile (with a new calibration when kept)."""
    if samples < 2:
        raise SpecializeError(f"--samples must be at least 2, got {samples}")
    held_out = spread_architectures(profile.space, samples, seed)
    measured = measure_networks(profile, held_out, runtime_name, threads, progress=progress)
    raw = [uncalibrated_ms(profile, a) for a in held_out]
    report = {"profile": str(profile.path or profile.name), "label": profile.label, "runtime": runtime_name or profile.runtime}
    report["uncalibrated"] = agreement(raw, measured)
    if calibrate:
        fit_archs = spread_architectures(profile.space, fit_samples or samples, seed + 10_000)
        fit_measured = measure_networks(profile, fit_archs, runtime_name, threads, progress=progress)
        try:
            calibration = fit_calibration([uncalibrated_ms(profile, a) for a in fit_archs], fit_measured)
        except SpecializeError as exc:
            report["calibration"], report["calibration_kept"] = {"error": str(exc)}, False
        else:
            calibrated = replace(profile, calibration=calibration)
            held = agreement([calibrated.predict_ms(a) for a in held_out], measured)
            calibration["held_out"] = {"networks": samples, **held, "uncalibrated_mape": report["uncalibrated"]["mape"]}
            kept = held["mape"] < report["uncalibrated"]["mape"]
            report["calibration"], report["calibration_kept"] = calibration, kept
            if kept:
                profile = calibrated
    predicted = [profile.predict_ms(a) for a in held_out]
    report.update(agreement(predicted, measured))
    report["samples"] = [{"arch": str(a), "predicted_ms": round(p, 4), "measured_ms": round(m, 4)}
                         for a, p, m in zip(held_out, predicted, measured)]
    return report, profile

"""Check a profile against whole networks timed as deployed, and fit its whole-network correction.

Per-block sums miss what happens between blocks (cache reuse across a large network, layout
changes, fusion across a block boundary). Whole networks are therefore measured the way a
deployment runs them: each sub-network is exported with `specialize export`'s own function
(`supernet.export.export_subnet`) to an .onnx file, loaded in a plain session with the options the
profile records (threads, graph optimization level), warmed up, then the median of `runs` single
runs is taken (`hw_profiles.runtime.deployment_protocol`).

`CalibrationRounds` times the calibration networks in rounds spread over the profiling window (one before the
block passes, one after each) and in `AFTER_PASS_ROUNDS` more once the passes are over and their sessions
closed. The later rounds are the ones fitted: no block sessions are open then, as in a deployment (whether
that matters here could not be told apart from the host's drift: docs/int8.md); both windows' ratio to the
block sums is recorded. Their median per network is fitted by `apply_whole_network_fit`: measured = scale *
block sum + offset, kept only if it lowers the leave-one-out error. How far a network's rounds stray from its
median (`repeatability`) is the machine's own drift: no profile can be expected to agree with a later timing
more closely than that. Both are recorded, so the profile says how far off it is expected to be
(`DeviceProfile.expected_error`). `validate_profile` measures held-out networks and compares them with the
prediction.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from hw_profiles.profile import DeviceProfile
from hw_profiles.runtime import as_deployed, deployment_protocol, get_runtime, time_runs, torch_threads
from specialize.errors import SpecializeError, option
from specialize.sampling import spread_architectures
from specialize.space import Architecture, SearchSpace

DEPLOYED_RUNS = 30  # single runs per network after warm-up; the figure is their median
CALIBRATION_NETWORKS = 8  # whole networks `specialize profile` times to fit its correction
CALIBRATION_SEED = 10_000  # networks for the fit are drawn apart from validation's (seed 0, 1, ...)
AFTER_PASS_ROUNDS = 2  # calibration rounds once the block passes are over (the ones the correction is fitted on)
WITHIN = 0.10  # the check's tolerance: a prediction within ±10% of the file as deployed counts as a hit


def export_networks(
    space: SearchSpace,
    archs: list[Architecture],
    out_dir: Path,
    progress: Callable[[str], None] | None = None,
    precision: str = "fp32",
    runtime_name: str = "onnxruntime",
) -> list[Path]:
    """Each architecture exported by `specialize export`'s function (random weights) to out_dir, then put in the
    form its precision runs in (`as_deployed`: INT8 quantized as the blocks were for that runtime)."""
    from supernet.export import export_subnet

    shape = (1, 3, space.resolution, space.resolution)
    paths = []
    for i, arch in enumerate(archs):
        path = export_subnet(space, str(arch), out_dir / f"net{i:03d}.onnx").onnx_path  # table-only spaces too
        if precision == "int8":
            path.write_bytes(as_deployed(path.read_bytes(), precision, runtime_name, shape))
        paths.append(path)
        if progress:
            progress(f"export {arch}")
    return paths


def time_deployed(
    paths: list[Path],
    input_shape: tuple[int, ...],
    runtime_name: str,
    precision: str,
    threads: int,
    graph_optimization_level: str | None,
    runs: int = DEPLOYED_RUNS,
    progress: Callable[[str], None] | None = None,
) -> list[float]:
    """Median ms of `runs` single runs (after warm-up) of each ONNX file, as a deployment times it."""
    runtime = get_runtime(runtime_name, precision, threads, graph_optimization_level or "all")
    if not hasattr(runtime, "load"):
        raise SpecializeError(
            f"runtime {runtime_name} runs torch modules, not exported ONNX files; validate on "
            f"{option('runtime')} onnxruntime or tensorrt"
        )
    medians = []
    for path in paths:
        medians.append(time_runs(runtime.load(path, input_shape), runtime.clock, deployment_protocol(runs)).median_ms)
        if progress:
            progress(f"time {path.name}")
    return medians


def measure_networks(
    profile: DeviceProfile,
    archs: list[Architecture],
    runtime_name: str | None = None,
    threads: int | None = None,
    runs: int = DEPLOYED_RUNS,
    progress: Callable[[str], None] | None = None,
) -> list[float]:
    """Deployed latency (ms) of each whole network with the profile's runtime and recorded options."""
    runtime_name = runtime_name or profile.runtime
    if runtime_name == "roofline":
        raise SpecializeError(
            f"profile {profile.path or profile.name} is estimated (roofline), so there is no runtime "
            f"to measure it on; give {option('runtime')} (e.g. onnxruntime) to compare it with this machine"
        )
    shape = (profile.batch, 3, profile.space.resolution, profile.space.resolution)
    with tempfile.TemporaryDirectory(prefix="specialize-validate-") as tmp, torch_threads(1):
        paths = export_networks(profile.space, archs, Path(tmp), progress, profile.precision, runtime_name)
        return time_deployed(
            paths,
            shape,
            runtime_name,
            profile.precision,
            threads or profile.threads,
            profile.graph_optimization_level,
            runs,
            progress,
        )


def agreement(predicted: list[float], measured: list[float]) -> dict:
    """Mean absolute percentage error, share within +-10%, Kendall tau of predicted vs measured."""
    p, m = np.asarray(predicted), np.asarray(measured)
    error = np.abs(p - m) / m
    from scipy.stats import kendalltau  # here, not at import: scipy.stats takes ~0.9 s, and the CLI reads this module

    tau = kendalltau(p, m)[0] if len(p) > 1 else float("nan")
    return {"mape": float(error.mean()), "within_10pct": float((error <= WITHIN).mean()), "kendall_tau": float(tau)}


def fit_calibration(predicted: list[float], measured: list[float]) -> dict:
    """Least-squares measured = scale * predicted + offset_ms, with its fit statistics."""
    p, m = np.asarray(predicted), np.asarray(measured)
    if len(p) < 3 or np.ptp(p) == 0:
        raise SpecializeError("calibration needs at least 3 networks of different predicted latency")
    scale, offset = np.polyfit(p, m, 1)
    if scale <= 0:
        raise SpecializeError(
            f"calibration fit a non-positive scale ({scale:.3g}): the profile does not track these networks"
        )
    fitted = agreement(list(scale * p + offset), list(m))
    return {
        "scale": float(scale),
        "offset_ms": float(offset),
        "fit": {"networks": len(p), "mape": fitted["mape"], "within_10pct": fitted["within_10pct"]},
    }


def loo_mape(predicted: list[float], measured: list[float]) -> float:
    """Leave-one-out mean absolute percentage error of the linear calibration."""
    errors = []
    for i in range(len(predicted)):
        rest = [j for j in range(len(predicted)) if j != i]
        fit = fit_calibration([predicted[j] for j in rest], [measured[j] for j in rest])
        errors.append(abs(fit["scale"] * predicted[i] + fit["offset_ms"] - measured[i]) / measured[i])
    return float(np.mean(errors))


def repeatability(rounds: np.ndarray) -> float | None:
    """Mean relative deviation of each round's timing from its network's median over rounds [R, N]
    (None for a single round): how much the same file's deployed latency moves on this machine."""
    if len(rounds) < 2:
        return None
    return float(np.mean(np.abs(rounds / np.median(rounds, axis=0) - 1)))


def apply_whole_network_fit(
    profile: DeviceProfile, archs: list[Architecture], measured: list[float] | np.ndarray, source: str
) -> DeviceProfile:
    """Record the block sums' error on these whole networks; keep the scale/offset correction only if
    it lowers the leave-one-out error. `measured` is one timing per network, or rounds of them [R, N]
    (their median is fitted and their spread recorded as `repeatability`). `profile.expected_error`
    then reads what was kept."""
    rounds = np.atleast_2d(np.asarray(measured, dtype=float))
    measured = list(np.median(rounds, axis=0))
    raw = [profile.predict_ms(a, calibrated=False) for a in archs]
    whole = {
        "networks": len(archs),
        "source": source,
        "rounds": len(rounds),
        "repeatability": repeatability(rounds),
        "uncalibrated_mape": agreement(raw, measured)["mape"],
    }
    profile = replace(profile, calibration=None, measurement={**profile.measurement, "whole_network": whole})
    try:
        calibration = fit_calibration(raw, measured)
        whole["calibrated_loo_mape"] = loo_mape(raw, measured) if len(archs) >= 4 else None
    except SpecializeError as exc:  # too few networks, or a non-positive scale
        whole["calibration_skipped"] = str(exc)
        return profile
    calibration["leave_one_out"] = {
        "mape": whole["calibrated_loo_mape"],
        "uncalibrated_mape": whole["uncalibrated_mape"],
    }
    if whole["calibrated_loo_mape"] is not None and whole["calibrated_loo_mape"] < whole["uncalibrated_mape"]:
        calibrated = replace(profile, calibration=calibration)
        if calibrated.fastest_ms() > 0:
            return calibrated
        whole["calibration_skipped"] = (
            f"the fit's offset ({calibration['offset_ms']:.3g} ms) would price the fastest network at "
            f"{calibrated.fastest_ms():.3g} ms"
        )
    return profile


class CalibrationRounds:
    """The calibration networks, exported once, then timed as deployed in rounds (`time_round`) that the
    caller spreads over its measuring window; `fit` applies the whole-network correction to a profile."""

    def __init__(
        self,
        space: SearchSpace,
        batch: int,
        runtime_name: str,
        precision: str,
        threads: int,
        graph_optimization_level: str | None,
        networks: int = CALIBRATION_NETWORKS,
        seed: int = CALIBRATION_SEED,
        runs: int = DEPLOYED_RUNS,
        progress: Callable[[str], None] | None = None,
    ):
        self.archs = spread_architectures(space, networks, seed)
        self.space, self.seed, self.runs, self.progress = space, seed, runs, progress
        self.timing = (runtime_name, precision, threads, graph_optimization_level)
        self.shape = (batch, 3, space.resolution, space.resolution)
        self.rounds: list[list[float]] = []  # between the block passes
        self.after: list[list[float]] = []  # after them, the block sessions closed

    def __enter__(self) -> "CalibrationRounds":
        self._tmp = tempfile.TemporaryDirectory(prefix="specialize-calibrate-")
        with torch_threads(1):
            self.paths = export_networks(
                self.space, self.archs, Path(self._tmp.name), self.progress, self.timing[1], self.timing[0]
            )
        return self

    def __exit__(self, *exc) -> None:
        self._tmp.cleanup()

    def time_round(self) -> None:
        self.rounds.append(time_deployed(self.paths, self.shape, *self.timing, self.runs, self.progress))

    def time_after_passes(self, rounds: int = AFTER_PASS_ROUNDS) -> None:
        """Rounds once the block passes are over and their sessions closed: the state a deployment runs in."""
        for _ in range(rounds):
            self.after.append(time_deployed(self.paths, self.shape, *self.timing, self.runs, self.progress))

    def fit(self, profile: DeviceProfile) -> DeviceProfile:
        """The correction fitted on the rounds after the passes when there are any (no block sessions open, as in
        a deployment), else on the rounds between them. Both windows' median measured / block-sum ratio is
        recorded, so a profile shows how far apart they were (on this host: 1.18 and 1.13, 1.15 and 1.05, 1.27
        and 1.44 in three INT8 profiles, inside its own drift; docs/int8.md)."""
        fitted, window = (self.after, "after the block passes") if self.after else (self.rounds, "between them")
        profile = apply_whole_network_fit(
            profile,
            self.archs,
            fitted,
            f"{len(self.archs)} exported networks, seed {self.seed}, {len(fitted)} rounds {window}, "
            f"each the median of {self.runs} deployed runs",
        )
        raw = np.array([profile.predict_ms(a, calibrated=False) for a in self.archs])
        profile.measurement["whole_network"]["measured_over_block_sum"] = {
            name: round(float(np.median(np.median(np.array(r), axis=0) / raw)), 4) if r else None
            for name, r in (("between_passes", self.rounds), ("after_passes", self.after))
        }
        return profile


def validate_profile(
    profile: DeviceProfile,
    samples: int,  # default: `profile validate --samples`, declared there only
    seed: int = 0,
    calibrate: bool = False,
    fit_samples: int | None = None,
    runtime_name: str | None = None,
    threads: int | None = None,
    runs: int = DEPLOYED_RUNS,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict, DeviceProfile]:
    """Figures on `samples` held-out networks, and the profile (with a new calibration when kept)."""
    if samples < 2:
        raise SpecializeError(f"{option('samples')} must be at least 2, got {samples}")
    held_out = spread_architectures(profile.space, samples, seed)
    measured = measure_networks(profile, held_out, runtime_name, threads, runs, progress)
    raw = [profile.predict_ms(a, calibrated=False) for a in held_out]
    report = {
        "profile": str(profile.path or profile.name),
        "label": profile.label,
        "runtime": runtime_name or profile.runtime,
        "threads": threads or profile.threads,
        "graph_optimization_level": profile.graph_optimization_level,
        "protocol": f"exported .onnx, plain session, warm-up then median of {runs} runs",
    }
    report["uncalibrated"] = agreement(raw, measured)
    if calibrate:
        report["calibration"], report["calibration_kept"], profile = _recalibrate(
            profile, fit_samples or samples, seed, runtime_name, threads, runs, held_out, measured, report, progress
        )
    predicted = [profile.predict_ms(a) for a in held_out]
    report.update(agreement(predicted, measured))
    report["expected_error"] = profile.expected_error
    report["samples"] = [
        {"arch": str(a), "predicted_ms": round(p, 4), "measured_ms": round(m, 4)}
        for a, p, m in zip(held_out, predicted, measured)
    ]
    return report, profile


def check_recordable(profile: DeviceProfile, runtime_name: str | None, threads: int | None) -> None:
    if (runtime_name or profile.runtime) != profile.runtime or (threads or profile.threads) != profile.threads:
        raise SpecializeError(
            f"{option('record')} keeps validations of the profile's own settings ({profile.runtime}, "
            f"{profile.threads} thread(s)), not of {runtime_name or profile.runtime}, "
            f"{threads or profile.threads} thread(s)"
        )


def record_validation(profile: DeviceProfile, report: dict) -> DeviceProfile:
    """`profile` with this validation appended to measurement["validations"] (its expected error then
    covers it). Only a validation on the profile's own runtime and threads says anything about it."""
    check_recordable(profile, report["runtime"], report["threads"])
    entry = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "networks": len(report["samples"]),
        "mape": report["mape"],
        "within_10pct": report["within_10pct"],
        "kendall_tau": None if np.isnan(report["kendall_tau"]) else report["kendall_tau"],  # ties: no ranking
        "protocol": report["protocol"],
    }
    validations = [*profile.measurement.get("validations", []), entry]
    return replace(profile, measurement={**profile.measurement, "validations": validations})


def _recalibrate(
    profile: DeviceProfile,
    fit_samples: int,
    seed: int,
    runtime_name: str | None,
    threads: int | None,
    runs: int,
    held_out: list[Architecture],
    measured: list[float],
    report: dict,
    progress: Callable[[str], None] | None,
) -> tuple[dict, bool, DeviceProfile]:
    """Fit scale/offset on separate networks; keep it if it lowers the error on the held-out ones."""
    fit_archs = spread_architectures(profile.space, fit_samples, seed + CALIBRATION_SEED)
    fit_measured = measure_networks(profile, fit_archs, runtime_name, threads, runs, progress)
    try:
        calibration = fit_calibration([profile.predict_ms(a, calibrated=False) for a in fit_archs], fit_measured)
    except SpecializeError as exc:
        return {"error": str(exc)}, False, profile
    calibrated = replace(profile, calibration=calibration)
    held = agreement([calibrated.predict_ms(a) for a in held_out], measured)
    calibration["held_out"] = {"networks": len(held_out), **held, "uncalibrated_mape": report["uncalibrated"]["mape"]}
    kept = held["mape"] < report["uncalibrated"]["mape"]
    if not kept:
        return calibration, False, profile
    whole = {
        "networks": len(held_out),
        "source": "held-out networks of `profile validate --calibrate`",
        "uncalibrated_mape": report["uncalibrated"]["mape"],
        "calibrated_loo_mape": held["mape"],
    }
    return calibration, True, replace(calibrated, measurement={**profile.measurement, "whole_network": whole})

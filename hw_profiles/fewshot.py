"""Few-shot calibration: fit a profile to 5-20 whole-network timings taken on the target device.

For an estimated profile the device's three efficiency terms (multipliers of the op-type model's
compute, memory and per-kernel times, `hw_profiles.roofline.term_ms`) are fitted by non-negative
least squares, starting from the anchored estimate: with too few or degenerate timings the
anchored estimate's terms are kept. For a measured profile the whole-network correction
(scale/offset) is refitted. Either way the leave-one-out error on the given networks becomes the
profile's expected error. Timings come as JSON: {"timings": [{"arch", "latency_ms"}, ...]}, or the
output of `specialize profile validate --json` (its "samples", with "measured_ms").
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from hw_profiles.devices import devices
from hw_profiles.profile import DeviceProfile
from hw_profiles.roofline import anchoring, term_ms
from hw_profiles.validate import agreement, apply_whole_network_fit
from specialize.cost import arch_ops, candidate_ops, head_ops, stem_ops
from specialize.errors import SpecializeError
from specialize.fileio import read_json
from specialize.space import Architecture

MIN_TIMINGS, MAX_TIMINGS = 5, 20
KIND = "timings"


def load_timings(path: str | Path, profile: DeviceProfile) -> list[tuple[Architecture, float]]:
    """(architecture, ms) pairs from a timings file, checked against the profile's space."""
    data = read_json(path, KIND)
    rows = data.get("timings", data.get("samples"))
    if not isinstance(rows, list):
        raise SpecializeError(
            f"{KIND} file {path}: field 'timings' must list {{arch, latency_ms}} (or give validate's "
            f"JSON, whose 'samples' hold measured_ms)"
        )
    pairs = []
    for i, row in enumerate(rows):
        try:
            ms = float(row.get("latency_ms", row.get("measured_ms")))
            arch = profile.space.parse_arch(str(row["arch"]))
        except (AttributeError, KeyError, TypeError, ValueError, SpecializeError) as exc:
            raise SpecializeError(
                f"{KIND} file {path}: entry {i} needs 'arch' (of space {profile.space.name}) and a "
                f"number 'latency_ms': {exc}"
            ) from None
        if not 0 < ms <= 1e7:
            raise SpecializeError(f"{KIND} file {path}: entry {i} has latency {ms}, not a positive number of ms")
        pairs.append((arch, ms))
    if not MIN_TIMINGS <= len(pairs) <= MAX_TIMINGS:
        raise SpecializeError(
            f"{KIND} file {path}: {len(pairs)} timings; few-shot calibration takes {MIN_TIMINGS} to {MAX_TIMINGS}"
        )
    return pairs


def arch_terms(profile: DeviceProfile, device, arch: Architecture, se_factor: float = 1.0) -> np.ndarray:
    return term_ms(arch_ops(arch), device, profile.precision, profile.batch, se_factor)


def fit_terms(terms: np.ndarray, measured: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Multipliers of [compute, memory, kernel] ms; the anchored start where the data cannot tell."""
    from scipy.optimize import nnls

    used = terms.max(0) > 0
    fitted = start.copy()
    fitted[used] = nnls(terms[:, used], measured)[0]
    return fitted if fitted.sum() > 0 else start


def loo_terms_mape(terms: np.ndarray, measured: np.ndarray, start: np.ndarray) -> float:
    errors = []
    for i in range(len(measured)):
        rest = np.arange(len(measured)) != i
        m = fit_terms(terms[rest], measured[rest], start)
        errors.append(abs(terms[i] @ m - measured[i]) / measured[i])
    return float(np.mean(errors))


def calibrate_estimate(profile: DeviceProfile, pairs: list[tuple[Architecture, float]]) -> DeviceProfile:
    device = devices().get(profile.hardware.get("device", profile.name))
    if device is None:
        raise SpecializeError(
            f"profile {profile.path or profile.name} names no registered device; cannot refit its terms"
        )
    anchor = anchoring(device, profile.precision)
    start, se = np.full(3, anchor["scale"]), anchor["se_factor"]
    terms = np.array([arch_terms(profile, device, a, se) for a, _ in pairs])
    measured = np.array([ms for _, ms in pairs])
    multipliers = fit_terms(terms, measured, start)
    space = profile.space
    latency = np.array(
        [
            [
                term_ms(candidate_ops(space, l, c), device, profile.precision, profile.batch, se) @ multipliers
                for c in space.candidates
            ]
            for l in range(space.num_layers)
        ]
    )
    fixed = {
        part: float(term_ms(ops, device, profile.precision, profile.batch, se) @ multipliers)
        for part, ops in (("stem", stem_ops(space)), ("head", head_ops(space)))
    }
    few_shot = {
        "multipliers": dict(zip(("compute", "memory", "kernel"), multipliers.round(4).tolist())),
        "anchored_start": float(start[0]),
        "networks": len(pairs),
        "loo_mape": loo_terms_mape(terms, measured, start),
        "estimate_mape": agreement(list(terms @ start), list(measured))["mape"],
    }
    return replace(
        profile,
        latency_ms=latency,
        fixed_ms=fixed,
        calibration=None,
        hardware={**profile.hardware, "few_shot": few_shot},
    )


def calibrate_profile_with_timings(profile: DeviceProfile, timings_path: str | Path) -> DeviceProfile:
    """The profile fitted to the timings in `timings_path`; its expected_error is the leave-one-out error."""
    pairs = load_timings(timings_path, profile)
    if profile.kind == "estimated":
        return calibrate_estimate(profile, pairs)
    return apply_whole_network_fit(
        profile, [a for a, _ in pairs], [ms for _, ms in pairs], f"timings file {timings_path}"
    )

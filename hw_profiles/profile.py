"""Device profiles: latency [layers][candidates] of every block on one device, plus fixed parts.

Predicted latency of an architecture = scale * (sum of its blocks + fixed parts) + offset, where
scale and offset come from an optional linear calibration fitted against whole networks. It stays
additive over layers, so the exact solver can use it. A `skip` entry (elastic depth) is 0 ms: the
identity runs nothing and nothing times it. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hw_profiles.host import measured_elsewhere
from specialize.cost import head_ops, masked_extremes
from specialize.errors import SpecializeError, has_control_characters
from specialize.fileio import atomic_write_json, read_json, require
from specialize.space import Architecture, SearchSpace
from specialize.table import space_option

PROFILE_SCHEMA_VERSION = 1
KIND = "device profile"
PROFILE_KINDS = ("measured", "estimated")
PRECISIONS = ("fp32", "fp16", "int8")  # what a profile can be timed at and an export can ship


@dataclass
class DeviceProfile:
    name: str  # device name, e.g. "jetson-orin-nano" or "this-cpu"
    kind: str  # "measured" or "estimated"
    runtime: str  # onnxruntime | torch-cuda | tensorrt | roofline
    space: SearchSpace
    latency_ms: np.ndarray  # [layers, candidates], median per block
    fixed_ms: dict[str, float]  # {"stem", "head"} (+ "dispatch": per-call runtime cost, measured)
    precision: str = "fp32"
    batch: int = 1
    spread_ms: np.ndarray | None = None  # [layers, candidates], e.g. interquartile range
    calibration: dict | None = None  # {"scale": a, "offset_ms": b, ...fit statistics}
    hardware: dict = field(default_factory=dict)  # datasheet figures + sources (estimated), CPU/GPU name (measured)
    provenance: dict = field(default_factory=dict)
    resolved_from: str | None = None  # the alias asked for, e.g. "jetson" for jetson-orin-nano
    fixed_spread_ms: dict[str, float] | None = None
    measurement: dict = field(default_factory=dict)  # how it was timed: repeats, threshold, noisy entries
    threads: int = 1  # intra-op threads it was timed with (deploy with the same)
    graph_optimization_level: str | None = None  # onnxruntime's level it was timed with (None: not onnxruntime)
    path: Path | None = None

    @property
    def label(self) -> str:
        """One line saying what this profile is, for every place a profile is shown."""
        alias = f" (resolved from {self.resolved_from!r})" if self.resolved_from else ""
        threads = f", {self.threads} thread{'s' if self.threads > 1 else ''}" if self.kind == "measured" else ""
        setting = f"{self.runtime}, {self.precision}, batch {self.batch}{threads}"
        where = f", measured on {self.elsewhere}, not here" if self.elsewhere else ""
        return f"{self.name}{alias}, {self.kind} ({setting}){where}, space {self.space.name}"

    @property
    def elsewhere(self) -> str | None:
        """The host a measured profile was timed on when that is not this machine (hw_profiles.host), else None."""
        return measured_elsewhere(self.hardware or {}) if self.kind == "measured" else None

    def profile_here_command(self) -> str:
        """The one command that measures this profile's setting on this machine."""
        threads = f" --threads {self.threads}" if self.threads and self.threads > 1 else ""
        batch = f" --batch {self.batch}" if self.batch != 1 else ""
        return f"specialize profile --name this-cpu --space {space_option(self.space)}{batch}{threads} -o PROFILE.json"

    @property
    def expected_error(self) -> float | None:
        """Expected relative error of a whole-network prediction (0.1 = ±10%), or None when unknown:
        the leave-one-out error on whole networks (measured, or estimated after `profile calibrate`),
        combined with how much the same network's timing moved between rounds, or the error of a
        later validation recorded with `profile validate --record` where that is larger (measured);
        else the device's anchor band (estimated)."""
        if self.elsewhere:
            return None  # timed on another machine: it says nothing of this one
        if self.kind == "estimated":
            few_shot = self.hardware.get("few_shot") or {}
            band = few_shot.get("loo_mape", (self.hardware.get("anchor") or {}).get("expected_error"))
            return None if band is None else float(band)
        whole = self.measurement.get("whole_network") or {}
        value = whole.get("calibrated_loo_mape") if self.calibration else whole.get("uncalibrated_mape")
        if value is None:
            return None
        band = float(np.hypot(value, whole.get("repeatability") or 0.0))  # model error and the machine's own drift
        later = [v["mape"] for v in self.measurement.get("validations", [])]
        return max([band, *later])  # a recorded later validation that missed by more widens the band

    @property
    def scale(self) -> float:
        return float(self.calibration["scale"]) if self.calibration else 1.0

    def latency_terms(self, calibrated: bool = True) -> tuple[np.ndarray, float]:
        """The one latency formula, as its two terms: ([layers, candidates] per-block ms, architecture-independent
        ms). A prediction is the sum of the architecture's blocks plus the fixed term, where
        blocks = scale * measured blocks and fixed = scale * (stem + head + dispatch ...) + offset; uncalibrated,
        scale 1 and offset 0. `predict_ms`, the search problem's latency row and validation all use it."""
        scale = self.scale if calibrated else 1.0
        offset = float(self.calibration["offset_ms"]) if self.calibration and calibrated else 0.0
        return scale * self.latency_ms, scale * sum(self.fixed_ms.values()) + offset

    def fastest_ms(self) -> float:
        """The predicted latency of the fastest architecture the space allows."""
        blocks, fixed = self.latency_terms()
        return float(masked_extremes(blocks, np.array(self.space.allowed_mask()))[0].sum() + fixed)

    def offset_ms(self) -> float:
        """The architecture-independent term of a prediction."""
        return self.latency_terms()[1]

    def predict_ms(self, arch: Architecture, calibrated: bool = True) -> float:
        blocks, fixed = self.latency_terms(calibrated)
        return float(blocks[np.arange(self.space.num_layers), np.asarray(arch.indices)].sum() + fixed)

    def for_space(self, space: SearchSpace) -> "DeviceProfile":
        """This profile for `space`: itself for the same space; for a space that differs only in the classifier
        (a dataset's own class count), a copy whose head is priced for it (the measured head scaled by the head's
        MACs); anything else is refused, naming both spaces."""
        if space.fingerprint == self.space.fingerprint:
            return self
        if space.body_fingerprint != self.space.body_fingerprint:
            self.check_space(space)
        ratio = sum(op.macs for op in head_ops(space)) / sum(op.macs for op in head_ops(self.space))
        note = (
            f"head priced for {space.num_classes} classes from the measured {self.space.num_classes}-class head "
            f"by its MACs (x{ratio:.4f}); the blocks and stem are the same network's"
        )
        fixed = {**self.fixed_ms, "head": self.fixed_ms.get("head", 0.0) * ratio}
        return replace(self, space=space, fixed_ms=fixed, measurement={**self.measurement, "head_repriced": note})

    def check_space(self, space: SearchSpace) -> None:
        if space.fingerprint != self.space.fingerprint:
            raise SpecializeError(
                f"device profile {self.path or self.name} is for space {self.space.name!r} (fingerprint "
                f"{self.space.fingerprint}) but space {space.name!r} (fingerprint {space.fingerprint}) was asked for"
            )

    def to_dict(self) -> dict:
        return {
            "schema_version": PROFILE_SCHEMA_VERSION,
            "kind_of_file": "device_profile",
            "name": self.name,
            "kind": self.kind,
            "runtime": self.runtime,
            "precision": self.precision,
            "batch": self.batch,
            "space": self.space.to_dict(),
            "space_name": self.space.name,
            "fingerprint": self.space.fingerprint,
            "candidates": list(self.space.candidate_names),
            "latency_ms": self.latency_ms.round(6).tolist(),
            "spread_ms": None if self.spread_ms is None else self.spread_ms.round(6).tolist(),
            "fixed_ms": self.fixed_ms,
            "calibration": self.calibration,
            "hardware": self.hardware,
            "resolved_from": self.resolved_from,
            "fixed_spread_ms": self.fixed_spread_ms,
            "measurement": self.measurement,
            "threads": self.threads,
            "graph_optimization_level": self.graph_optimization_level,
            "expected_error": self.expected_error,
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> None:
        """Write the profile after the reader's own checks: nothing is written that load_profile would refuse."""
        data = self.to_dict()
        profile_from_dict(data, Path(path))
        atomic_write_json(path, data)
        self.path = Path(path)


MAX_MS = 1e7  # a block slower than ~3 hours is a unit mistake or corruption, and sums of larger values overflow


def _ms(value) -> bool:
    """A plain JSON number of milliseconds: finite, >= 0, at most MAX_MS (no strings or booleans)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= MAX_MS


def _array(data: dict, key: str, shape: tuple[int, int], path: Path) -> np.ndarray:
    value = require(data, key, path, KIND)
    if not (
        isinstance(value, list)
        and len(value) == shape[0]
        and all(isinstance(r, list) and len(r) == shape[1] for r in value)
    ):
        raise SpecializeError(f"{KIND} file {path}: field {key!r} is not a [{shape[0]}][{shape[1]}] array of numbers")
    if not all(_ms(v) for row in value for v in row):
        raise SpecializeError(
            f"{KIND} file {path}: field {key!r} holds a value that is not a number of ms in [0, {MAX_MS:g}]"
        )
    return np.asarray(value, dtype=float)


def _ms_dict(value, key: str, path: Path) -> dict[str, float]:
    if not isinstance(value, dict) or not all(_ms(v) for v in value.values()):
        raise SpecializeError(
            f"{KIND} file {path}: field {key!r} must map part names to milliseconds in [0, {MAX_MS:g}]"
        )
    return {str(k): float(v) for k, v in value.items()}


def _calibration(value, path: Path) -> dict | None:
    if value is None:
        return None
    numbers = isinstance(value, dict) and all(
        isinstance(value.get(k), (int, float)) and not isinstance(value.get(k), bool) for k in ("scale", "offset_ms")
    )
    if not numbers:
        raise SpecializeError(f"{KIND} file {path}: field 'calibration' needs numbers 'scale' and 'offset_ms'")
    scale, offset = value["scale"], value["offset_ms"]
    if not (0 < scale <= 1e3 and -MAX_MS <= offset <= MAX_MS):  # NaN fails every comparison
        raise SpecializeError(
            f"{KIND} file {path}: field 'calibration' needs a 'scale' in (0, 1000] and a finite 'offset_ms'"
        )
    return dict(value)


def _threads(value, path: Path) -> int:
    """Intra-op threads; profiles made before the field existed were timed with 1."""
    if value is None:
        return 1
    try:
        threads = int(value)
    except (TypeError, ValueError):
        threads = 0
    if threads < 1:
        raise SpecializeError(f"{KIND} file {path}: field 'threads' must be a positive integer, got {value!r}")
    return threads


def _check_predictions(profile: DeviceProfile, path: Path) -> None:
    """Every architecture must get a positive latency: a calibration offset below the fastest one is refused."""
    fastest = profile.fastest_ms()
    if not fastest > 0:
        raise SpecializeError(
            f"{KIND} file {path}: the fastest architecture would take {fastest:.3f} ms; "
            "latencies must be positive (check field 'calibration')"
        )


def _check_validations(measurement: dict, path: Path) -> None:
    validations = measurement.get("validations", []) if isinstance(measurement, dict) else None
    if not isinstance(validations, list) or not all(isinstance(v, dict) and _ms(v.get("mape")) for v in validations):
        raise SpecializeError(
            f"{KIND} file {path}: field 'measurement.validations' must be a list of records with a non-negative 'mape'"
        )


WHOLE_NETWORK_NUMBERS = ("calibrated_loo_mape", "uncalibrated_mape", "repeatability")  # what expected_error reads


def _check_numbers(record, keys: tuple[str, ...], field: str, path: Path) -> None:
    """`record` is an object whose `keys`, where present and not null, are non-negative finite numbers."""
    if not isinstance(record, dict):
        raise SpecializeError(f"{KIND} file {path}: field {field!r} is not an object")
    for key in keys:
        value = record.get(key)
        if value is not None and not (_ms(value)):
            raise SpecializeError(f"{KIND} file {path}: field '{field}.{key}' is {value!r}, not a non-negative number")


def load_profile(path: str | Path, space: SearchSpace | None = None) -> DeviceProfile:
    """Read and check a profile file; with `space`, also check that it was made for that space."""
    path = Path(path)
    profile = profile_from_dict(read_json(path, KIND, PROFILE_SCHEMA_VERSION), path)
    return profile if space is None else profile.for_space(space)


def profile_from_dict(data: dict, path: Path) -> DeviceProfile:
    """The one validation of a profile's contents, for reading and before writing: types, shapes, ranges."""
    try:
        profile_space = SearchSpace.from_dict(require(data, "space", path, KIND))
    except (TypeError, KeyError, ValueError) as exc:
        raise SpecializeError(f"{KIND} file {path}: field 'space' is not a valid space: {exc}") from None
    if data.get("fingerprint") != profile_space.fingerprint:
        raise SpecializeError(f"{KIND} file {path}: field 'fingerprint' does not match its 'space'")
    shape = (profile_space.num_layers, profile_space.num_candidates)
    kind = require(data, "kind", path, KIND)
    if kind not in PROFILE_KINDS:
        raise SpecializeError(
            f"{KIND} file {path}: field 'kind' is {kind!r}, expected one of {', '.join(PROFILE_KINDS)}"
        )
    batch = data.get("batch", 1)
    if type(batch) is not int or batch < 1:
        raise SpecializeError(f"{KIND} file {path}: field 'batch' is not a positive integer")
    for key in ("name", "runtime"):
        if not isinstance(require(data, key, path, KIND), str) or not data[key].strip():
            raise SpecializeError(f"{KIND} file {path}: field {key!r} is not a non-empty string")
        if has_control_characters(data[key]):
            raise SpecializeError(f"{KIND} file {path}: field {key!r} holds control characters (terminal escapes)")
    fixed_spread = data.get("fixed_spread_ms")
    measurement = data.get("measurement") or {}
    _check_validations(measurement, path)
    for key in ("hardware", "provenance"):
        if not isinstance(data.get(key) or {}, dict):
            raise SpecializeError(f"{KIND} file {path}: field {key!r} is not an object")
    _check_numbers(measurement.get("whole_network") or {}, WHOLE_NETWORK_NUMBERS, "measurement.whole_network", path)
    _check_numbers((data.get("hardware") or {}).get("anchor") or {}, ("expected_error",), "hardware.anchor", path)
    expected_error = data.get("expected_error")  # written for readers; the loader derives its own from the above
    if expected_error is not None and not (_ms(expected_error) and expected_error <= 100):
        raise SpecializeError(
            f"{KIND} file {path}: field 'expected_error' is {expected_error!r}, not a relative error in [0, 100]"
        )
    _check_numbers((data.get("hardware") or {}).get("few_shot") or {}, ("loo_mape",), "hardware.few_shot", path)
    profile = DeviceProfile(
        name=data["name"],  # checked above
        kind=kind,
        runtime=data["runtime"],
        space=profile_space,
        latency_ms=_array(data, "latency_ms", shape, path),
        fixed_ms=_ms_dict(require(data, "fixed_ms", path, KIND), "fixed_ms", path),
        precision=data.get("precision", "fp32"),
        batch=batch,
        spread_ms=None if data.get("spread_ms") is None else _array(data, "spread_ms", shape, path),
        calibration=_calibration(data.get("calibration"), path),
        hardware=data.get("hardware") or {},
        provenance=data.get("provenance") or {},
        resolved_from=data.get("resolved_from"),
        fixed_spread_ms=None if fixed_spread is None else _ms_dict(fixed_spread, "fixed_spread_ms", path),
        measurement=measurement,
        threads=_threads(data.get("threads", measurement.get("threads")), path),
        graph_optimization_level=data.get("graph_optimization_level"),
        path=path,
    )
    _check_predictions(profile, path)
    return profile

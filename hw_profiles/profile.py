"""Device profiles: latency [layers][candidates] of every block on one device, plus fixed parts.

Predicted latency of an architecture = scale * (sum of its blocks + fixed parts) + offset, where
scale and offset come from an optional linear calibration fitted against whole networks. It stays
additive over layers, so the exact solver can use it. Pure numpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from specialize.errors import SpecializeError
from specialize.fileio import atomic_write_json, read_json, require
from specialize.space import Architecture, SearchSpace

PROFILE_SCHEMA_VERSION = 1
KIND = "device profile"


@dataclass
class DeviceProfile:
    name: str                       # device name, e.g. "jetson-orin-nano" or "this-cpu"
    kind: str                       # "measured" or "estimated"
    runtime: str                    # onnxruntime | torch-cuda | tensorrt | roofline
    space: SearchSpace
    latency_ms: np.ndarray          # [layers, candidates], median per block
    fixed_ms: dict[str, float]      # {"stem": ..., "head": ...}
    precision: str = "fp32"
    batch: int = 1
    spread_ms: np.ndarray | None = None   # [layers, candidates], e.g. interquartile range
    calibration: dict | None = None       # {"scale": a, "offset_ms": b, ...fit statistics}
    hardware: dict = field(default_factory=dict)  # datasheet figures and their sources (estimated)
    provenance: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def scale(self) -> float:
        return float(self.calibration["scale"]) if self.calibration else 1.0

    def block_latency_ms(self) -> np.ndarray:
        """[layers, candidates] calibrated per-block latency: the additive part of a prediction."""
        return self.scale * self.latency_ms

    def offset_ms(self) -> float:
        """The architecture-independent part of a prediction (fixed parts and calibration offset)."""
        offset = float(self.calibration["offset_ms"]) if self.calibration else 0.0
        return self.scale * sum(self.fixed_ms.values()) + offset

    def predict_ms(self, arch: Architecture) -> float:
        rows = np.arange(self.space.num_layers)
        return float(self.block_latency_ms()[rows, np.asarray(arch.indices)].sum() + self.offset_ms())

    def check_space(self, space: SearchSpace) -> None:
        if space.fingerprint != self.space.fingerprint:
            raise SpecializeError(
                f"device profile {self.path or self.name} is for space {self.space.name!r} (fingerprint "
                f"{self.space.fingerprint}) but space {space.name!r} (fingerprint {space.fingerprint}) was asked for"
            )

    def to_dict(self) -> dict:
        return {
            "schema_version": PROFILE_SCHEMA_VERSION, "kind_of_file": "device_profile",
            "name": self.name, "kind": self.kind, "runtime": self.runtime, "precision": self.precision,
            "batch": self.batch, "space": self.space.to_dict(), "space_name": self.space.name,
            "fingerprint": self.space.fingerprint, "candidates": list(self.space.candidate_names),
            "latency_ms": self.latency_ms.round(6).tolist(),
            "spread_ms": None if self.spread_ms is None else self.spread_ms.round(6).tolist(),
            "fixed_ms": self.fixed_ms, "calibration": self.calibration, "hardware": self.hardware,
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())
        self.path = Path(path)


def load_profile(path: str | Path, space: SearchSpace | None = None) -> DeviceProfile:
    path = Path(path)
    data = read_json(path, KIND, PROFILE_SCHEMA_VERSION)
    try:
        profile_space = SearchSpace.from_dict(require(data, "space", path, KIND))
    except (TypeError, KeyError, ValueError) as exc:
        raise SpecializeError(f"{KIND} file {path}: field 'space' is not a valid space: {exc}") from None
    if data.get("fingerprint") != profile_space.fingerprint:
        raise SpecializeError(f"{KIND} file {path}: field 'fingerprint' does not match its 'space'")
    latency = np.asarray(require(data, "latency_ms", path, KIND), dtype=float)
    if latency.shape != (profile_space.num_layers, profile_space.num_candidates):
        raise SpecializeError(f"{KIND} file {path}: field 'latency_ms' has shape {latency.shape}, expected "
                              f"[{profile_space.num_layers}][{profile_space.num_candidates}]")
    if not np.isfinite(latency).all() or (latency < 0).any():
        raise SpecializeError(f"{KIND} file {path}: field 'latency_ms' holds negative or non-finite values")
    spread = data.get("spread_ms")
    profile = DeviceProfile(
        name=require(data, "name", path, KIND), kind=require(data, "kind", path, KIND),
        runtime=require(data, "runtime", path, KIND), space=profile_space, latency_ms=latency,
        fixed_ms=dict(require(data, "fixed_ms", path, KIND)), precision=data.get("precision", "fp32"),
        batch=int(data.get("batch", 1)), spread_ms=None if spread is None else np.asarray(spread, dtype=float),
        calibration=data.get("calibration"), hardware=data.get("hardware") or {},
        provenance=data.get("provenance") or {}, path=path,
    )
    if space is not None:
        profile.check_space(space)
    return profile

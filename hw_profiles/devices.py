"""The device registry: one JSON file per device under hw_profiles/devices/, published figures only.

Each figure is {value, kind, source}: kind is "datasheet" (printed in a datasheet), "derived" (a
product of datasheet figures, the arithmetic is in `source`) or "assumption" (the per-kernel
overhead: no datasheet gives it; `source` says so). These files are the only place where typed
hardware numbers live.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from specialize.errors import SpecializeError
from specialize.registry import Registry

DEVICES_DIR = Path(__file__).parent / "devices"
DEVICE_SCHEMA_VERSION = 1
FIGURES = ("peak_flops_fp32", "peak_flops_fp16", "memory_bandwidth", "kernel_overhead_s")
FIGURE_KINDS = ("datasheet", "derived", "assumption")


@dataclass(frozen=True)
class Device:
    """A registered device. `anchors`: published end-to-end latencies of reference networks
    (hw_profiles.reference_networks) on the device, each {network, runtime, precision, latency_ms,
    statistic, source, role}; role "fit" sets the estimate's scale, "check" measures its error, "other-family"
    (a network unlike the search spaces' blocks) is shown with its residual and used for neither."""

    name: str
    aliases: tuple[str, ...]
    description: str
    processor: str  # cpu | gpu
    default_precision: str  # fp32 | fp16
    date: str  # date of the figures (datasheet revision)
    figures: dict  # name -> {"value", "kind", "source"}
    anchors: tuple = ()  # published latencies that anchor the estimate (see the class docstring)

    def figure(self, name: str) -> float:
        return float(self.figures[name]["value"])

    def peak_flops(self, precision: str) -> float:
        if f"peak_flops_{precision}" not in self.figures:
            raise SpecializeError(
                f"device {self.name!r} has no {precision} peak-throughput figure (peak_flops_{precision}), so no "
                f"{precision} estimate; measure a profile on the device (`specialize profile --precision {precision}`)"
            )
        return self.figure(f"peak_flops_{precision}")


def _load_device(path: Path) -> Device:
    where = f"device file {path}"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecializeError(f"{where} cannot be read: {exc}") from None
    if data.get("schema_version") != DEVICE_SCHEMA_VERSION:
        raise SpecializeError(
            f"{where}: field 'schema_version' is {data.get('schema_version')!r}, expected {DEVICE_SCHEMA_VERSION}"
        )
    for key in ("name", "description", "processor", "default_precision", "date", "figures"):
        if key not in data:
            raise SpecializeError(f"{where}: missing field {key!r}")
    for figure in FIGURES:
        entry = data["figures"].get(figure)
        if not isinstance(entry, dict) or not {"value", "kind", "source"} <= entry.keys():
            raise SpecializeError(f"{where}: field 'figures.{figure}' needs value, kind and source")
        if entry["kind"] not in FIGURE_KINDS or not float(entry["value"]) > 0:
            raise SpecializeError(
                f"{where}: field 'figures.{figure}' needs a positive value and kind in {FIGURE_KINDS}"
            )
    anchors = tuple(_check_anchor(anchor, where) for anchor in data.get("anchors", ()))
    return Device(
        data["name"],
        tuple(data.get("aliases", ())),
        data["description"],
        data["processor"],
        data["default_precision"],
        data["date"],
        data["figures"],
        anchors,
    )


ANCHOR_FIELDS = ("network", "runtime", "precision", "latency_ms", "statistic", "source", "role")
# "other-family": published on the device beside its fit anchor, but a network of another family (dense ResNets):
# its residual is shown, and it sets neither the scale nor the band (the op model's dense-conv weight is fitted on
# this CPU's stems alone, and every space here is MBConv blocks)
ANCHOR_ROLES = ("fit", "check", "other-family")


def _check_anchor(anchor, where: str) -> dict:
    from hw_profiles.reference_networks import REFERENCE_NETWORKS

    if not isinstance(anchor, dict) or not set(ANCHOR_FIELDS) <= anchor.keys():
        raise SpecializeError(f"{where}: each entry of field 'anchors' needs {', '.join(ANCHOR_FIELDS)}")
    if anchor["network"] not in REFERENCE_NETWORKS:
        raise SpecializeError(
            f"{where}: anchor network {anchor['network']!r} is not one of {', '.join(REFERENCE_NETWORKS)}"
        )
    if anchor["role"] not in ANCHOR_ROLES or anchor["precision"] not in ("fp32", "fp16", "int8"):
        raise SpecializeError(f"{where}: anchor role must be one of {ANCHOR_ROLES} and precision fp32, fp16 or int8")
    try:
        latency = float(anchor["latency_ms"])
    except (TypeError, ValueError):
        latency = 0.0
    if not latency > 0:
        raise SpecializeError(f"{where}: anchor latency_ms must be a positive number, got {anchor['latency_ms']!r}")
    return {**anchor, "latency_ms": latency}


@lru_cache(maxsize=1)
def devices() -> Registry[Device]:
    """All registered devices by name (read once from hw_profiles/devices/*.json)."""
    found: Registry[Device] = Registry("device")
    for path in sorted(DEVICES_DIR.glob("*.json")):
        device = _load_device(path)
        if device.name in found:
            raise SpecializeError(f"device file {path}: device {device.name!r} is registered twice")
        found.add(device.name, device)
    return found


@lru_cache(maxsize=1)
def aliases() -> dict[str, str]:
    """alias -> device name (e.g. "jetson" -> "jetson-orin-nano")."""
    table = {}
    for device in devices().values():
        for alias in device.aliases:
            if alias in table or alias in devices():
                raise SpecializeError(f"device alias {alias!r} is ambiguous")
            table[alias] = device.name
    return table


def canonical_name(name: str) -> str:
    """The registered name behind `name` (itself when it is not an alias)."""
    return aliases().get(name, name)

"""One factory for device profiles: a profile file, a shipped measured profile, or a roofline estimate.

Shipped measured profiles live in hw_profiles/data/ (e.g. `this-cpu-onnxruntime.cifar10.json`) and
are found by device name and space fingerprint. Registered devices (hw_profiles/devices/) without a
measured profile for the space get a roofline estimate generated on demand.
"""
from __future__ import annotations

import json
from pathlib import Path

from hw_profiles import devices as device_registry
from hw_profiles.profile import DeviceProfile, load_profile
from hw_profiles.roofline import anchoring, estimate_profile
from specialize.errors import SpecializeError
from specialize.space import SearchSpace

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_DEVICE = "this-cpu"


def shipped_profiles(data_dir: Path | None = None) -> list[dict]:
    """Header of every shipped measured profile: name, space name, fingerprint, runtime, date, path."""
    headers = []
    for path in sorted((data_dir or DATA_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SpecializeError(f"device profile file {path} is not valid JSON: {exc}") from None
        headers.append({"name": data.get("name"), "space": data.get("space_name"), "fingerprint": data.get("fingerprint"),
                        "kind": data.get("kind"), "runtime": data.get("runtime"), "precision": data.get("precision"),
                        "date": (data.get("provenance") or {}).get("date", ""), "expected_error": data.get("expected_error"),
                        "path": path})
    return headers


def known_devices() -> list[str]:
    names = set(device_registry.devices()) | set(device_registry.aliases())
    names |= {h["name"] for h in shipped_profiles()}
    return sorted(names)


def resolve_profile(device: str | None, space: SearchSpace, profile_path: str | None = None) -> DeviceProfile:
    """The latency profile to use for `space`.

    `profile_path` wins (checked against `space`). Otherwise `device` (default "this-cpu") names a
    shipped measured profile for this space's fingerprint, or a registered device or alias, whose
    roofline estimate is made on the spot. Unknown names raise a SpecializeError listing the known ones.
    """
    if device is not None and not device.strip():
        raise SpecializeError("--device is empty; give a device name (see `specialize devices`) or leave it out")
    if profile_path is not None:
        return load_profile(profile_path, space)
    asked = device or DEFAULT_DEVICE
    name = device_registry.canonical_name(asked)
    resolved_from = asked if name != asked else None
    shipped = [h for h in shipped_profiles() if h["name"] == name]
    for header in shipped:
        if header["fingerprint"] == space.fingerprint:
            profile = load_profile(header["path"], space)
            profile.resolved_from = resolved_from
            return profile
    if name in device_registry.devices():
        return estimate_profile(device_registry.devices()[name], space, resolved_from=resolved_from)
    if shipped:
        have = ", ".join(f"{h['space']} (fingerprint {h['fingerprint']})" for h in shipped)
        raise SpecializeError(
            f"device {name!r} has measured profiles for {have}, not for space {space.name!r} (fingerprint "
            f"{space.fingerprint}); measure one with `specialize profile --name {name} --space {space.name} -o PROFILE.json` "
            f"and pass --profile PROFILE.json"
        )
    raise SpecializeError(f"unknown device {asked!r}; known devices: {', '.join(known_devices())} "
                          f"(or pass --profile PROFILE.json)")


def list_devices() -> list[dict]:
    """Every registered device (estimated, any space) and every shipped measured profile."""
    rows = []
    for device in device_registry.devices().values():
        anchor = anchoring(device, device.default_precision)
        rows.append({"name": device.name, "kind": "estimated", "runtime": "roofline", "date": device.date,
                     "space": "any", "precision": device.default_precision, "aliases": list(device.aliases),
                     "description": device.description, "expected_error": anchor["expected_error"],
                     "anchors": anchor["anchors"], "anchor_note": anchor["note"]})
    for header in shipped_profiles():
        rows.append({"name": header["name"], "kind": header["kind"], "runtime": header["runtime"],
                     "date": header["date"], "space": header["space"], "precision": header["precision"], "aliases": [],
                     "description": f"shipped profile {header['path'].name} (fingerprint {header['fingerprint']})",
                     "expected_error": header["expected_error"]})
    return rows

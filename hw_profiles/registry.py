"""One factory for device profiles: a profile file, a shipped measured profile, or a roofline estimate.

Shipped measured profiles live in hw_profiles/data/ and are found by what they hold (device name,
space fingerprint, batch, threads), not by file name; `shipped_file_name` names the file a profile
is shipped as (`this-cpu-onnxruntime.cifar10.json` at batch 1 and 1 thread, `...cifar10.b32.t2.json`
at batch 32 and 2 threads). One device and space can therefore have several shipped profiles: the
one picked is the asked batch (default 1) and threads (default: 1 thread when shipped, else the
fewest). Registered devices (hw_profiles/devices/) without a measured profile for the space and batch
get a roofline estimate at that batch, generated on demand.
"""

from __future__ import annotations

import json
from pathlib import Path

from hw_profiles import devices as device_registry
from hw_profiles.host import measured_elsewhere
from hw_profiles.profile import PRECISIONS, DeviceProfile, load_profile
from hw_profiles.roofline import anchoring, estimate_profile
from specialize.errors import SpecializeError, option
from specialize.space import SearchSpace
from specialize.table import space_option

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_DEVICE = "this-cpu"
DEFAULT_BATCH = 1
DEFAULT_THREADS = 1


def shipped_file_name(
    name: str, runtime: str, space_name: str, batch: int = 1, threads: int = 1, precision: str = "fp32"
) -> str:
    """The file a measured profile is shipped as in hw_profiles/data/ (batch, threads and precision only when not
    1, 1 and fp32)."""
    suffix = (f".b{batch}" if batch != 1 else "") + (f".t{threads}" if threads != 1 else "")
    suffix += f".{precision}" if precision != "fp32" else ""
    return f"{name}-{runtime}.{space_name}{suffix}.json"


def _header(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecializeError(f"device profile file {path} is not valid JSON: {exc}") from None
    threads = data.get("threads") or (data.get("measurement") or {}).get("threads") or 1
    return {
        "name": data.get("name"),
        "space": data.get("space_name"),
        "fingerprint": data.get("fingerprint"),
        "kind": data.get("kind"),
        "runtime": data.get("runtime"),
        "precision": data.get("precision"),
        "batch": data.get("batch", 1),
        "threads": threads,
        "date": (data.get("provenance") or {}).get("date", ""),
        "expected_error": data.get("expected_error"),
        "body_fingerprint": _body_fingerprint(data),
        "elsewhere": measured_elsewhere(data.get("hardware") or {}) if data.get("kind") == "measured" else None,
        "path": path,
    }


def _body_fingerprint(data: dict) -> str | None:
    try:
        return SearchSpace.from_dict(data.get("space")).body_fingerprint
    except ValueError:
        return None


def shipped_profiles(data_dir: Path | None = None) -> list[dict]:
    """Header of every shipped measured profile: name, space, fingerprint, runtime, batch, threads, date, path."""
    return [_header(path) for path in sorted((data_dir or DATA_DIR).glob("*.json"))]


def known_devices() -> list[str]:
    names = set(device_registry.devices()) | set(device_registry.aliases())
    names |= {h["name"] for h in shipped_profiles()}
    return sorted(names)


def pick_shipped(
    headers: list[dict], batch: int | None, threads: int | None, precision: str | None = None
) -> dict | None:
    """The shipped profile at `batch` (default 1), `threads` (default: 1 if shipped, else the fewest) and
    `precision` (default: fp32 where there is one); then by runtime and file name. None when none fits."""
    batch = DEFAULT_BATCH if batch is None else batch
    fits = [
        h
        for h in headers
        if h["batch"] == batch
        and (threads is None or h["threads"] == threads)
        and (precision is None or (h["precision"] or "fp32") == precision)
    ]

    def order(h: dict) -> tuple:
        return h["threads"] != DEFAULT_THREADS, h["threads"], h["precision"] != "fp32", h["runtime"], h["path"].name

    return min(fits, key=order, default=None)


def _settings(headers: list[dict]) -> str:
    """'batch 1 (1 thread, 2 threads), batch 32 (1 thread)': what a device's shipped profiles offer."""
    batches = sorted({h["batch"] for h in headers})

    def threads(b: int) -> str:
        return ", ".join(
            f"{t} thread{'s' if t > 1 else ''}" for t in sorted({h["threads"] for h in headers if h["batch"] == b})
        )

    return ", ".join(f"batch {b} ({threads(b)})" for b in batches)


def resolve_profile(
    device: str | None,
    space: SearchSpace,
    profile_path: str | None = None,
    *,
    batch: int | None = None,
    threads: int | None = None,
    precision: str | None = None,
) -> DeviceProfile:
    """The latency profile to use for `space`, at `precision` when given (else fp32 where measured, or the
    device's own precision for an estimate).

    `profile_path` wins (checked against `space`, and `batch`/`threads` when given). Otherwise `device`
    (default "this-cpu") names a shipped measured profile for this space's fingerprint at `batch`
    (default 1) and `threads` (see `pick_shipped`), or a registered device or alias, whose roofline
    estimate is made on the spot at `batch`. Unknown names, batches and thread counts raise a
    SpecializeError listing what there is.
    """
    check_setting("batch", batch)
    check_setting("threads", threads)
    check_precision(precision)
    if device is not None and not device.strip():
        raise SpecializeError(
            f"{option('device')} is empty; give a device name (see `specialize devices`) or leave it out"
        )
    if profile_path is not None:
        return check_profile_settings(load_profile(profile_path, space), batch, threads, precision)
    asked = device or DEFAULT_DEVICE
    name = device_registry.canonical_name(asked)
    resolved_from = asked if name != asked else None
    shipped = [h for h in shipped_profiles() if h["name"] == name]
    for_space = [h for h in shipped if h["fingerprint"] == space.fingerprint] or [
        h
        for h in shipped
        if h["body_fingerprint"] == space.body_fingerprint  # another class count: head repriced
    ]
    header = pick_shipped(for_space, batch, threads, precision)
    if header is not None:
        profile = load_profile(header["path"], space)
        profile.resolved_from = resolved_from
        return profile
    if name in device_registry.devices():
        if threads is not None:
            raise SpecializeError(
                f"{option('threads')} applies to measured profiles; {name!r} has none for space {space.name!r} "
                f"at batch {batch or DEFAULT_BATCH}, and its estimate has no thread count "
                f"(leave {option('threads')} out)"
            )
        known = device_registry.devices()[name]
        if precision is not None and f"peak_flops_{precision}" not in known.figures:
            raise SpecializeError(
                f"device {name!r} has no measured {precision} profile for space {space.name!r}, and no {precision} "
                f"throughput figure to estimate one from; measure one with `specialize profile --precision "
                f"{precision} --space {space_option(space)} -o PROFILE.json` on the device and pass "
                f"{option('profile', 'PROFILE.json')}"
            )
        return estimate_profile(
            device_registry.devices()[name],
            space,
            precision=precision,
            batch=batch or DEFAULT_BATCH,
            resolved_from=resolved_from,
        )
    if for_space:
        raise SpecializeError(_missing_setting(name, space, for_space, batch, threads, precision))
    if shipped:
        have = ", ".join(sorted({f"{h['space']} (fingerprint {h['fingerprint']})" for h in shipped}))
        raise SpecializeError(
            f"device {name!r} has measured profiles for {have}, not for space {space.name!r} (fingerprint "
            f"{space.fingerprint}); measure one with "
            f"`specialize profile --name {name} --space {space_option(space)} -o PROFILE.json` "
            f"and pass {option('profile', 'PROFILE.json')}"
        )
    raise SpecializeError(
        f"unknown device {asked!r}; known devices: {', '.join(known_devices())} "
        f"(or pass {option('profile', 'PROFILE.json')})"
    )


def precisions_for(device: str | None, space: SearchSpace, batch: int | None = None, threads: int | None = None):
    """The precisions `device` has a latency profile at for `space` (what `--precision auto` compares): its
    shipped measured profiles' at this batch and thread count, else those its estimate has published anchors at
    (and its own default precision)."""
    name = device_registry.canonical_name(device or DEFAULT_DEVICE)
    shipped = [h for h in shipped_profiles() if h["name"] == name and h["body_fingerprint"] == space.body_fingerprint]
    batch = DEFAULT_BATCH if batch is None else batch
    measured = {
        h["precision"] or "fp32"
        for h in shipped
        if h["batch"] == batch and h["threads"] == (DEFAULT_THREADS if threads is None else threads)
    }
    if measured:
        return sorted(measured, key=PRECISIONS.index)
    if name in device_registry.devices():
        known = device_registry.devices()[name]
        anchored = {a["precision"] for a in known.anchors} | {known.default_precision}
        return sorted((p for p in anchored if f"peak_flops_{p}" in known.figures), key=PRECISIONS.index)
    return []


def check_precision(precision: str | None) -> None:
    if precision is not None and precision not in PRECISIONS:
        raise SpecializeError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")


def check_setting(name: str, value: int | None) -> None:
    if value is not None and (type(value) is not int or not 1 <= value <= 65536):
        raise SpecializeError(f"{option(name)} must be a whole number from 1 to 65536, got {value!r}")


def _missing_setting(
    name: str, space: SearchSpace, headers: list[dict], batch: int | None, threads: int | None, precision: str | None
) -> str:
    asked = (
        f"batch {batch or DEFAULT_BATCH}"
        + (f", {threads} thread(s)" if threads is not None else "")
        + (f", {precision}" if precision is not None else "")
    )
    measure = (
        f"specialize profile --name {name} --space {space_option(space)} --batch {batch or DEFAULT_BATCH}"
        + (f" --threads {threads}" if threads is not None else "")
        + (f" --precision {precision}" if precision is not None else "")
        + " -o PROFILE.json"
    )
    return (
        f"device {name!r} has measured profiles for space {space.name!r} at {_settings(headers)}, not at {asked}; "
        f"pick one of those, or measure one with `{measure}` and pass {option('profile', 'PROFILE.json')}"
    )


def check_profile_settings(
    profile: DeviceProfile, batch: int | None, threads: int | None, precision: str | None = None
) -> DeviceProfile:
    """A given profile is used as it is: a batch, thread count or precision it was not made with is refused, not
    ignored."""
    check_setting("batch", batch)
    check_setting("threads", threads)
    check_precision(precision)
    where = profile.path or profile.name
    if batch is not None and batch != profile.batch:
        raise SpecializeError(
            f"device profile {where} was measured at batch {profile.batch}, not {option('batch', batch)}; "
            f"leave {option('batch')} out or give a profile made with `specialize profile --batch {batch}`"
        )
    if threads is not None and (profile.kind != "measured" or threads != profile.threads):
        made = f"{profile.threads} thread(s)" if profile.kind == "measured" else "no thread count (estimated)"
        raise SpecializeError(
            f"device profile {where} has {made}, not {option('threads', threads)}; leave {option('threads')} out "
            f"or give a profile made with `specialize profile --threads {threads}`"
        )
    if precision is not None and precision != profile.precision:
        raise SpecializeError(
            f"device profile {where} was measured at {profile.precision}, not {option('precision', precision)}; "
            f"leave {option('precision')} out or give a profile made with `specialize profile --precision "
            f"{precision}`"
        )
    return profile


def _estimable(device) -> list[str]:
    """The precisions a device's estimate exists at (a throughput figure), each with its band ('±?': no anchor)."""
    out = []
    for precision in PRECISIONS:
        if f"peak_flops_{precision}" in device.figures:
            band = anchoring(device, precision)["expected_error"]
            out.append(f"{precision} {'±?' if band is None else f'±{100 * band:.0f}%'}")
    return out


def list_devices(precision: str | None = None) -> list[dict]:
    """Every registered device (estimated, any space and batch) and every shipped measured profile; with
    `precision`, those that have a figure at it, each estimate anchored and banded at that precision."""
    check_precision(precision)
    rows = []
    for device in device_registry.devices().values():
        at = precision or device.default_precision
        if f"peak_flops_{at}" not in device.figures:
            continue
        anchor = anchoring(device, at)
        rows.append(
            {
                "name": device.name,
                "kind": "estimated",
                "runtime": "roofline",
                "date": device.date,
                "space": "any",
                "precision": at,
                "precisions": _estimable(device),  # what --precision can ask of its estimate
                "batch": "any",
                "threads": None,
                "aliases": list(device.aliases),
                "description": device.description,
                "expected_error": anchor["expected_error"],
                "anchors": anchor["anchors"],
                "anchor_note": anchor["note"],
                "se_factor": anchor["se_factor"],
                "se_source": anchor["se_source"],
            }
        )
    for header in shipped_profiles():
        if precision is not None and header["precision"] != precision:
            continue
        rows.append(
            {
                "name": header["name"],
                "kind": header["kind"],
                "runtime": header["runtime"],
                "date": header["date"],
                "space": header["space"],
                "precision": header["precision"],
                "batch": header["batch"],
                "threads": header["threads"],
                "aliases": [],
                "description": f"shipped profile {header['path'].name} (fingerprint {header['fingerprint']})"
                + (f"; measured on {header['elsewhere']}, not this machine" if header["elsewhere"] else ""),
                "expected_error": None if header["elsewhere"] else header["expected_error"],
                "measured_on": header["elsewhere"],  # another host: not this machine, error here unknown
            }
        )
    return rows

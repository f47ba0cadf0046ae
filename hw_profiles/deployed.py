"""Latency of an exported file timed as a deployment would run it (hw_profiles.validate.time_deployed: the
one runtime session and timing protocol, at the profile's threads and graph optimization level). Only a
profile measured on this machine with the same runtime can be checked this way."""

from __future__ import annotations

from pathlib import Path

from hw_profiles.profile import DeviceProfile
from hw_profiles.host import cpu_name, measured_elsewhere
from hw_profiles.validate import DEPLOYED_RUNS, time_deployed


def not_measured_here(profile: DeviceProfile) -> str | None:
    """Why the profile's prediction cannot be checked on this machine (None when it can)."""
    if profile.kind != "measured":
        return f"{profile.name} is an estimated profile, not this machine"
    if profile.runtime != "onnxruntime":
        return f"profile {profile.name} was measured with {profile.runtime}, this check times onnxruntime"
    host = measured_elsewhere(profile.hardware or {})
    if host is not None or (profile.hardware or {}).get("host_cpu") is None:
        where = host or (profile.hardware or {}).get("device_name") or "another device"
        return f"profile {profile.name} was measured on {where}, this machine is {cpu_name()!r}"
    return None


def deployed_latency_ms(onnx_path: str | Path, profile: DeviceProfile) -> tuple[float, str]:
    """(median latency in ms, how it was timed) of the ONNX file at the profile's batch, threads and level."""
    path = Path(onnx_path)
    level = profile.graph_optimization_level or "all"
    [median] = time_deployed(
        [path],
        (profile.batch, 3, profile.space.resolution, profile.space.resolution),
        "onnxruntime",
        "fp32",
        profile.threads,
        level,
    )
    how = (
        f"onnxruntime session of {path.name}, {profile.threads} thread(s), graph optimization {level}, "
        f"batch {profile.batch}, warm-up then median of {DEPLOYED_RUNS} runs"
    )
    return median, how

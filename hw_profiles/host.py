"""Which machine a measured profile describes, and whether it is this one (torch-free, on the online path).

`specialize profile` records the host it timed on (CPU model, core count, a digest of the CPU flags). A profile
measured on another host still predicts that host, but says nothing of this one: it is labelled "measured on
<host>, not here", its expected error is unknown, and the command that profiles this machine is shown.
"""

from __future__ import annotations

import hashlib
import os
import platform


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags_digest() -> str | None:
    """A short digest of the CPU's feature flags (None where /proc/cpuinfo has none)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1] for line in f if line.startswith(("flags", "Features"))), None)
    except OSError:
        return None
    return None if flags is None else hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:12]


def host_record() -> dict:
    """What a measured profile records of the machine it was timed on."""
    return {"host_cpu": cpu_name(), "host_cores": os.cpu_count(), "host_flags": cpu_flags_digest()}


def measured_elsewhere(hardware: dict) -> str | None:
    """The host a profiler-made profile was measured on when it is not this machine, else None. Profiles made on a
    device from a bundle (no `host_cpu`) describe that device by design and are not judged here."""
    recorded = hardware.get("host_cpu")
    if recorded is None:
        return None
    here = host_record()
    differs = [key for key in ("host_cpu", "host_cores", "host_flags") if hardware.get(key) not in (None, here[key])]
    if not differs:
        return None
    cores = hardware.get("host_cores")
    return f"{recorded}" + (f", {cores} cores" if cores else "")

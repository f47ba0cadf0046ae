"""JSON artifacts: atomic writes, checked reads with clear errors, and provenance."""

from __future__ import annotations

import datetime
import glob
import hashlib
import json
import os
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from specialize.errors import SpecializeError

TRACKED_PACKAGES = ("specialize", "torch", "onnx", "onnxruntime", "numpy", "deap", "highspy", "scipy", "tensorrt")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: readers never see half a file. Only a regular
    file (or nothing) is replaced: a device node, pipe or socket at `path` is refused, never turned into a file."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise SpecializeError(f"cannot write {path}: directory {directory} does not exist")
    _refuse_special(path)
    _sweep_orphans(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise SpecializeError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; artifacts are ordinary files
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise SpecializeError(f"cannot write {path}: {exc.strerror}") from None


TEMP_NAME_EXTRA = 40  # ".", ".<pid>.", mkstemp's 8 characters and ".tmp" around the name of a temporary file


def _sweep_orphans(path: Path) -> None:
    """Remove temporaries of `path` left by writers that died mid-write (kill -9): `.name.<pid>.*.tmp` whose
    process is gone. A live writer's file is left alone."""
    for orphan in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = orphan.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            orphan.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or not a pid we can ask about: leave its file
    return True


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Strict JSON only: a NaN or infinity is refused rather than written as `NaN` for readers to choke on."""
    try:
        text = json.dumps(data, indent=1, allow_nan=False)
    except ValueError:
        raise SpecializeError(f"cannot write {path}: the data holds a non-finite number (NaN or infinity)") from None
    atomic_write_bytes(path, (text + "\n").encode())


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any long work, if `path` cannot be written."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise SpecializeError(f"cannot write {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise SpecializeError(f"cannot write {path}: directory {directory} is not writable")
    if path.is_dir():
        raise SpecializeError(f"cannot write {path}: it is a directory")
    _refuse_special(path)
    longest = _name_max(directory) - TEMP_NAME_EXTRA
    if len(os.fsencode(path.name)) > longest:
        raise SpecializeError(
            f"cannot write {path}: its file name is {len(os.fsencode(path.name))} bytes, and at most {longest} "
            "leave room for the temporary file it is written through; pick a shorter name"
        )
    return path


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _refuse_special(path: Path) -> None:
    """An output may replace a regular file or nothing; a device, pipe or socket there is refused."""
    if path.exists() and not path.is_file():
        raise SpecializeError(
            f"cannot write {path}: it is not a regular file (a device, pipe or socket); pick a file path"
        )


def check_not_input(output: str | os.PathLike, *inputs: str | os.PathLike | None) -> None:
    """Refuse, before any work, an output that resolves to one of the command's inputs (it would destroy it)."""
    target = Path(output).resolve()
    for given in inputs:
        if given is not None and str(given) != "default" and Path(given).exists() and Path(given).resolve() == target:
            raise SpecializeError(
                f"output {output} is the input {given}: writing it would destroy the input; pick another output path"
            )


def _non_standard(name: str):
    """Python's json reads NaN and Infinity, which no other JSON reader does and no figure may be."""
    raise ValueError(f"{name} is not a JSON number (JSON has no NaN or infinity)")


def read_json(path: str | os.PathLike, kind: str, schema_version: int | None = None) -> dict:
    """Read a JSON artifact of `kind` ('accuracy table', 'device profile', ...), naming file and field on error."""
    path = Path(path)
    if path.is_dir():
        raise SpecializeError(f"{kind} file {path} is a directory, not a file")
    if not path.is_file():
        raise SpecializeError(f"{kind} file {path} does not exist")
    try:
        data = json.loads(path.read_text(), parse_constant=_non_standard)
    except OSError as exc:
        raise SpecializeError(f"{kind} file {path} cannot be read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise SpecializeError(f"{kind} file {path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise SpecializeError(f"{kind} file {path} is nested too deeply to be a {kind}") from None
    if not isinstance(data, dict):
        raise SpecializeError(f"{kind} file {path}: expected a JSON object at top level")
    if schema_version is not None and data.get("schema_version") != schema_version:
        raise SpecializeError(
            f"{kind} file {path}: field 'schema_version' is {data.get('schema_version')!r}, expected {schema_version}"
        )
    return data


def require(data: dict, key: str, path: str | os.PathLike, kind: str) -> Any:
    if key not in data:
        raise SpecializeError(f"{kind} file {path}: missing field {key!r}")
    return data[key]


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def provenance(**settings: Any) -> dict:
    """What made an artifact: command line, settings, machine, package versions and date."""
    return {
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "settings": settings,
        "machine": {
            "host": platform.node(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "versions": package_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

"""A training run's directory: created safely, locked against a second run, cleaned of a killed run's leftovers.

Two `train` runs into one -o would interleave log.jsonl and overwrite each other's checkpoints, so the
directory is locked (fcntl.flock on `.lock`) for the whole run; the second run gets one clear error.
The log is opened without following a planted symlink.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from specialize.errors import SpecializeError

LOCK_FILE = ".lock"
LEFTOVERS = (".checkpoint.pt.*.tmp", ".weights.pt.*.tmp", ".table.json.*.tmp", ".calibration.pt.*.tmp", ".*.tmp")


def make_run_dir(out: Path) -> bool:
    """Create `out` (and its parents); True when this call created it."""
    if out.exists() and not out.is_dir():
        raise SpecializeError(f"-o {out} exists and is not a directory; give a directory for the run")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecializeError(f"cannot create run directory {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise SpecializeError(f"run directory {out} is not writable")
    return created


def lock_run_dir(out: Path, holder: str = "`specialize train`", other_option: str = "-o") -> int:
    """An exclusive lock held until `unlock`; a second run on the same directory is refused at once."""
    try:
        fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise SpecializeError(f"cannot lock run directory {out}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SpecializeError(
            f"another {holder} is running in {out}; wait for it or pick another {other_option}"
        ) from None
    return fd


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def clear_leftovers(out: Path) -> list[Path]:
    """Temporary files a killed run left behind (atomic writes that never reached their rename)."""
    removed = sorted({p for pattern in LEFTOVERS for p in out.glob(pattern) if p.is_file() or p.is_symlink()})
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def open_log(out: Path) -> IO[str]:
    """log.jsonl for appending; a symlink in its place is refused rather than followed."""
    try:
        fd = os.open(out / "log.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise SpecializeError(
            f"cannot open {out / 'log.jsonl'} (a symlink is refused): {exc.strerror or exc}"
        ) from None
    return os.fdopen(fd, "a")


@dataclass
class RunDir:
    """A claimed run directory: its lock and its open log, released by `close`."""

    lock: int
    log: IO[str]
    out: Path | None = None
    created: bool = False  # this run made the directory

    def close(self, finished: bool = False) -> None:
        """Release the run; a finished run also removes its lock file (a later --resume makes a new one). A run
        that made its directory and failed before its first checkpoint (bad data, a bad option) removes the
        directory again: a refusal leaves nothing behind."""
        self.log.close()
        if finished and self.out is not None:
            (self.out / LOCK_FILE).unlink(missing_ok=True)  # still held: no other run can be inside it
        if not finished and self.created and self.out is not None and self._only_bookkeeping():
            for name in (LOCK_FILE, "log.jsonl"):
                (self.out / name).unlink(missing_ok=True)
            self.out.rmdir()
        unlock(self.lock)

    def _only_bookkeeping(self) -> bool:
        return {p.name for p in self.out.iterdir()} <= {LOCK_FILE, "log.jsonl"}


def claim_run_dir(out: Path, resume: bool, checkpoint_name: str) -> RunDir:
    """Make and lock `out`; refuse a finished or running run unless resuming; clear a killed run's leftovers.
    A refusal leaves the directory as it found it: no lock file of ours stays behind in a user's finished run."""

    def refuse_a_finished_run() -> None:
        if not resume and (out / checkpoint_name).exists():
            raise SpecializeError(f"{out} already holds a run; pass --resume to continue it or pick another -o")

    refuse_a_finished_run()
    had_lock_file = (out / LOCK_FILE).exists()
    created = make_run_dir(out)
    lock = lock_run_dir(out)
    try:
        refuse_a_finished_run()  # again: a checkpoint written between the first check and the lock
        if resume:
            clear_leftovers(out)
        return RunDir(lock, open_log(out), out, created)
    except BaseException:
        if not had_lock_file:
            (out / LOCK_FILE).unlink(missing_ok=True)  # while still holding it
        unlock(lock)
        raise

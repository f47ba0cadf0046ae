"""Cold start of the headline command, hyperfine-style: N fresh processes, median wall time.

    .venv/bin/python benchmarks/cold_start.py [--runs 7] [-- ARGS...]

Default ARGS: --device jetson --max-flops 300M --json. Also checks that stdout is one JSON document
and nothing else (HiGHS must print nothing). Note the machine's load beside the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["--device", "jetson", "--max-flops", "300M", "--json"]


def cold_runs(args: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system, less sensitive to other jobs) of each run."""
    exe = str(Path(sys.executable).with_name("specialize"))
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([exe, *args], capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"exit {done.returncode}: {done.stderr.strip()}")
        if "--json" in args:
            json.loads(done.stdout)  # raises if anything but JSON reached stdout
    return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("args", nargs="*", default=DEFAULT)
    opts = parser.parse_args()
    times, cpu = cold_runs(opts.args, opts.runs)
    load = os.getloadavg()[0]
    print(
        f"specialize {' '.join(opts.args)}: median {statistics.median(times):.3f} s wall over {opts.runs} runs "
        f"(min {min(times):.3f}, max {max(times):.3f}), median {statistics.median(cpu):.3f} s CPU; "
        f"1-min load average {load:.2f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()

"""Mutation testing with mutmut: how many one-line breakages of the core logic do the tests catch?

Copies the packages and tests into --work, mutates the modules named in --modules (each with the test files that
exercise it), runs mutmut there and prints, per module and in all, "killed K of N" (N: mutants checked; mutants
no test reaches count as not killed). Needs `pip install mutmut` (not a project dependency: it is a tool run by
hand). mutmut runs each mutant against the tests that cover the mutated function only, on one core here:

    python benchmarks/mutation.py --work /root/runs/mutation --modules cost,profile

A module whose every mutant takes a minute (export: about 1,000 mutants, each running the deploy tests) is checked
on a seeded random sample instead (--sample N): "killed K of N sampled" estimates the whole module's rate, with the
binomial 95% interval printed beside it.

    python benchmarks/mutation.py --work /root/runs/mutation --modules export --sample 60
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# module -> (source path, test files): the core formulas the layers issue named
MODULES = {
    "cost": ("specialize/cost.py", ["tests/test_cost_model.py", "tests/test_cost.py"]),
    "profile": ("hw_profiles/profile.py", ["tests/test_profile_file.py", "tests/test_hw_registry.py"]),
    "ga": ("specialize/search/ga.py", ["tests/test_ga_operators.py"]),
    # the composition root and the deploy path are reached through many files: each mutant runs the tests that
    # cover its function, among these
    "api": (
        "specialize/api/__init__.py",
        [
            "tests/test_api.py",
            "tests/test_cli_search.py",
            "tests/test_deploy.py",
            "tests/test_elastic_resolution.py",
            "tests/test_rerank.py",
            "tests/test_search.py",
            "tests/test_accuracy_fit.py",
            "tests/test_depth.py",
            "tests/test_hw_registry.py",
            "tests/test_offline_strategies.py",
            "tests/test_strategies.py",
            "tests/test_offline.py",
        ],
    ),
    "export": (
        "supernet/export.py",
        [
            "tests/test_export.py",
            "tests/test_deploy.py",
            "tests/test_elastic_resolution.py",
            "tests/test_pretrained.py",
            "tests/test_any_dataset.py",
            "tests/test_hardening.py",
        ],
    ),
}


# what the tests read: the packages, and benchmarks/ (tests load its scripts, e.g. test_hardening)
PACKAGES = ("specialize", "supernet", "hw_profiles", "cli", "tests", "benchmarks")


def run_module(work: Path, name: str, mutmut: str, sample: int | None = None, seed: int = 0) -> Counter:
    source, tests = MODULES[name]
    here = work / name
    shutil.rmtree(here, ignore_errors=True)
    here.mkdir(parents=True)
    for part in PACKAGES:
        shutil.copytree(ROOT / part, here / part, ignore=shutil.ignore_patterns("__pycache__"))
    config = (ROOT / "pyproject.toml").read_text().split("[tool.importlinter]")[0]
    config += (
        f"\n[tool.mutmut]\nsource_paths = [{source!r}]\npytest_add_cli_args_test_selection = {tests!r}\n"
        f"also_copy = {list(PACKAGES)!r}\n"
    ).replace("'", '"')
    (here / "pyproject.toml").write_text(config)
    names = []
    if sample is not None:  # generate every mutant (a name that matches none runs none), then run a sample
        subprocess.run([mutmut, "run", "none-matches-this"], cwd=here, capture_output=True, check=False)
        names = sorted(results(here, mutmut))
        names = sorted(random.Random(seed).sample(names, min(sample, len(names))))
    subprocess.run([mutmut, "run", "--max-children", "1", *names], cwd=here, stdout=subprocess.DEVNULL, check=False)
    status = results(here, mutmut)
    return Counter(status[n] for n in names) if names else Counter(status.values())


def results(here: Path, mutmut: str) -> dict[str, str]:
    """Every mutant's status by name (mutmut's `results --all true`)."""
    done = subprocess.run([mutmut, "results", "--all", "true"], cwd=here, capture_output=True, text=True)
    pairs = [line.strip().rsplit(": ", 1) for line in done.stdout.splitlines() if ": " in line]
    return {name: status.strip() for name, status in pairs}


def interval(killed: int, n: int) -> str:
    """Wilson 95% interval of a kill rate measured on a sample of n."""
    if n == 0:
        return ""
    p, z = killed / n, 1.96
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    return f"; 95% interval {100 * (centre - half):.0f}-{100 * (centre + half):.0f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--modules", default=",".join(MODULES))
    parser.add_argument("--sample", type=int, help="check a seeded random sample of this many mutants per module")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    mutmut = shutil.which("mutmut") or str(Path(sys.executable).parent / "mutmut")
    total = Counter()
    for name in args.modules.split(","):
        counts = run_module(args.work, name, mutmut, args.sample, args.seed)
        checked = sum(v for k, v in counts.items() if k != "not checked")
        if not checked:  # mutmut stops before any mutant when the selected tests fail unmutated
            print(f"{name:8s} no mutant checked: run `mutmut run` in {args.work / name} to see why", flush=True)
            continue
        sampled = f" sampled{interval(counts['killed'], checked)}" if args.sample else ""
        print(f"{name:8s} killed {counts['killed']} of {checked}{sampled} ({dict(counts)})", flush=True)
        total += counts
    checked = sum(v for k, v in total.items() if k != "not checked")
    print(f"killed {total['killed']} of {checked}")


if __name__ == "__main__":
    main()

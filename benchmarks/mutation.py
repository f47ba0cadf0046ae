"""Mutation testing with mutmut: how many one-line breakages of the core logic do the tests catch?

Copies the packages and tests into --work, mutates the modules named in --modules (each with the test files that
exercise it), runs mutmut there and prints, per module and in all, "killed K of N" (N: mutants checked; mutants
no test reaches count as not killed). Needs `pip install mutmut` (not a project dependency: it is a tool run by
hand). mutmut runs each mutant against the tests that cover the mutated function only, on one core here:

    python benchmarks/mutation.py --work /root/runs/mutation --modules cost,profile
"""

from __future__ import annotations

import argparse
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
    "api": ("specialize/api/__init__.py", ["tests/test_api.py"]),
    "export": ("supernet/export.py", ["tests/test_export.py"]),
}


def run_module(work: Path, name: str, mutmut: str) -> Counter:
    source, tests = MODULES[name]
    here = work / name
    shutil.rmtree(here, ignore_errors=True)
    here.mkdir(parents=True)
    for part in ("specialize", "supernet", "hw_profiles", "cli", "tests"):
        shutil.copytree(ROOT / part, here / part, ignore=shutil.ignore_patterns("__pycache__"))
    config = (ROOT / "pyproject.toml").read_text().split("[tool.importlinter]")[0]
    config += (
        f"\n[tool.mutmut]\nsource_paths = [{source!r}]\npytest_add_cli_args_test_selection = {tests!r}\n"
        "also_copy = ['specialize', 'supernet', 'hw_profiles', 'cli', 'tests']\n"
    ).replace("'", '"')
    (here / "pyproject.toml").write_text(config)
    subprocess.run([mutmut, "run", "--max-children", "1"], cwd=here, stdout=subprocess.DEVNULL, check=False)
    done = subprocess.run([mutmut, "results", "--all", "true"], cwd=here, capture_output=True, text=True)
    return Counter(line.rsplit(": ", 1)[1].strip() for line in done.stdout.splitlines() if ": " in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--modules", default=",".join(MODULES))
    args = parser.parse_args()
    mutmut = shutil.which("mutmut") or str(Path(sys.executable).parent / "mutmut")
    total = Counter()
    for name in args.modules.split(","):
        counts = run_module(args.work, name, mutmut)
        checked = sum(v for k, v in counts.items() if k != "not checked")
        print(f"{name:8s} killed {counts['killed']} of {checked} ({dict(counts)})", flush=True)
        total += counts
    checked = sum(v for k, v in total.items() if k != "not checked")
    print(f"killed {total['killed']} of {checked}")


if __name__ == "__main__":
    main()

"""Online specialization benchmark: cold command time, GA and exact solve times, GA quality on random bounds.

    .venv/bin/python benchmarks/online.py [--runs 7] [--sets 500]

Targets: cold `specialize --device jetson --max-flops 300M --json` <= 0.3 s (median), GA <= 0.3 s,
exact solve <= 0.1 s; over random bound sets: 0 GA answers that break a bound, median gap 0,
95th percentile gap <= 0.5 % of the table's loss range.

Tables: cifar10 uses the embedded default table when it exists. No trained ponas-imagenet table
exists, so its table (and cifar10's when the default is missing) is uniform random numbers, used
only for the solver-gap statistic; the output says which. Latency comes from `hw_profiles`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from specialize.cost import cost_arrays
from specialize.search.constraints import METRICS, Bound, bounds_from_options, build_problem
from specialize.search.exact import solve_exact
from specialize.search.ga import run_ga
from specialize.search.reach import reachable
from specialize.space import get_space
from specialize.table import DEFAULT_TABLE, AccuracyTable, load_table

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ["--device", "jetson", "--max-flops", "300M", "--json"]


def table_for(space_name: str, seed: int = 0) -> tuple[AccuracyTable, str]:
    if space_name == "cifar10" and DEFAULT_TABLE.is_file():
        return load_table(None), "embedded default table"
    space = get_space(space_name)
    acc = np.random.default_rng(seed).uniform(0.5, 0.9, (space.num_layers, space.num_candidates))
    return AccuracyTable(
        space=space, accuracy=acc, best_arch="-"
    ), "RANDOM table (uniform numbers, solver statistics only)"


def problem_for(table: AccuracyTable, bounds: tuple[Bound, ...]):
    from hw_profiles import resolve_profile

    profile = resolve_profile("jetson", table.space)
    return build_problem(
        table.loss,
        cost_arrays(table.space),
        bounds,
        table.space.name,
        latency=profile.latency_terms(),
        device=profile.name,
    )


def cold_command(runs: int) -> tuple[float, str]:
    args = list(COMMAND)
    note = "default table"
    if not DEFAULT_TABLE.is_file():
        path = Path(tempfile.mkdtemp()) / "random.table.json"
        table_for("cifar10")[0].save(path)
        args += ["--table", str(path)]
        note = "no default table yet: a random cifar10 table file"
    exe = str(Path(sys.executable).with_name("specialize"))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([exe, *args], check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times), note


def median_seconds(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_bounds(rng: np.random.Generator, base) -> tuple[Bound, ...]:
    """1-3 metrics; an upper bound anywhere in the reachable range, a lower one, or an interval
    [r·C_u, C_u] with r in [0.6, 0.95] (EPNAS-style)."""
    bounds = []
    for metric in rng.choice(list(METRICS), size=rng.integers(1, 4), replace=False):
        lo, hi = reachable(base, str(metric))
        kind = rng.integers(3)
        upper = lo + (hi - lo) * rng.uniform(0.05, 1.0)
        lower = upper * rng.uniform(0.6, 0.95) if kind == 2 else lo + (hi - lo) * rng.uniform(0.0, 0.95)
        bounds.append(Bound(str(metric), float(lower) if kind else None, float(upper) if kind != 1 else None))
    return tuple(bounds)


def run_strategy(name: str, problem, seed: int):
    """A registered strategy as `specialize()` runs it (hard bounds, default budget)."""
    from specialize.search.penalty import hard_bounds
    from specialize.search.registry import Budget, get_strategy

    return get_strategy(name).run(problem, hard_bounds(problem), Budget(), seed)


def gap_statistics(space_name: str, sets: int, seed: int = 0, strategy: str = "ga") -> str:
    table, source = table_for(space_name, seed)
    base = problem_for(table, ())
    rng = np.random.default_rng(seed)
    broken, infeasible, gaps, seconds = 0, 0, [], []
    for k in range(sets):
        problem = problem_for(table, random_bounds(rng, base))
        exact = solve_exact(problem)
        if exact.genes is None:
            infeasible += 1
            continue
        ga = run_strategy(strategy, problem, k)
        seconds.append(ga.seconds)
        broken += int(not problem.feasible(ga.genes[None])[0])
        gaps.append(100 * (exact.value - ga.value) / -problem.score.min(axis=1).sum())
    return (
        f"{space_name} ({source}): {sets} random bound sets, {infeasible} infeasible (reported, not answered); "
        f"GA answers breaking a bound: {broken}; gap to optimum median {np.median(gaps):.3f}%, "
        f"p95 {np.percentile(gaps, 95):.3f}%, max {max(gaps):.3f}% of the loss range; "
        f"GA optimal in {np.mean(np.array(gaps) < 1e-9):.0%}; GA median {np.median(seconds):.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sets", type=int, default=500)
    parser.add_argument("--strategy", default="ga", help="a registered search strategy")
    parser.add_argument("--gaps-only", action="store_true", help="only the gap statistics")
    args = parser.parse_args()
    if not args.gaps_only:
        timings(args.runs)
    for space_name in ("cifar10", "ponas-imagenet"):
        print(gap_statistics(space_name, args.sets, strategy=args.strategy))


def timings(runs: int) -> None:
    cold, note = cold_command(runs)
    print(f"cold `specialize {' '.join(COMMAND)}`: median {cold:.3f} s over {runs} runs ({note}; target <= 0.3 s)")
    table, source = table_for("cifar10")
    problem = problem_for(table, bounds_from_options(max_flops="300M"))
    print(
        f"GA alone (cifar10, jetson, --max-flops 300M, {source}): median "
        f"{median_seconds(lambda: run_ga(problem), runs):.3f} s (target <= 0.3 s)"
    )
    start = time.perf_counter()
    import highspy  # noqa: F401  (timed once: the cost of the first ILP in a process)

    highs_import = time.perf_counter() - start
    binding = problem_for(table, bounds_from_options(max_flops="40M", max_params="1.8M"))
    print(
        f"exact ILP solve (cifar10, --max-flops 40M --max-params 1.8M): median "
        f"{median_seconds(lambda: solve_exact(binding), runs):.4f} s (target <= 0.1 s); "
        f"importing highspy once: {highs_import:.3f} s"
    )


if __name__ == "__main__":
    main()

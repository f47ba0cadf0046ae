"""Offline strategies side by side: the same budget of supernet evaluations and the same constraint sets.

    .venv/bin/python benchmarks/strategies.py --data PATH/cifar10-jpg.tar.gz [--table default] \
        [--budget 300] [--seeds 3] [--val-images N] [--out results.json [--resume]]

Strategies: every offline strategy in the registry (random, epnas, and any added later), each given
--budget distinct architectures scored by the one evaluator (`supernet.fitness`: validation top-1 on the
table's own validation split after batch-norm recalibration, the first --val-images images of its fixed
order), under EPNAS's soft penalty; plus "table+GA", the online answer (`specialize()`, the GA over the
accuracy table), measured afterwards with the same evaluator.

A strategy's "returned" model is its own pick under the soft penalty: the best architecture it scored
that meets every bound, or, when it scored none, the fittest one under the penalty (which breaks a bound).
"held-out" is the returned model's accuracy on the rest of the validation split (the images after the
first --val-images, which no search scores): the best of 300 scored on the same 300 images is flattered.
"meets" is the share of seeds whose returned model meets every bound; "best" and "mean" are the
validation accuracy of the returned models that do. Wall time is per run (a run paused with kill -STOP
counts the pause; "cpu", this process's CPU time in the run, does not); evaluations/s counts distinct
sub-networks measured per second of the search (table+GA measures one, after its search).

Constraint sets are drawn from the space itself (quantiles of 2,000 uniform random architectures), so
they bind and are feasible on any table: params <= 25th percentile; MACs <= 40th percentile with
intensity >= the median of those; latency on the measured profile `this-cpu` <= 30th percentile; and
"tight", EPNAS's two-sided case, params <= 15th percentile with MACs >= 75th percentile, which about 0.06%
of uniform random architectures meet (the share is printed): the set where EPNAS claims random search fails.

Runs go seed by seed (every set and strategy at seed 0, then seed 1, ...), so an interrupted run still has
whole seeds. With --out, every finished run is written there atomically; --resume skips the runs already
in it (same table, budget and validation images), so a killed run continues where it stopped.
Seeds (or sets) can run in parallel processes, one per core: `--only-seeds 2 --out runs-s2.json` runs seed 2
alone (`--only-sets latency` one set), and `--out runs.json --resume --merge runs-s2.json` then adds those
runs (same key) before printing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass

import numpy as np

from specialize.api import prepare, search_offline, specialize
from specialize.search.constraints import bounds_from_options
from specialize.sampling import uniform_genes
from specialize.search.registry import is_offline, strategy_names
from specialize.fileio import atomic_write_json
from specialize.table import load_table

DEVICE = "this-cpu"
SAMPLES = 2000
FEASIBLE_SAMPLES = 50_000


@dataclass(frozen=True)
class Run:
    meets: bool
    accuracy: float | None
    seconds: float
    evaluations_per_second: float | None
    cpu_seconds: float | None = None  # this process's CPU time: unlike wall time, not inflated by a pause
    arch: str | None = None  # the returned architecture
    held_out: float | None = None  # its accuracy on the validation images the search never scored


def constraint_sets(table) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Bound keywords for each set, at quantiles of uniform random architectures of the table's space, and
    the share of uniform random architectures (a fresh draw of FEASIBLE_SAMPLES) that meets each set."""
    _, _, problem = prepare(table, DEVICE, None, ())
    values = problem.measure(uniform_genes(problem.allowed, np.random.default_rng(0), SAMPLES))
    small = values["macs"] <= np.quantile(values["macs"], 0.4)
    sets = {
        "tight": {
            "max_params": float(np.quantile(values["params"], 0.15)),
            "min_flops": float(np.quantile(values["macs"], 0.75)),
        },
        "params": {"max_params": float(np.quantile(values["params"], 0.25))},
        "macs+intensity": {
            "max_flops": float(np.quantile(values["macs"], 0.4)),
            "min_intensity": float(np.median(values["intensity"][small])),
        },
        "latency": {"max_latency": float(np.quantile(values["latency_ms"], 0.3))},
    }
    fresh = uniform_genes(problem.allowed, np.random.default_rng(1), FEASIBLE_SAMPLES)
    return sets, {
        name: float(prepare(table, DEVICE, None, bounds_from_options(**bounds))[2].feasible(fresh).mean())
        for name, bounds in sets.items()
    }


def describe(bounds: dict[str, float]) -> str:
    from specialize.search.constraints import BOUND_OPTIONS

    return ", ".join(
        f"{name.split('_')[0]} {BOUND_OPTIONS[name][1].label} {BOUND_OPTIONS[name][1].format(v, 4)}"
        for name, v in bounds.items()
    )


def held_out_accuracy(fitness, table, arch: str | None) -> float | None:
    """Top-1 of `arch` on the validation images after the first `fitness.images` (the ones every search
    scores): picking the best of 300 on the same images flatters it; these images have no part in the pick."""
    from supernet.evaluate import subnet_accuracy

    split = fitness.split
    if arch is None or len(split.y) <= fitness.images:
        return None
    return subnet_accuracy(
        fitness.net,
        table.space.parse_arch(arch),
        split.x[fitness.images :],
        split.y[fitness.images :],
        split.calibration,
    )


def offline_run(table, data, fitness, strategy: str, budget: int, seed: int, bounds: dict) -> Run:
    device = DEVICE if "max_latency" in bounds else None
    cpu = time.process_time()
    result = search_offline(
        table,
        data,
        strategy=strategy,
        penalty="soft",
        budget=budget,
        seed=seed,
        device=device,
        fitness=fitness,
        **bounds,
    )
    cpu = time.process_time() - cpu
    return Run(
        result.meets_bounds,
        result.validation_accuracy if result.meets_bounds else None,
        result.wall_seconds,
        result.evaluations_per_second,
        cpu,
        result.arch,
        held_out_accuracy(fitness, table, result.arch) if result.meets_bounds else None,
    )


def table_ga_run(table, fitness, seed: int, bounds: dict) -> Run:
    start = time.perf_counter()
    result = specialize(DEVICE if "max_latency" in bounds else None, table=table, seed=seed, **bounds)
    seconds = time.perf_counter() - start
    genes = np.array([table.space.parse_arch(result.arch).indices])
    meets = all(b["ok"] for b in result.bounds)
    return Run(
        meets,
        float(fitness(genes)[0]) if meets else None,
        seconds,
        None,
        None,
        result.arch,
        held_out_accuracy(fitness, table, result.arch) if meets else None,
    )


def summary_line(set_name: str, strategy: str, runs: list[Run]) -> str:
    accuracies = [r.accuracy for r in runs if r.accuracy is not None]
    rates = [r.evaluations_per_second for r in runs if r.evaluations_per_second is not None]
    best = f"{100 * max(accuracies):.2f}%" if accuracies else "-"
    mean = f"{100 * statistics.mean(accuracies):.2f}%" if accuracies else "-"
    rate = f"{statistics.mean(rates):.2f}" if rates else "-"
    held = [r.held_out for r in runs if r.held_out is not None]
    held_text = f"{100 * statistics.mean(held):.2f}%" if held else "-"
    cpus = [r.cpu_seconds for r in runs if r.cpu_seconds is not None]
    cpu = f"{statistics.mean(cpus):7.1f} s" if cpus else "      - "
    return (
        f"{set_name:<15} {strategy:<10} meets {sum(r.meets for r in runs)}/{len(runs)}  best {best:>7}  "
        f"mean {mean:>7}  held-out {held_text:>7}  wall {statistics.mean(r.seconds for r in runs):7.1f} s  cpu {cpu}  "
        f"evals/s {rate:>6}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="default")
    parser.add_argument("--data", required=True, help="the dataset the table was trained on")
    parser.add_argument("--val-images", type=int, default=None, help="score on the first N validation images")
    parser.add_argument("--budget", type=int, default=300, help="distinct architectures each offline strategy scores")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=None, help="write every finished run as JSON here (atomically)")
    parser.add_argument("--resume", action="store_true", help="skip the runs already in --out")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--only-seeds", type=int, nargs="+", default=None, help="run only these of seeds 0..--seeds-1")
    parser.add_argument("--only-sets", nargs="+", default=None, help="run only these constraint sets")
    parser.add_argument("--merge", nargs="+", default=[], help="add the runs of these --out files (same key)")
    args = parser.parse_args()
    if args.only_seeds and not set(args.only_seeds) <= set(range(args.seeds)):
        parser.error(f"--only-seeds must be among 0..{args.seeds - 1}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    import supernet.strategies  # noqa: F401  (registers the offline strategies that need torch)
    from supernet.fitness import SupernetFitness, supernet_fitness

    table = load_table(None if args.table == "default" else args.table)
    shared = supernet_fitness(table, args.data, args.val_images)

    def fresh() -> SupernetFitness:
        """An evaluator with an empty cache: no strategy profits from another's measurements."""
        return SupernetFitness(shared.net, table, shared.split, shared.images)

    strategies = [name for name in strategy_names() if is_offline(name)]
    print(
        f"table {args.table} (space {table.space.name}), {shared.images} validation images, budget {args.budget} "
        f"evaluations, seeds 0..{args.seeds - 1}, soft penalty; strategies: {', '.join(strategies)}, table+GA"
    )
    sets, shares = constraint_sets(table)
    if args.only_sets and not set(args.only_sets) <= set(sets):
        parser.error(f"--only-sets must be among {', '.join(sets)}")
    for set_name, bounds in sets.items():
        print(
            f"-- {set_name}: {describe(bounds)}; met by {100 * shares[set_name]:.3f}% of {FEASIBLE_SAMPLES} "
            f"uniform random architectures"
        )
    key = {
        "table": str(table.path),
        "fingerprint": table.fingerprint,
        "budget": args.budget,
        "val_images": shared.images,
    }
    record = load_record(args.out, key) if args.resume else {}
    for path in args.merge:
        record.update(load_record(path, key))
    for seed in args.only_seeds if args.only_seeds is not None else range(args.seeds):
        for set_name, bounds in sets.items():
            if args.only_sets is not None and set_name not in args.only_sets:
                continue
            for strategy in strategies + ["table+GA"]:
                name = f"{set_name}/{strategy}/{seed}"
                if name not in record:
                    record[name] = (
                        table_ga_run(table, fresh(), seed, bounds)
                        if strategy == "table+GA"
                        else offline_run(table, args.data, fresh(), strategy, args.budget, seed, bounds)
                    ).__dict__
                    if args.out:
                        atomic_write_json(args.out, {"key": key, "args": vars(args), "runs": record})
                print(f"seed {seed} " + summary_line(set_name, strategy, [Run(**record[name])]), flush=True)
    missing = [
        f"{s}/{t}/{seed}"
        for s in sets
        for t in strategies + ["table+GA"]
        for seed in range(args.seeds)
        if f"{s}/{t}/{seed}" not in record
    ]
    if missing:  # --only-seeds / --only-sets: the summary waits for the merge of every seed
        print(
            f"== no summary yet: {len(missing)} runs are not in this record (e.g. {missing[0]}); "
            f"merge the other --out files with --resume --merge"
        )
        return
    print(f"== over seeds 0..{args.seeds - 1}")
    for set_name in sets:
        for strategy in strategies + ["table+GA"]:
            print(
                summary_line(
                    set_name, strategy, [Run(**record[f"{set_name}/{strategy}/{seed}"]) for seed in range(args.seeds)]
                )
            )


def load_record(path: str | None, key: dict) -> dict:
    """The runs already written to `path` by a run with the same key (empty when there is no file)."""
    import os

    if not path or not os.path.exists(path):
        return {}
    with open(path) as fh:
        saved = json.load(fh)
    if saved.get("key") != key:
        raise SystemExit(f"{path}: written for {saved.get('key')}, not {key}; use another --out")
    return saved["runs"]


if __name__ == "__main__":
    main()

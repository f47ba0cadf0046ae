"""Offline strategies side by side: the same budget of supernet evaluations and the same constraint sets.

    .venv/bin/python benchmarks/strategies.py --data PATH/cifar10-jpg.tar.gz [--table default] \
        [--budget 300] [--seeds 3] [--val-images N] [--out results.json]

Strategies: every offline strategy in the registry (random, epnas, and any added later), each given
--budget distinct architectures scored by the one evaluator (`supernet.fitness`: validation top-1 on the
table's own validation split after batch-norm recalibration, the first --val-images images of its fixed
order), under EPNAS's soft penalty; plus "table+GA", the online answer (`specialize()`, the GA over the
accuracy table), measured afterwards with the same evaluator.

A strategy's "returned" model is its own pick under the soft penalty: the best architecture it scored
that meets every bound, or, when it scored none, the fittest one under the penalty (which breaks a bound).
"meets" is the share of seeds whose returned model meets every bound; "best" and "mean" are the
validation accuracy of the returned models that do. Wall time is per run; evaluations/s counts distinct
sub-networks measured per second of the search (table+GA measures one, after its search).

Constraint sets are drawn from the space itself (quantiles of 2,000 uniform random architectures), so
they bind and are feasible on any table: params <= 25th percentile; MACs <= 40th percentile with
intensity >= the median of those; latency on the measured profile `this-cpu` <= 30th percentile.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass

import numpy as np

from specialize.api import prepare, search_offline, specialize
from specialize.search.constraints import METRICS
from specialize.search.random_search import uniform_architectures
from specialize.search.registry import is_offline, strategy_names
from specialize.table import load_table

DEVICE = "this-cpu"
SAMPLES = 2000


@dataclass(frozen=True)
class Run:
    meets: bool
    accuracy: float | None
    seconds: float
    evaluations_per_second: float | None


def constraint_sets(table) -> dict[str, dict[str, float]]:
    """Bound keywords for each set, at quantiles of uniform random architectures of the table's space."""
    _, _, problem = prepare(table, DEVICE, None, ())
    values = problem.measure(uniform_architectures(problem.allowed, np.random.default_rng(0), SAMPLES))
    small = values["macs"] <= np.quantile(values["macs"], 0.4)
    return {"params": {"max_params": float(np.quantile(values["params"], 0.25))},
            "macs+intensity": {"max_flops": float(np.quantile(values["macs"], 0.4)),
                               "min_intensity": float(np.median(values["intensity"][small]))},
            "latency": {"max_latency": float(np.quantile(values["latency_ms"], 0.3))}}


def describe(bounds: dict[str, float]) -> str:
    from specialize.search.constraints import BOUND_OPTIONS

    return ", ".join(f"{name.split('_')[0]} {BOUND_OPTIONS[name][1].label} {BOUND_OPTIONS[name][1].format(v, 4)}"
                     for name, v in bounds.items())


def offline_run(table, data, fitness, strategy: str, budget: int, seed: int, bounds: dict) -> Run:
    device = DEVICE if "max_latency" in bounds else None
    result = search_offline(table, data, strategy=strategy, penalty="soft", budget=budget, seed=seed, device=device,
                            fitness=fitness, **bounds)
    return Run(result.meets_bounds, result.validation_accuracy if result.meets_bounds else None,
               result.wall_seconds, result.evaluations_per_second)


def table_ga_run(table, fitness, seed: int, bounds: dict) -> Run:
    start = time.perf_counter()
    result = specialize(DEVICE if "max_latency" in bounds else None, table=table, seed=seed, **bounds)
    seconds = time.perf_counter() - start
    genes = np.array([table.space.parse_arch(result.arch).indices])
    meets = all(b["ok"] for b in result.bounds)
    return Run(meets, float(fitness(genes)[0]) if meets else None, seconds, None)


def summary_line(set_name: str, strategy: str, runs: list[Run]) -> str:
    accuracies = [r.accuracy for r in runs if r.accuracy is not None]
    rates = [r.evaluations_per_second for r in runs if r.evaluations_per_second is not None]
    best = f"{100 * max(accuracies):.2f}%" if accuracies else "-"
    mean = f"{100 * statistics.mean(accuracies):.2f}%" if accuracies else "-"
    rate = f"{statistics.mean(rates):.2f}" if rates else "-"
    return (f"{set_name:<15} {strategy:<10} meets {sum(r.meets for r in runs)}/{len(runs)}  best {best:>7}  "
            f"mean {mean:>7}  wall {statistics.mean(r.seconds for r in runs):7.1f} s  evals/s {rate:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="default")
    parser.add_argument("--data", required=True, help="the dataset the table was trained on")
    parser.add_argument("--val-images", type=int, default=None, help="score on the first N validation images")
    parser.add_argument("--budget", type=int, default=300, help="distinct architectures each offline strategy scores")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=None, help="also write every run as JSON here")
    args = parser.parse_args()

    import supernet.strategies  # noqa: F401  (registers the offline strategies that need torch)
    from supernet.fitness import SupernetFitness, supernet_fitness

    table = load_table(None if args.table == "default" else args.table)
    shared = supernet_fitness(table, args.data, args.val_images)
    def fresh() -> SupernetFitness:
        """An evaluator with an empty cache: no strategy profits from another's measurements."""
        return SupernetFitness(shared.net, table, shared.split, shared.images)
    strategies = [name for name in strategy_names() if is_offline(name)]
    print(f"table {args.table} (space {table.space.name}), {shared.images} validation images, budget {args.budget} "
          f"evaluations, seeds 0..{args.seeds - 1}, soft penalty; strategies: {', '.join(strategies)}, table+GA")
    record = {}
    for set_name, bounds in constraint_sets(table).items():
        print(f"-- {set_name}: {describe(bounds)}")
        for strategy in strategies + ["table+GA"]:
            runs = [table_ga_run(table, fresh(), seed, bounds) if strategy == "table+GA" else
                    offline_run(table, args.data, fresh(), strategy, args.budget, seed, bounds) for seed in range(args.seeds)]
            print(summary_line(set_name, strategy, runs), flush=True)
            record[f"{set_name}/{strategy}"] = [r.__dict__ for r in runs]
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "runs": record}, fh, indent=1)


if __name__ == "__main__":
    main()

"""The answer returned is never worse than the best any solver found, over random bound sets.

For each of --sets random bound sets (latency on --device, MACs, params; lower and upper sides drawn inside the
reachable range), runs the main command's search and prints the value (summed T_d loss, higher is better) of the
GA's answer, the exact solver's and the returned one, and which it came from. The last line counts the sets where
the returned answer was worse than the better of the two (the goal: 0).

    python benchmarks/best_answer.py --device this-cpu --sets 20
"""

from __future__ import annotations

import argparse

import numpy as np

from specialize.api import prepare, specialize
from specialize.errors import SpecializeError
from specialize.search.reach import reachable


def random_bounds(problem, rng: np.random.Generator) -> dict[str, str]:
    units = {"latency_ms": ("latency", "ms"), "macs": ("flops", ""), "params": ("params", "")}
    bounds = {}
    for metric in rng.choice(list(units), size=rng.integers(1, 3), replace=False):
        lo, hi = reachable(problem, metric)
        a, b = sorted(rng.uniform(0.02, 0.6, 2))  # tight enough that most sets bind
        name, unit = units[metric]
        bounds[f"max_{name}"] = f"{lo + b * (hi - lo):.6g}{unit}"
        if rng.random() < 0.5:
            bounds[f"min_{name}"] = f"{lo + a * (hi - lo):.6g}{unit}"
    return bounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="this-cpu")
    parser.add_argument("--table", default="default")
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--generations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    _, _, base = prepare(args.table, args.device, None, ())
    worse = infeasible = 0
    for i in range(args.sets):
        bounds = random_bounds(base, rng)
        try:
            r = specialize(args.device, table=args.table, generations=args.generations, **bounds)
        except SpecializeError:
            infeasible += 1
            print(f"set {i + 1:2d} {bounds}: infeasible (refused with the reachable value)")
            continue
        best = max(v for v in (r.strategy_value, r.optimum_value) if v is not None)
        worse += r.accuracy_loss < best - 1e-12
        ga = "-" if r.strategy_value is None else f"{100 * r.strategy_value:+.3f}%"
        print(
            f"set {i + 1:2d} ga {ga:>9s}  exact {100 * r.optimum_value:+.3f}%  returned {100 * r.accuracy_loss:+.3f}% "
            f"from {r.answer_from:5s}  {bounds}"
        )
    print(
        f"{args.sets} bound sets on {args.device}: returned answer worse than the best found in {worse}, "
        f"infeasible {infeasible}"
    )


if __name__ == "__main__":
    main()

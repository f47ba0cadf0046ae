"""Specialize one trained supernet for several devices and compare the answers.

    .venv/bin/python examples/specialize_many_devices.py [--table PATH] [--max-flops 300M] [--latency-share 0.5]

Each device gets a latency bound `--latency-share` of the way from its fastest reachable network to the
best (unconstrained) network on it, so every device has to give something up; MACs are bounded as given.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from specialize import specialize
from specialize.api import prepare
from specialize.errors import SpecializeError
from specialize.search.reach import reachable

FALLBACK_DEVICES = ("jetson", "this-cpu")


def device_names() -> list[str]:
    try:
        from hw_profiles import list_devices
    except ImportError:
        return list(FALLBACK_DEVICES)
    return sorted({row["name"] for row in list_devices()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None, help="accuracy table (default: the embedded one)")
    parser.add_argument("--max-flops", default="300M")
    parser.add_argument("--latency-share", type=float, default=0.5)
    args = parser.parse_args()
    table = Table(
        title=f"one supernet, many devices (MACs <= {args.max_flops}, latency bound "
        f"{args.latency_share:.0%} of the way from the fastest to the best network)"
    )
    for column in ("device", "kind", "latency bound", "latency", "MACs", "params", "predicted acc.", "gap"):
        table.add_column(column)
    archs = []
    for name in device_names():
        try:
            r, bound = specialize_for(name, args.table, args.max_flops, args.latency_share)
        except SpecializeError as exc:
            archs.append(f"{name}: [red]{exc}[/]")
            continue
        table.add_row(
            r.device,
            r.device_kind,
            f"{bound:.3f} ms",
            f"{r.latency_ms:.3f} ms",
            f"{r.macs / 1e6:.1f}M",
            f"{r.params / 1e6:.2f}M",
            f"{100 * r.predicted_accuracy:.2f}%",
            f"{100 * r.optimality_gap:.3f}",
        )
        archs.append(f"{r.device}: {r.arch}")
    console = Console()
    console.print(table)
    console.print("\n".join(archs), highlight=False)


def specialize_for(name: str, table: str | None, max_flops: str, share: float):
    """The best network under MACs and a latency bound between the device's fastest and best networks."""
    _, _, problem = prepare(table, name, None, ())
    fastest, _ = reachable(problem, "latency_ms")
    best = specialize(name, table=table, generations=50).latency_ms
    bound = fastest + share * (best - fastest)
    return specialize(name, table=table, max_flops=max_flops, max_latency=bound), bound


if __name__ == "__main__":
    main()

"""Foundation benchmark: is the weight-sharing supernet as cheap as a plain network, and is the cost model exact?

(a) training-step throughput of the supernet at its largest architecture vs the same architecture
    built statically (target ratio >= 0.8);
(b) onnxruntime latency of a sub-network exported through supernet -> extract -> export vs an ONNX
    export of the same architecture built statically (target ratio 1.00 +- 0.05);
(c) cost model vs torch's FlopCounterMode and parameter count on N sampled architectures per preset.

Timed runs of the two contenders are interleaved (order alternating per round) so drifting load on
the machine hits both alike; we report medians.

    .venv/bin/python benchmarks/foundation.py [--threads 1] [--rounds 7] [--archs 50] [--ponas]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from specialize.cost import arch_cost
from specialize.space import Architecture, SearchSpace, get_space
from supernet.elastic import Supernet
from supernet.export import export_subnet
from supernet.onnx_graph import clean_graph, module_to_onnx_bytes
from supernet.sessions import ort_session
from supernet.static import build_static

PRESETS = ("cifar10", "ponas-imagenet", "ponas-table1")


def interleaved(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run each contender once per round, alternating the order, and collect what each returns."""
    results: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            results[name].append(contenders[name]())
    return results


# -- (a) training-step throughput -----------------------------------------------------------------
def train_steps(
    model: Callable[[torch.Tensor], torch.Tensor], params, x: torch.Tensor, y: torch.Tensor, steps: int
) -> Callable[[], float]:
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        return steps * x.shape[0] / (time.perf_counter() - start)

    return run


def train_throughput(space: SearchSpace, batch: int, steps: int, rounds: int) -> dict[str, float]:
    arch = space.largest_arch()
    torch.manual_seed(0)
    supernet, static = Supernet(space).train(), build_static(space, arch).train()
    x = torch.rand(batch, 3, space.resolution, space.resolution)
    y = torch.randint(0, space.num_classes, (batch,))
    contenders = {
        "supernet": train_steps(lambda t: supernet(t, arch), supernet.parameters(), x, y, steps),
        "static": train_steps(static, static.parameters(), x, y, steps),
    }
    for run in contenders.values():  # warm-up (allocator, kernels)
        run()
    return {name: statistics.median(v) for name, v in interleaved(contenders, rounds).items()}


# -- (b) onnxruntime latency ---------------------------------------------------------------------
def static_onnx(space: SearchSpace, arch: Architecture) -> bytes:
    """The same architecture built directly from torch modules, no supernet involved."""
    import onnx

    torch.manual_seed(1)
    module = build_static(space, arch).eval()
    raw = module_to_onnx_bytes(module, torch.rand(1, 3, space.resolution, space.resolution))
    return clean_graph(onnx.load_from_string(raw)).SerializeToString()


def latency_runner(model_bytes: bytes, resolution: int, runs: int) -> Callable[[], float]:
    session = ort_session(model_bytes, threads=1)
    x = {"input": torch.rand(1, 3, resolution, resolution).numpy()}
    for _ in range(3):
        session.run(None, x)

    def run() -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run(None, x)
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    return run


def ort_latency(space: SearchSpace, arch: Architecture, runs: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        result = export_subnet(space.name, str(arch), Path(tmp) / "m.onnx")
        exported = result.onnx_path.read_bytes()
    contenders = {
        "supernet": latency_runner(exported, space.resolution, runs),
        "static": latency_runner(static_onnx(space, arch), space.resolution, runs),
    }
    return {name: statistics.median(v) for name, v in interleaved(contenders, rounds).items()}


# -- (c) cost model agreement --------------------------------------------------------------------
def cost_agreement(space: SearchSpace, n: int, seed: int = 0) -> tuple[int, int]:
    """(architectures where MACs and params both match exactly, architectures checked)."""
    rng, net = random.Random(seed), Supernet(space).eval()
    exact = 0
    for _ in range(n):
        arch = space.arch_from_indices([rng.randrange(space.num_candidates) for _ in range(space.num_layers)])
        static = net.extract(arch).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            static(torch.rand(1, 3, space.resolution, space.resolution))
        cost = arch_cost(arch)
        params = sum(p.numel() for p in static.parameters())
        exact += counter.get_total_flops() == 2 * cost["macs"] and params == cost["params"]
    return exact, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for training steps")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per comparison")
    parser.add_argument("--steps", type=int, default=3, help="training steps per round")
    parser.add_argument("--runs", type=int, default=30, help="onnxruntime runs per round")
    parser.add_argument("--archs", type=int, default=50, help="architectures per preset for the cost check")
    parser.add_argument(
        "--ponas", action="store_true", help="also time ponas-imagenet (batch 8 training, 224x224 latency)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} torch thread(s), onnxruntime 1 intra-op thread, "
        f"{args.rounds} interleaved rounds, medians"
    )

    cases = [("cifar10", 64)] + ([("ponas-imagenet", 8)] if args.ponas else [])
    for name, batch in cases:
        t = train_throughput(get_space(name), batch, args.steps, args.rounds)
        print(
            f"train-step throughput supernet/static: {t['supernet'] / t['static']:.2f} "
            f"(supernet {t['supernet']:.1f} img/s, static {t['static']:.1f} img/s; {name}, batch {batch}, largest arch)"
        )

    for name in ["cifar10"] + (["ponas-imagenet"] if args.ponas else []):
        space = get_space(name)
        arch = space.arch_from_indices(
            [random.Random(7).randrange(space.num_candidates) for _ in range(space.num_layers)]
        )
        lat = ort_latency(space, arch, args.runs, args.rounds)
        print(
            f"onnxruntime latency supernet-export/static-export: {lat['supernet'] / lat['static']:.2f} "
            f"(supernet {lat['supernet']:.3f} ms, static {lat['static']:.3f} ms; {name}, batch 1)"
        )

    for name in PRESETS:
        exact, n = cost_agreement(get_space(name), args.archs)
        print(f"cost model vs FlopCounterMode + parameter count, {name}: {exact}/{n} exact")


if __name__ == "__main__":
    main()

"""What INT8 costs in accuracy and buys in latency on this machine, side by side with FP32.

    .venv/bin/python benchmarks/int8.py accuracy --data ../shared/data/cifar10-jpg.tar.gz [--networks 20]
    .venv/bin/python benchmarks/int8.py latency [--budgets 40M 50M 60M] [--threads 1 2] [--table T.json]
    .venv/bin/python benchmarks/int8.py blocks [--table T.json] [--threads 1]
    .venv/bin/python benchmarks/int8.py weights --data ../shared/data/cifar10-jpg.tar.gz [--arch A] [--images 2000]
    .venv/bin/python benchmarks/int8.py auto [--devices jetson raspberry-pi-4 this-cpu] [--max-flops 45M] [--table T]

`accuracy`: `specialize table int8-check` on --table (default: the embedded table, by its file): --networks
sub-networks spread over its space, each exported twice by `specialize export`'s function from the table's weights,
FP32 and `--precision int8` (QDQ, onnxruntime's form, calibrated on the same 500 training images that recalibrate
batch norm), both measured on the whole test split in onnxruntime. Prints each network's drop and the median and
worst; --record keeps it in the table, where predictions at int8 read it.

`weights`: full-range (8-bit) against 7-bit (`reduce_range`) weights in the onnxruntime form, for one network of
the table (default: its best), calibrated on the table's shipped images: accuracy on --images test images with
onnxruntime's fused integer kernels (as deployed) and with the QDQ graph computed in float (graph optimizations off,
what a CPU whose kernels do not overflow computes), beside FP32. On an x86 CPU without VNNI the fused 8-bit kernels
overflow int16 sums.

`blocks`: which blocks run slower at INT8 than at FP32, from the two shipped this-cpu profiles of the table's space
(the search, reading the INT8 profile, avoids them by itself). Prints the per-block INT8/FP32 ratios.

`auto`: per device, the latency of its FP32 pick at --max-flops as the bound, then `--precision auto` under it:
the precision chosen, what each predicts, and the gain over FP32.

`latency`: the network `specialize --device this-cpu --max-flops B` picks at each budget, exported FP32 and INT8,
timed as deployed (plain onnxruntime session, warm-up, median of --runs single runs) in alternating rounds at each
thread count, so drift hits both alike. Prints INT8/FP32 per budget and thread count, and beside it the INT8 file
in TensorRT's form (`export --format tensorrt --precision int8`: int8 activations) as onnxruntime runs it on this
CPU, which says nothing of TensorRT's speed on a GPU. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def accuracy(args: argparse.Namespace) -> None:
    from specialize.api import offline
    from specialize.table import load_table

    table = args.table or str(load_table("default").path)  # a path: --record may rewrite it (`default` refuses)
    result = offline.int8_check(table, args.data, args.networks, args.seed, args.record, print)
    drops = [100 * (r["fp32"] - r["int8"]) for r in result["networks"]]
    worst = result["networks"][drops.index(max(drops))]["arch"]
    print(
        f"INT8 accuracy drop over {len(drops)} networks ({result['measured_on']}): median "
        f"{statistics.median(drops):.2f} points, mean {statistics.mean(drops):.2f}, worst {max(drops):.2f} ({worst}), "
        f"best {min(drops):.2f}" + ("; recorded in the table" if args.record else "")
    )


def weights(args: argparse.Namespace) -> None:
    from hw_profiles.host import cpu_name
    from specialize.table import load_table
    from supernet.data import load_dataset, to_tensor
    from supernet.export import calibration_file_batches, export_subnet, shipped_calibration
    from supernet.quantize import quantize_int8
    from supernet.sessions import ort_session

    table = load_table(args.table)
    arch = args.arch or table.best_arch
    resolution = table.space.resolution
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_subnet(table.space, arch, Path(tmp) / "fp32.onnx", weights=args.table, data=None)
        graph = fp32.onnx_path.read_bytes()
    batches = calibration_file_batches(shipped_calibration(table), resolution)
    test = load_dataset(args.data, image_size=resolution)
    pick = np.random.default_rng(args.seed).choice(len(test.test_labels), args.images, replace=False)
    x, y = to_tensor(test.test_images[pick], resolution).numpy(), test.test_labels[pick]

    def accuracy_of(model: bytes, optimization: str = "all") -> float:
        session = ort_session(model, graph_optimization_level=optimization)
        out = [session.run(None, {"input": x[i : i + 200]})[0].argmax(1) for i in range(0, len(x), 200)]
        return 100 * float(np.mean(np.concatenate(out) == y))

    line = f"{arch} on {cpu_name()}, {len(y)} test images: fp32 {accuracy_of(graph):.2f}%"
    for bits, reduce_range in ((8, False), (7, True)):
        model = quantize_int8(graph, batches, reduce_range=reduce_range)
        line += f"; {bits}-bit weights: fused {accuracy_of(model):.2f}%, in float {accuracy_of(model, 'disabled'):.2f}%"
    print(line)


# what is timed: (precision, --format) of each exported file; the last is TensorRT's explicit-quantization form
# (int8 activations, symmetric), run here by onnxruntime's CPU kernels, not by TensorRT
FORMS = {"fp32": ("fp32", "onnx"), "int8": ("int8", "onnx"), "int8-tensorrt-form": ("int8", "tensorrt")}


def latency(args: argparse.Namespace) -> None:
    from hw_profiles.runtime import cpu_busy_share, deployment_protocol, get_runtime, time_runs
    from specialize import specialize
    from specialize.table import load_table
    from supernet.export import export_subnet

    busy = cpu_busy_share(1.0)
    if busy is not None and busy > 0.15:
        print(f"WARNING: other processes use {100 * busy:.0f}% of the CPU: latency figures are distorted")
    table = load_table(args.table)
    shape = (1, 3, table.space.resolution, table.space.resolution)
    with tempfile.TemporaryDirectory(prefix="int8-latency-") as tmp:
        for budget in args.budgets:
            arch = specialize("this-cpu", table=table, max_flops=budget).arch
            files = {}
            for form, (precision, fmt) in FORMS.items():
                path = Path(tmp) / f"{form}.onnx"
                export_subnet(table.space, arch, path, weights=str(table.path), fmt=fmt, precision=precision)
                files[form] = (precision, path)
            for threads in args.threads:
                medians = {form: [] for form in files}
                for _ in range(args.rounds):
                    for form, (precision, path) in files.items():
                        runtime = get_runtime("onnxruntime", precision, threads)
                        timing = time_runs(runtime.load(path, shape), runtime.clock, deployment_protocol(args.runs))
                        medians[form].append(timing.median_ms)
                fp32, int8, trt = (statistics.median(medians[form]) for form in FORMS)
                print(
                    f"max-flops {budget} ({arch}), {threads} thread(s): fp32 {fp32:.3f} ms, int8 {int8:.3f} ms, "
                    f"INT8/FP32 {int8 / fp32:.2f}; TensorRT's int8 form in onnxruntime {trt:.3f} ms, "
                    f"{trt / fp32:.2f} x FP32",
                    flush=True,
                )


def blocks(args: argparse.Namespace) -> None:
    """Which blocks run slower at INT8 than at FP32 on this CPU: the shipped this-cpu profiles of the table's space
    at both precisions (calibrated terms, as the search reads them), block by block."""
    from hw_profiles.registry import resolve_profile
    from specialize.table import load_table

    space = load_table(args.table).space
    fp32, int8 = (resolve_profile("this-cpu", space, threads=args.threads, precision=p) for p in ("fp32", "int8"))
    if fp32.hardware.get("host_cpu") != int8.hardware.get("host_cpu"):
        print(
            f"WARNING: the two profiles come from different CPUs: {fp32.hardware.get('host_cpu')} and "
            f"{int8.hardware.get('host_cpu')}"
        )
    (int8_ms, _), (fp32_ms, _) = int8.latency_terms(), fp32.latency_terms()
    ratio = np.divide(int8_ms, fp32_ms, out=np.ones_like(fp32_ms), where=fp32_ms > 0)  # skip: 0 ms at both
    allowed = np.array(space.allowed_mask(), dtype=bool).reshape(ratio.shape) & (fp32.latency_ms > 0)
    slower = [
        (layer, space.candidate_names[c], float(ratio[layer, c]))
        for layer, c in zip(*np.nonzero(allowed & (ratio > 1)))
    ]
    by_name = {
        name: float(np.median(ratio[:, i][allowed[:, i]]))
        for i, name in enumerate(space.candidate_names)
        if allowed[:, i].any()
    }
    print(
        f"{space.name}, {args.threads} thread(s): INT8/FP32 per block median {np.median(ratio[allowed]):.2f}, "
        f"range {ratio[allowed].min():.2f}-{ratio[allowed].max():.2f}; slower at INT8: {len(slower)} of "
        f"{int(allowed.sum())} blocks"
        + ("".join(f"\n    layer {layer + 1} {name}: x{r:.2f}" for layer, name, r in slower))
    )
    print("    median per candidate: " + ", ".join(f"{name} {r:.2f}" for name, r in by_name.items()))


def auto(args: argparse.Namespace) -> None:
    """For each device: the latency of the FP32 pick at --max-flops as the budget, then `--precision auto` under it:
    what each precision predicts and which wins (the gain: its predicted accuracy over FP32's)."""
    from specialize import specialize

    for device in args.devices:
        budget = specialize(device, table=args.table, precision="fp32", max_flops=args.max_flops).latency_ms
        result = specialize(device, table=args.table, precision="auto", max_latency=f"{budget:.6g}ms")
        fp32 = next(c for c in result.precision_choice if c["precision"] == "fp32")
        tried = ", ".join(
            f"{c['precision']} {100 * c['predicted_accuracy']:.2f}% at {c['latency_ms']:.3f} ms "
            f"({c['macs'] / 1e6:.1f}M)"
            for c in result.precision_choice
            if "infeasible" not in c
        )
        gain = 100 * (result.predicted_accuracy - fp32["predicted_accuracy"])
        print(
            f"{device}: budget {budget:.3f} ms (FP32 pick at {args.max_flops} MACs): chose {result.precision}, "
            f"{gain:+.2f} points over fp32; tried {tried}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    acc = sub.add_parser("accuracy")
    acc.add_argument("--data", required=True)
    acc.add_argument("--networks", type=int, default=20)
    acc.add_argument("--seed", type=int, default=0)
    acc.add_argument("--record", action="store_true", help="keep the result in the table (`table int8-check`)")
    acc.add_argument("--table", help="accuracy table (default: the embedded one, by its file)")
    lat = sub.add_parser("latency")
    lat.add_argument("--budgets", nargs="+", default=["40M", "50M", "60M"])
    lat.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    lat.add_argument("--rounds", type=int, default=5)
    lat.add_argument("--runs", type=int, default=50)
    lat.add_argument("--table", default="default", help="accuracy table (its weights beside it); default: embedded")
    per_block = sub.add_parser("blocks")
    per_block.add_argument("--table", default="default")
    per_block.add_argument("--threads", type=int, default=1)
    bits = sub.add_parser("weights")
    bits.add_argument("--data", required=True)
    bits.add_argument("--table", default="default")
    bits.add_argument("--arch", help="default: the table's best architecture")
    bits.add_argument("--images", type=int, default=2000)
    bits.add_argument("--seed", type=int, default=0)
    choose = sub.add_parser("auto")
    choose.add_argument("--devices", nargs="+", default=["jetson", "raspberry-pi-4", "this-cpu"])
    choose.add_argument("--max-flops", default="45M", help="the FP32 pick at this budget sets the latency bound")
    choose.add_argument("--table", default="default", help="accuracy table; default: the embedded one")
    args = parser.parse_args()
    parts = {"accuracy": accuracy, "latency": latency, "blocks": blocks, "weights": weights, "auto": auto}
    parts[args.part](args)


if __name__ == "__main__":
    main()

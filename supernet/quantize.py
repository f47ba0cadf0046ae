"""INT8 as devices run it: static QDQ quantization of an exported FP32 graph with onnxruntime.quantization.

One graph form per target runtime, both QuantizeLinear / DequantizeLinear pairs (QDQ) with int8 weights per output
channel and activation ranges from min/max over the images that recalibrated batch norm:

- `onnxruntime` (CPU): uint8 activations with a zero point, int32 biases, weights in 7 of their 8 bits
  (`reduce_range`). onnxruntime fuses each QDQ group into an integer kernel; on x86 CPUs without VNNI that kernel
  adds pairs of uint8 x int8 products in int16, which full-range weights overflow (onnxruntime's quantization docs:
  "use 7-bit quantization for better accuracy on non-VNNI CPUs"). On an AMD EPYC without VNNI (2026-12-07) full-range
  weights took a test network's INT8 logits to a correlation of 0.83 with FP32's, 7-bit ones above 0.9; the file is
  made once and may run on either kind of CPU, so it always takes the 7 bits. On the Intel Xeon of 2026-12-06 this
  form ran faster than FP32, and the symmetric form below, run by onnxruntime, slower (`benchmarks/int8.py latency`
  prints both beside FP32; docs/int8.md has the figures).
- `tensorrt`: int8 activations, symmetric (zero point 0), float biases: TensorRT's explicit-quantization path takes
  scales from the graph (`--int8`, no calibration cache), requires zero points of 0, and refuses a DequantizeLinear of
  int32 biases ("only activation types allowed as input", onnx/onnx-tensorrt#850, NVIDIA/TensorRT#3360).

What this machine checks: onnxruntime runs both forms and their accuracy is measured. What it cannot: a TensorRT
build (no GPU or TensorRT here); the TensorRT form follows the constraints above and is untested by a build.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import torch

if TYPE_CHECKING:
    from specialize.table import AccuracyTable

FORMS = {
    "onnxruntime": {
        "format": "QDQ",
        "activations": "uint8, asymmetric, per tensor, min/max over the calibration images",
        "weights": "int8 in 7 bits (reduce_range), symmetric, per output channel",
        "biases": "int32",
    },
    "tensorrt": {
        "format": "QDQ",
        "activations": "int8, symmetric (zero point 0), per tensor, min/max over the calibration images",
        "weights": "int8, symmetric, per output channel",
        "biases": "float (TensorRT refuses quantized biases)",
    },
}


class _Batches:
    """onnxruntime's CalibrationDataReader over the calibration batches, one image batch per call."""

    def __init__(self, batches: Sequence[torch.Tensor]):
        self._feed: Iterator[dict[str, np.ndarray]] = iter([{"input": b.numpy().astype(np.float32)} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feed, None)

    def rewind(self) -> None:  # pragma: no cover - onnxruntime calls it only for some calibrators
        pass


def quantize_int8(
    onnx_bytes: bytes, batches: Sequence[torch.Tensor], target: str = "onnxruntime", reduce_range: bool | None = None
) -> bytes:
    """The FP32 graph `onnx_bytes` as an INT8 QDQ graph for `target` (a key of FORMS), calibrated on `batches`
    (float [0, 1] NCHW images). `reduce_range`: 7-bit weights; None takes the target's (7 bits for onnxruntime;
    `benchmarks/int8.py weights` sets it to measure both)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not batches:
        raise ValueError("INT8 quantization needs calibration images")
    tensorrt = target == "tensorrt"
    with tempfile.TemporaryDirectory(prefix="specialize-int8-") as tmp:
        source, target_path = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(onnx_bytes)
        quant_pre_process(str(source), str(source), skip_symbolic_shape=True)  # shapes and fusions, as advised
        quantize_static(
            str(source),
            str(target_path),
            _Batches(batches),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=not tensorrt if reduce_range is None else reduce_range,  # TensorRT accumulates in int32
            activation_type=QuantType.QInt8 if tensorrt else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": tensorrt, "WeightSymmetric": True, "QuantizeBias": not tensorrt},
        )
        model = onnx.load(str(target_path))
    fp32_meta = {p.key: p.value for p in onnx.load_from_string(onnx_bytes).metadata_props}
    del model.metadata_props[:]
    for key, value in fp32_meta.items():  # quantize_static drops the graph's metadata: carry it over
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def boundary_graph(shape: tuple[int, ...], target: str = "onnxruntime") -> bytes:
    """A QuantizeLinear -> DequantizeLinear pair on a float tensor of `shape`, in `target`'s activation type: what
    a block timed alone pays at its input and output and the same block inside a network does not (there
    consecutive blocks hand each other int8 tensors). Profiles at int8 time it to take it off the blocks."""
    import onnx
    from onnx import TensorProto, helper

    tensorrt = target == "tensorrt"
    zero_type = TensorProto.INT8 if tensorrt else TensorProto.UINT8
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "scale", "zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq-boundary",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(shape))],
        [
            helper.make_tensor("scale", TensorProto.FLOAT, [], [1 / 255]),
            helper.make_tensor("zero", zero_type, [], [0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def quantized_ops(onnx_bytes: bytes) -> dict[str, int]:
    """How many QuantizeLinear / DequantizeLinear nodes the graph holds (0 and 0 for a float graph)."""
    import onnx

    nodes = onnx.load_from_string(onnx_bytes).graph.node
    return {op: sum(n.op_type == op for n in nodes) for op in ("QuantizeLinear", "DequantizeLinear")}


def int8_drop(
    table: "AccuracyTable",
    data: str | os.PathLike,
    networks: int,  # default: `table int8-check --networks`, declared there only
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """What INT8 costs in accuracy: `networks` sub-networks spread over the table's space, each exported as FP32
    and as INT8 (onnxruntime's form) from the table's weights, both measured on the test split of `data`. Returns
    the per-network figures and the drop's median and band (the record `table int8-check` keeps in the table)."""
    from specialize.sampling import spread_architectures
    from supernet.export import export_subnet

    rows = []
    with tempfile.TemporaryDirectory(prefix="specialize-int8-check-") as tmp:
        for arch in spread_architectures(table.space, networks, seed):
            done = export_subnet(
                table.space.name, str(arch), Path(tmp) / "m.onnx", weights=str(table.path), data=data,
                precision="int8",
            )  # fmt: skip
            rows.append(
                {"arch": str(arch), "macs": done.macs, "fp32": done.fp32_accuracy, "int8": done.measured_accuracy}
            )
            if progress:
                drop = 100 * (done.fp32_accuracy - done.measured_accuracy)
                progress(f"{len(rows)}/{networks} {arch}: fp32 {100 * done.fp32_accuracy:.2f}%, drop {drop:+.2f}")
    drops = np.array([r["fp32"] - r["int8"] for r in rows])
    return {
        "form": "onnxruntime",
        "networks": rows,
        "median_drop": float(np.median(drops)),
        "worst_drop": float(drops.max()),
        "band": float(2 * drops.std(ddof=1)) if len(drops) > 1 else None,
        "measured_on": done.measured_on,
    }

"""What TensorRT's ONNX parser accepts, checked on every exported graph without TensorRT installed.

Source of the lists below: onnx/onnx-tensorrt, docs/operators.md at commit
6d0ab7be324d02c7feb3a306b6fdbeae84f71ddc ("TensorRT 8.5 supports operators up to Opset 17"): the
operators its support matrix marks "Y", and its restrictions that inputs such as Slice/Squeeze/
Unsqueeze `axes` be initializers (constant tensors). The same file at TensorRT 8.4 (commit
009d6541b4ee1fa3f3150cd7cbabe7e56aa54840) requires Conv and ConvTranspose "Weights `W` must be an
initializer"; it is kept here, and extended to biases and Gemm weights, so that an engine builds with
the older parsers Jetson releases ship. The supported data types are from the same file (DOUBLE,
FLOAT32, FLOAT16, INT8, BOOL, and INT32/INT64, which the parser casts down where it can).

Verified: opset (default domain only, 9 to 17), every node's op type, weights and axes as
initializers, 2D/3D convolutions, tensor data types. Not verified: that an engine builds (layer
fusions, tactic availability, workspace), its latency, and fp16 numerics; those need TensorRT on a GPU
(`specialize export --format tensorrt` there, or the written build_<model>_engine.sh).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from specialize.errors import SpecializeError

if TYPE_CHECKING:
    import onnx

SOURCE = "onnx/onnx-tensorrt docs/operators.md (TensorRT 8.5, opset <= 17)"
OPSET_RANGE = (9, 17)
TENSORRT_ONNX_OPS = frozenset(
    """
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip
Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool
GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSwish HardSigmoid Identity If ImageScaler
InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool
MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range
Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements
ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt
Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split()
)
# Inputs (by position) that must be initializers or Constant outputs: weights and biases, axes, K.
CONSTANT_INPUTS = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "Gemm": (1, 2),
    "Slice": (3,),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "TopK": (1,),
    "CumSum": (1,),
}
CONV_WEIGHT_RANKS = (4, 5)  # "2D or 3D convolutions only"
TENSOR_TYPES = ("FLOAT", "FLOAT16", "DOUBLE", "INT8", "INT32", "INT64", "BOOL")


def opset_problems(model: "onnx.ModelProto") -> list[str]:
    problems = []
    for entry in model.opset_import:
        if entry.domain not in ("", "ai.onnx"):
            problems.append(f"operator domain {entry.domain!r} (custom ops need a TensorRT plugin)")
        elif not OPSET_RANGE[0] <= entry.version <= OPSET_RANGE[1]:
            problems.append(f"opset {entry.version} outside {OPSET_RANGE[0]}-{OPSET_RANGE[1]}")
    return problems


def node_problems(model: "onnx.ModelProto") -> list[str]:
    """Unsupported op types, non-constant weights or axes, and convolutions that are not 2D or 3D."""
    graph = model.graph
    constants = {t.name for t in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output
    }
    ranks = {t.name: len(t.dims) for t in graph.initializer}
    problems = []
    for node in graph.node:
        if node.op_type not in TENSORRT_ONNX_OPS:
            problems.append(f"op {node.op_type} (node {node.name!r})")
            continue
        for i in CONSTANT_INPUTS.get(node.op_type, ()):
            if i < len(node.input) and node.input[i] and node.input[i] not in constants:
                problems.append(
                    f"{node.op_type} node {node.name!r}: input {i} ({node.input[i]!r}) is computed, not an initializer"
                )
        weight = node.input[1] if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1 else None
        if weight in ranks and ranks[weight] not in CONV_WEIGHT_RANKS:
            problems.append(f"{node.op_type} node {node.name!r}: {ranks[weight] - 2}D convolution (2D or 3D only)")
    return problems


def type_problems(model: "onnx.ModelProto") -> list[str]:
    from onnx import TensorProto

    graph = model.graph
    typed = [(t.name, t.data_type) for t in graph.initializer]
    typed += [(v.name, v.type.tensor_type.elem_type) for v in [*graph.input, *graph.output]]
    return [
        f"tensor {name!r} has type {TensorProto.DataType.Name(kind)}"
        for name, kind in typed
        if TensorProto.DataType.Name(kind) not in TENSOR_TYPES
    ]


def tensorrt_parser_problems(model: "onnx.ModelProto") -> list[str]:
    """Everything in `model` that TensorRT's ONNX parser (as documented in SOURCE) would refuse."""
    return opset_problems(model) + node_problems(model) + type_problems(model)


def check_tensorrt_parser_support(model: "onnx.ModelProto", what: str = "exported graph") -> None:
    """Raise a SpecializeError naming the first problems when TensorRT's ONNX parser would refuse `model`."""
    problems = tensorrt_parser_problems(model)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise SpecializeError(f"{what} would not parse in TensorRT ({SOURCE}): {shown}")

"""ONNX graph primitives shared by export and profiling: the one torch-to-ONNX conversion (`module_to_onnx_bytes`),
the clean-up every graph gets (`tidy_graph`: constants as initializers, no Identity nodes), the op check
(`clean_graph`) and metadata. onnx is imported inside the functions that need it.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn

from specialize.errors import SpecializeError

if TYPE_CHECKING:
    import onnx

OPSET = 17
# What the exported graph may contain: a few ops, all in TensorRT's ONNX parser support (supernet.tensorrt_support,
# which every exported graph is also checked against: opset, op types, weights as initializers, tensor types).
ALLOWED_OPS = frozenset(
    {
        "Conv",
        "Relu",
        "Clip",
        "Sigmoid",
        "Mul",
        "Add",
        "Sub",
        "Div",
        "GlobalAveragePool",
        "ReduceMean",
        "Flatten",
        "Reshape",
        "Gemm",
    }
)


def module_to_onnx_bytes(module: nn.Module, example: torch.Tensor, dynamic_batch: bool = True) -> bytes:
    """Serialized ONNX (opset 17, TorchScript-based exporter) of `module` in eval mode.

    Input is named `input`, output `output`; the batch dimension is dynamic unless told otherwise.
    """
    module = module.eval()
    buffer = io.BytesIO()
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    return buffer.getvalue()


# -- graph clean-up ------------------------------------------------------------------------------
def fold_constants(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """Move every Constant node's value into an initializer of the same name (in place)."""
    graph, kept = model.graph, []
    for node in graph.node:
        if node.op_type == "Constant":
            graph.initializer.append(_constant_tensor(node))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return model


def _constant_tensor(node) -> "onnx.TensorProto":
    import numpy as np
    from onnx import helper, numpy_helper

    attr = node.attribute[0]
    value = helper.get_attribute_value(attr)
    if attr.name == "value":
        tensor = value
    elif attr.name.startswith(("value_float", "value_int")):  # float32 and int64, as the Constant op defines them
        tensor = numpy_helper.from_array(np.asarray(value, dtype=np.float32 if "float" in attr.name else np.int64))
    else:
        raise SpecializeError(f"cannot fold Constant node {node.name!r} with attribute {attr.name!r}")
    tensor.name = node.output[0]
    return tensor


def remove_identities(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """Drop Identity nodes, pointing their consumers (or the graph output) at the Identity's input (in place)."""
    graph = model.graph
    outputs, inputs = {o.name for o in graph.output}, {i.name for i in graph.input}
    rename: dict[str, str] = {}
    kept = []
    for node in graph.node:
        if node.op_type == "Identity" and node.output[0] not in outputs:
            rename[node.output[0]] = node.input[0]
        elif node.op_type == "Identity" and node.input[0] in inputs:  # input straight to output: nothing to drop
            kept.append(node)
        elif node.op_type == "Identity":
            _retarget_producer(graph, node.input[0], node.output[0])
        else:
            kept.append(node)
    for node in kept:
        for i, name in enumerate(node.input):
            while name in rename:
                name = rename[name]
            node.input[i] = name
    del graph.node[:]
    graph.node.extend(kept)
    return model


def _retarget_producer(graph, old: str, new: str) -> None:
    """Make the node producing `old` produce the graph output `new` instead."""
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
                for consumer in graph.node:
                    for j, inp in enumerate(consumer.input):
                        if inp == old:
                            consumer.input[j] = new
                return
    raise SpecializeError(f"cannot remove Identity feeding graph output {new!r}: its input {old!r} has no producer")


def onnx_ops(model: "onnx.ModelProto") -> set[str]:
    return {node.op_type for node in model.graph.node}


def tidy_graph(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """Fold Constants into initializers and remove Identities (in place): weights then feed their ops
    directly as initializers, as TensorRT's parser wants them (supernet.tensorrt_support)."""
    return remove_identities(fold_constants(model))


def clean_graph(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """`tidy_graph`, then insist the op set is allowed."""
    tidy_graph(model)
    extra = onnx_ops(model) - ALLOWED_OPS
    if extra:
        raise SpecializeError(
            f"exported graph has ops outside the TensorRT-safe set: {', '.join(sorted(extra))}; "
            f"allowed: {', '.join(sorted(ALLOWED_OPS))}"
        )
    return model


def to_float16(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """The same graph in half precision, input and output included: every float32 initializer, graph input,
    output and value_info becomes float16, and a Cast to float32 casts to float16. It expects a tidied graph
    (`tidy_graph`: constants as initializers); a float32 constant still inside a node is refused, not missed."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name)
            graph.initializer[i].CopyFrom(half)
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
            if attr.type == attr.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                raise SpecializeError(f"float16 conversion: node {node.name!r} holds a float32 constant")
    return model


def set_metadata(model: "onnx.ModelProto", metadata: dict[str, str]) -> None:
    from onnx import helper

    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **metadata})


def read_metadata(model: "onnx.ModelProto") -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


# -- verification -------------------------------------------------------------------------------


def deploy_graph(
    module: nn.Module, example: torch.Tensor, *, check_ops: bool = True, dynamic_batch: bool = True
) -> "onnx.ModelProto":
    """The one graph builder for what ships and what is timed (export, the profiler, bundles, validation):
    TorchScript export with a dynamic batch, constants as initializers, no Identity nodes, the op set checked
    against the TensorRT-safe set (`check_ops=False` only for the empty dispatch probe), TensorRT's parser
    support checked. Returns the ONNX model (metadata and verification are export's). Bundles ask for a fixed
    batch (`dynamic_batch=False`): `trtexec` on the device times the shape the file declares."""
    import onnx

    from supernet.tensorrt_support import check_tensorrt_parser_support

    model = onnx.load_from_string(module_to_onnx_bytes(module, example, dynamic_batch=dynamic_batch))
    model = clean_graph(model) if check_ops else tidy_graph(model)
    check_tensorrt_parser_support(model)
    return model

"""Exported graphs are checked against TensorRT's ONNX parser support (no TensorRT needed): exported sub-networks
and bundle graphs pass, and each kind of problem the check looks for is caught."""

from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hw_profiles.bundle import write_bundle
from specialize.errors import SpecializeError
from specialize.sampling import spread_architectures
from specialize.space import LayerSpec, get_space
from supernet.export import subnet_to_onnx
from supernet.onnx_graph import ALLOWED_OPS, OPSET
from supernet.static import build_static
from supernet.tensorrt_support import (
    OPSET_RANGE,
    TENSORRT_ONNX_OPS,
    check_tensorrt_parser_support,
    tensorrt_parser_problems,
)


def tiny_space():
    return replace(
        get_space("cifar10"),
        name="tiny-trt",
        resolution=16,
        stem_channels=8,
        first_block_channels=8,
        layers=(LayerSpec(8, 8, 1), LayerSpec(8, 16, 2)),
        head_channels=32,
    )


def test_the_export_allow_list_lies_inside_tensorrts_support_and_the_opset_in_its_range():
    assert ALLOWED_OPS <= TENSORRT_ONNX_OPS and OPSET_RANGE[0] <= OPSET <= OPSET_RANGE[1]


@pytest.mark.parametrize("index", range(3))
def test_exported_subnetworks_pass_the_parser_check(index):
    space = tiny_space()
    arch = spread_architectures(space, 3, seed=1)[index]
    data, _, _ = subnet_to_onnx(build_static(space, arch).eval(), space.resolution, {})
    model = onnx.load_from_string(data)
    assert tensorrt_parser_problems(model) == []
    assert {n.input[1] for n in model.graph.node if n.op_type == "Conv"} <= {t.name for t in model.graph.initializer}


def test_bundle_graphs_pass_the_parser_check(tmp_path):
    manifest = write_bundle(tiny_space(), tmp_path / "b", networks=2)
    for entry in manifest["entries"]:
        assert tensorrt_parser_problems(onnx.load(str(tmp_path / "b" / entry["file"]))) == [], entry["key"]


def conv_graph(
    weight_from_node: bool = False,
    op: str = "Conv",
    opset: int = OPSET,
    domain: str = "",
    weight_rank: int = 4,
    input_type: int = TensorProto.FLOAT,
) -> onnx.ModelProto:
    """input -> op(input, W) -> output, with W an initializer or computed by a Neg node."""
    shape = [8, 3] + [1] * (weight_rank - 2)
    weight = numpy_helper.from_array(np.ones(shape, np.float32), "W0" if weight_from_node else "W")
    nodes = [helper.make_node("Neg", ["W0"], ["W"], name="neg")] if weight_from_node else []
    nodes.append(helper.make_node(op, ["input", "W"], ["output"], name="conv", domain=domain))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", input_type, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        [weight],
    )
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


@pytest.mark.parametrize(
    "graph,needle",
    [
        (dict(weight_from_node=True), "input 1 ('W') is computed"),
        (dict(op="LayerNormalization"), "op LayerNormalization"),
        (dict(opset=18), "opset 18"),
        (dict(op="MyConv", domain="com.example"), "domain 'com.example'"),
        (dict(weight_rank=3), "1D convolution"),
        (dict(input_type=TensorProto.COMPLEX64), "has type COMPLEX64"),
    ],
)
def test_each_problem_is_named(graph, needle):
    with pytest.raises(SpecializeError, match="would not parse in TensorRT") as info:
        check_tensorrt_parser_support(conv_graph(**graph))
    assert needle in str(info.value)


def test_a_plain_conv_graph_passes():
    assert tensorrt_parser_problems(conv_graph()) == []


def test_the_export_path_runs_the_check(monkeypatch):
    """subnet_to_onnx (the one export path) checks the cleaned graph it writes, through the one graph builder."""
    from supernet import export, tensorrt_support

    seen = []
    monkeypatch.setattr(tensorrt_support, "check_tensorrt_parser_support", seen.append)
    space = tiny_space()
    export.subnet_to_onnx(build_static(space, space.smallest_arch()).eval(), space.resolution, {})
    assert len(seen) == 1 and "Conv" in {n.op_type for n in seen[0].graph.node}

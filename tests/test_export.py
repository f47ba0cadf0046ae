"""Sub-network export: valid, TensorRT-safe ONNX that matches torch, with metadata and loud warnings."""

from __future__ import annotations

import dataclasses
import json
import os
import stat

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import supernet.export as export
from specialize.errors import SpecializeError
from specialize.space import get_space
from supernet.checkpoint import load_supernet, save_supernet_weights
from supernet.elastic import Supernet
from supernet.export import UNTRAINED_WARNING, export_subnet
from supernet.onnx_graph import ALLOWED_OPS, clean_graph, module_to_onnx_bytes, read_metadata

SPACE = get_space("cifar10")
ARCH = "k3e3,k5e6se,k3e3,k7e3,k3e6se,k5e3,k3e3,k7e6,k3e3se,k5e3,k3e6,k7e3se"


@torch.no_grad()
def trained_like(space) -> Supernet:
    """A supernet with realistic BN statistics (one momentum-1 batch), standing in for trained weights."""
    torch.manual_seed(0)
    net = Supernet(space)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0
    net.train()(torch.rand(16, 3, space.resolution, space.resolution), space.largest_arch())
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    return net.eval()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "supernet.pt"
    save_supernet_weights(path, trained_like(SPACE))
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory, weights_file):
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    return export_subnet("cifar10", ARCH, out, weights=weights_file, recalibrate_bn=False)


def test_checker_opset_and_ops(exported):
    model = onnx.load(exported.onnx_path)
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    ops = {n.op_type for n in model.graph.node}
    assert ops <= ALLOWED_OPS and not ops & {"Constant", "Identity"}
    assert set(exported.ops) == ops


def test_raw_export_needs_cleaning():
    """The legacy exporter emits Constant and Identity nodes: the cleaning step is not a no-op."""
    net = trained_like(SPACE).extract(SPACE.parse_arch(ARCH))
    raw = onnx.load_from_string(module_to_onnx_bytes(net, torch.rand(1, 3, 32, 32)))
    assert {"Constant", "Identity"} & {n.op_type for n in raw.graph.node}


@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_matches_torch_dynamic_batch(exported, weights_file, batch):
    module = load_supernet(weights_file).extract(SPACE.parse_arch(ARCH)).eval()
    session = export.ort_session(exported.onnx_path.read_bytes())
    x = torch.rand(batch, 3, 32, 32)
    with torch.no_grad():
        expected = module(x).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    assert got.shape == (batch, 10)
    assert np.abs(got - expected).max() <= 1e-4
    assert batch == 1 or expected.std(0).max() > 1e-3
    assert exported.max_abs_diff <= 1e-4


def test_metadata(exported):
    meta = read_metadata(onnx.load(exported.onnx_path))
    assert meta["specialize.architecture"] == ARCH
    assert meta["specialize.space"] == "cifar10"
    assert meta["specialize.space_fingerprint"] == SPACE.fingerprint
    assert "[0, 1]" in meta["specialize.input"] and "NCHW" in meta["specialize.input"]
    assert meta["specialize.resolution"] == "32" and meta["specialize.precision"] == "fp32"  # README names both
    assert json.loads(meta["specialize.class_names"])[0] == "airplane"
    assert meta["specialize.weights_trained"] == "true"
    prov = json.loads(meta["specialize.provenance"])
    assert {"command", "settings", "versions", "date"} <= set(prov) and prov["settings"]["arch"] == ARCH


def test_trained_export_has_no_warnings_and_atomic_write(exported):
    assert exported.trained and exported.warnings == []
    assert sorted(p.name for p in exported.onnx_path.parent.iterdir()) == ["model.onnx"]  # no temp file left


def test_untrained_warns_and_says_so_in_metadata(tmp_path):
    result = export_subnet("cifar10", ARCH, tmp_path / "m.onnx")
    assert not result.trained and UNTRAINED_WARNING in result.warnings
    assert "UNTRAINED" in result.warnings[0]
    model = onnx.load(result.onnx_path)
    meta = read_metadata(model)
    assert meta["specialize.weights_trained"] == "false"
    assert result.max_abs_diff <= 1e-4
    # what a user reads to feed and read the file: the input size and convention, the output's name
    assert meta["specialize.resolution"] == "32" and result.arch == meta["specialize.architecture"] == ARCH
    assert (
        meta["specialize.input"] == export.INPUT_CONVENTION.format(r=32, dtype="float32")
        and "[batch, 3, 32, 32]" in meta["specialize.input"]
    )
    assert meta["specialize.output_name"] == model.graph.output[0].name == "output"


def test_noise_batches_are_the_seeds_own():
    """Random-init exports recalibrate on these: the same seed gives the same file; two batches of 8 by default."""
    assert [tuple(b.shape) for b in export.noise_batches(8)] == [(8, 3, 8, 8)] * 2
    assert all(torch.equal(a, b) for a, b in zip(export.noise_batches(8, seed=3), export.noise_batches(8, seed=3)))
    assert not torch.equal(export.noise_batches(8, seed=3)[0], export.noise_batches(8, seed=4)[0])


def test_proxy_width_export_warns_with_macs(tmp_path):
    proxy = SPACE.scaled(0.5)
    path = tmp_path / "proxy.pt"
    save_supernet_weights(path, trained_like(proxy))
    result = export_subnet("cifar10", ARCH, tmp_path / "m.onnx", weights=path, recalibrate_bn=False)
    assert result.width_multiplier == 0.5 and result.macs < result.full_macs
    [warning] = result.warnings
    assert "0.5" in warning and f"{result.macs / 1e6:.1f}M" in warning and f"{result.full_macs / 1e6:.1f}M" in warning
    meta = read_metadata(onnx.load(result.onnx_path))
    assert meta["specialize.width_multiplier"] == "0.5" and meta["specialize.space_fingerprint"] == proxy.fingerprint
    assert meta["specialize.requested_space"] == "cifar10"


def test_foreign_weights_are_refused(tmp_path):
    other = dataclasses.replace(SPACE, name="cifar100", num_classes=100, class_names=tuple(f"c{i}" for i in range(100)))
    path = tmp_path / "other.pt"
    save_supernet_weights(path, Supernet(other))
    with pytest.raises(SpecializeError) as err:
        export_subnet("cifar10", ARCH, tmp_path / "m.onnx", weights=path)
    message = str(err.value)
    assert "cifar100" in message and "cifar10" in message
    assert other.fingerprint in message and SPACE.fingerprint in message
    assert not (tmp_path / "m.onnx").exists()


def test_recalibration_on_given_batches(tmp_path, weights_file):
    """The batch-norm statistics in the written file are those of the calibration images: the graph read back
    computes what the extracted network recalibrated independently on the same images computes, and not what
    the supernet's own statistics give."""
    from supernet.bn import recalibrate_bn
    from supernet.checkpoint import load_supernet
    from supernet.sessions import ort_session

    batches = [torch.rand(20, 3, 32, 32, generator=torch.Generator().manual_seed(i)) * 0.5 for i in range(2)]
    result = export_subnet("cifar10", ARCH, tmp_path / "m.onnx", weights=weights_file, calibration=batches)
    assert result.recalibrated_images == 40 and "recalibrated" in result.bn_statistics
    assert result.max_abs_diff <= 1e-4
    net = load_supernet(weights_file)
    inherited = net.extract(net.space.parse_arch(ARCH)).eval()
    recalibrated = net.extract(net.space.parse_arch(ARCH))
    recalibrate_bn(recalibrated, batches)
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    written = ort_session((tmp_path / "m.onnx").read_bytes()).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(written - recalibrated.eval()(x).numpy()).max() <= 1e-4
        assert np.abs(written - inherited(x).numpy()).max() > 1e-2


def test_where_tensorrt_runs_the_engine_is_written_beside_the_onnx(tmp_path, monkeypatch):
    """The engine path (no GPU here, so the builder is a stand-in): the builder's bytes land in model.engine and
    the result names that file as what ships."""
    built = []
    monkeypatch.setattr(export, "tensorrt_unavailable_reason", lambda: None)
    monkeypatch.setattr(export, "build_tensorrt_engine", lambda onnx_bytes, r, p: built.append((r, p)) or b"plan")
    result = export_subnet("cifar10", ARCH, tmp_path / "model.engine", fmt="tensorrt", precision="fp16")
    assert built == [(32, "fp16")] and (tmp_path / "model.engine").read_bytes() == b"plan"
    assert result.output == result.engine_path == tmp_path / "model.engine" and result.build_script is None


def test_default_weights_that_cannot_load_name_the_option(monkeypatch):
    import specialize.table

    def broken(path):
        raise SpecializeError("gone")

    monkeypatch.setattr(specialize.table, "load_table", broken)
    with pytest.raises(SpecializeError, match=r"^--weights default: no weights available \(gone\)"):
        export.resolve_weights_path("default")
    with pytest.raises(SpecializeError, match=r"^accuracy table t.json: no weights available"):
        export.resolve_weights_path("t.json")


def test_tensorrt_fallback_writes_build_script(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "tensorrt_unavailable_reason", lambda: "no CUDA GPU is available")
    result = export_subnet("cifar10", ARCH, tmp_path / "model.onnx", fmt="tensorrt", precision="fp16")
    script = tmp_path / "build_model_engine.sh"
    assert result.build_script == script and result.engine_path is None
    assert script.stat().st_mode & stat.S_IXUSR
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n") and "\nset -e\n" in text
    assert "trtexec --onnx=model.onnx --saveEngine=model.engine" in text and "--fp16" in text
    assert "--minShapes=input:1x3x32x32" in text and "--maxShapes=input:32x3x32x32" in text
    assert any("no CUDA GPU" in w and "specific" in w for w in result.warnings)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build_model_engine.sh", "model.onnx"]


def test_engine_output_name_puts_onnx_beside_it():
    assert export.output_paths("a/m.engine", "tensorrt") == (export.Path("a/m.onnx"), export.Path("a/m.engine"))
    assert export.output_paths("m.onnx", "onnx") == (export.Path("m.onnx"), None)


@pytest.mark.parametrize(
    "fmt, precision, needle",
    [("pdf", "fp32", "onnx, tensorrt"), ("onnx", "int4", "fp32, fp16, int8")],
)
def test_bad_options(tmp_path, fmt, precision, needle):
    with pytest.raises(SpecializeError, match=needle):
        export_subnet("cifar10", ARCH, tmp_path / "m.onnx", fmt=fmt, precision=precision)


def test_unwritable_output_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(
        export, "load_weights", lambda *a, **k: pytest.fail("loaded weights before checking the output")
    )
    with pytest.raises(SpecializeError, match="does not exist"):
        export_subnet("cifar10", ARCH, tmp_path / "missing" / "m.onnx")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(SpecializeError, match="not writable"):
            export_subnet("cifar10", ARCH, locked / "m.onnx")


def test_verification_failure_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "MAX_ABS_DIFF", -1.0)
    with pytest.raises(SpecializeError, match="disagrees"):
        export_subnet("cifar10", ARCH, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_default_weights_missing_is_clear(tmp_path, monkeypatch):
    import specialize.table as table

    monkeypatch.setattr(table, "DEFAULT_TABLE", tmp_path / "nope.table.json")
    with pytest.raises(SpecializeError, match="default"):
        export_subnet("cifar10", ARCH, tmp_path / "m.onnx", weights="default")


def test_weights_from_an_accuracy_table(tmp_path, weights_file, monkeypatch):
    from specialize.fileio import sha256_file

    import specialize.table as table

    class FakeTable:
        weights = {"sha256": sha256_file(weights_file)}

        def weights_path(self):
            return weights_file

    monkeypatch.setattr(table, "load_table", lambda path: FakeTable())
    assert export.resolve_weights_path(tmp_path / "t.json") == weights_file
    assert export.resolve_weights_path("default") == weights_file
    assert export.resolve_weights_path(weights_file) == weights_file


def test_clean_graph_folds_constants_and_drops_identities():
    w = numpy_helper.from_array(np.full((2, 2), 2.0, dtype=np.float32), "w")
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(6.0, dtype=np.float32))),
        helper.make_node("Constant", [], ["lo"], value_float=0.0),
        helper.make_node("Identity", ["w"], ["w2"]),
        helper.make_node("Gemm", ["x", "w2"], ["h"]),
        helper.make_node("Clip", ["h", "lo", "c"], ["y0"]),
        helper.make_node("Identity", ["y0"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.array([[1.0, 5.0]], dtype=np.float32)
    before = export.ort_session(model.SerializeToString()).run(None, {"x": x})[0]
    clean_graph(model)
    onnx.checker.check_model(model)
    assert {n.op_type for n in model.graph.node} == {"Gemm", "Clip"}
    after = export.ort_session(model.SerializeToString()).run(None, {"x": x})[0]
    assert np.array_equal(before, after) and after.tolist() == [[6.0, 6.0]]


def test_clean_graph_refuses_unsupported_ops():
    nodes = [helper.make_node("Softmax", ["x"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    with pytest.raises(SpecializeError, match="Softmax"):
        clean_graph(helper.make_model(graph))


@pytest.mark.slow
def test_ponas_export(tmp_path):
    space = get_space("ponas-imagenet")
    result = export_subnet("ponas-imagenet", str(space.largest_arch()), tmp_path / "m.onnx")
    assert result.max_abs_diff <= 1e-4 and set(result.ops) <= ALLOWED_OPS
    assert "specialize.class_names" not in read_metadata(onnx.load(result.onnx_path))


@pytest.mark.gpu
def test_tensorrt_engine_build(tmp_path):
    pytest.importorskip("tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    result = export_subnet("cifar10", ARCH, tmp_path / "model.engine", fmt="tensorrt", precision="fp16")
    assert result.engine_path == tmp_path / "model.engine" and result.engine_path.stat().st_size > 0
    assert result.build_script is None


def dequantized(model) -> dict[str, list]:
    """The int8 graph's DequantizeLinear inputs by kind: weights (4-D initializers), biases (int32), activations."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    kinds = {"weights": [], "biases": [], "activations": []}
    for n in model.graph.node:
        if n.op_type != "DequantizeLinear":
            continue
        value, scale, zero = (inits.get(name) for name in (list(n.input) + [""] * 3)[:3])
        kind = "activations" if value is None else "biases" if value.dtype == np.int32 else "weights"
        kinds[kind].append((value, scale, zero))
    return kinds


def fp32_and(tmp_path, weights_file, precision: str):
    """(batches, the fp32 export, the export at `precision`, its checked ONNX model), both files calibrated on the
    same two noise batches."""
    batches = [torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    fp32 = export_subnet("cifar10", ARCH, tmp_path / "fp32.onnx", weights=weights_file, calibration=batches)
    other = export_subnet(
        "cifar10", ARCH, tmp_path / f"{precision}.onnx", weights=weights_file, calibration=batches, precision=precision
    )
    model = onnx.load(other.onnx_path)
    onnx.checker.check_model(model, full_check=True)
    return batches, fp32, other, model


def test_int8_export_is_qdq_per_channel_in_each_runtimes_form_and_close_to_fp32(tmp_path, weights_file, monkeypatch):
    """--precision int8 writes a QDQ graph calibrated on the batch-norm images, weights int8 per output channel,
    whose outputs follow the fp32 graph's: for onnxruntime uint8 activations and int32 biases; for TensorRT
    (--format tensorrt) int8 activations with zero points 0 and float biases, and its script says --int8."""
    from supernet.sessions import ort_session

    batches, fp32, int8, model = fp32_and(tmp_path, weights_file, "int8")
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(int8.ops) and int8.precision == "int8"
    meta = read_metadata(model)
    quantization = json.loads(meta["specialize.quantization"])
    assert meta["specialize.precision"] == "int8" and quantization["calibration"].startswith("32 images")
    assert meta["specialize.architecture"] == ARCH and quantization["for"] == "onnxruntime"
    kinds = dequantized(model)
    assert all(w.dtype == np.int8 and (z == 0).all() for w, _, z in kinds["weights"])
    assert any(w.ndim == 4 and s.size == w.shape[0] > 1 for w, s, _ in kinds["weights"])  # per output channel
    assert max(int(np.abs(w).max()) for w, _, _ in kinds["weights"]) <= 64  # 7 bits: no int16 overflow without VNNI
    assert kinds["biases"] and kinds["activations"]
    x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(7)).numpy()
    out32 = ort_session(fp32.onnx_path.read_bytes()).run(None, {"input": x})[0]
    out8 = ort_session(int8.onnx_path.read_bytes()).run(None, {"input": x})[0]
    assert np.corrcoef(out32.ravel(), out8.ravel())[0, 1] > 0.9 and np.abs(out32 - out8).max() > 0

    monkeypatch.setattr(export, "tensorrt_unavailable_reason", lambda: "no CUDA GPU is available")
    trt = export_subnet("cifar10", ARCH, tmp_path / "t.onnx", fmt="tensorrt", precision="int8", calibration=batches)
    assert "--int8" in (tmp_path / "build_t_engine.sh").read_text()
    model = onnx.load(trt.onnx_path)
    kinds = dequantized(model)
    assert (
        not kinds["biases"]
        and kinds["weights"]
        and json.loads(read_metadata(model)["specialize.quantization"])["for"] == "tensorrt"
    )
    assert max(int(np.abs(w).max()) for w, _, _ in kinds["weights"]) == 127  # TensorRT accumulates in int32
    zero_points = [numpy_helper.to_array(t) for t in model.graph.initializer if t.name.endswith("zero_point")]
    assert zero_points and all(z.dtype == np.int8 and (z == 0).all() for z in zero_points)
    # onnxruntime runs this form too; unfused (QDQ computed in float, as TensorRT's int32 accumulation does), since
    # its fused int8 x int8 kernels on an x86 CPU without VNNI overflow int16 sums
    out_trt = ort_session(trt.onnx_path.read_bytes(), graph_optimization_level="disabled").run(None, {"input": x})[0]
    assert np.corrcoef(out32.ravel(), out_trt.ravel())[0, 1] > 0.9


def test_fp16_export_is_half_throughout_says_so_and_follows_fp32(tmp_path, weights_file):
    """--precision fp16 (ONNX) writes weights, activations, input and output in float16; the metadata tells the user
    to feed float16; onnxruntime runs it and its logits follow the fp32 file's to fp16's precision."""
    from supernet.sessions import ort_session

    _, fp32, half, model = fp32_and(tmp_path, weights_file, "fp16")
    floats = {t.data_type for t in model.graph.initializer} - {TensorProto.INT64}
    assert floats == {TensorProto.FLOAT16} and half.precision == "fp16"
    assert [v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)] == [
        TensorProto.FLOAT16
    ] * 2
    meta = read_metadata(model)
    assert meta["specialize.precision"] == "fp16" and meta["specialize.input"].startswith("RGB float16 in [0, 1]")
    assert any(n.startswith("float16 file against the float32 graph on noise: max |diff|") for n in half.notes)
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(7)).numpy()
    out32 = ort_session(fp32.onnx_path.read_bytes()).run(None, {"input": x})[0]
    out16 = ort_session(half.onnx_path.read_bytes()).run(None, {"input": x.astype(np.float16)})[0]
    assert out16.dtype == np.float16 and np.abs(out32 - out16).max() <= 0.02 * max(1.0, np.abs(out32).max())
    assert (out32.argmax(1) == out16.argmax(1)).mean() >= 0.75
    assert half.onnx_path.stat().st_size < 0.6 * fp32.onnx_path.stat().st_size  # half the bytes of weights


def test_float16_conversion_refuses_a_constant_it_would_miss():
    from supernet.onnx_graph import to_float16

    constant = helper.make_node("Constant", [], ["c"], name="k", value=numpy_helper.from_array(np.ones(2, np.float32)))
    add = helper.make_node("Add", ["x", "c"], ["y"])
    graph = helper.make_graph(
        [constant, add],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(SpecializeError, match="^float16 conversion: node 'k' holds a float32 constant$"):
        to_float16(helper.make_model(graph))


def test_an_fp16_graph_that_drifts_is_refused_and_nothing_written(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "FP16_MAX_REL_DIFF", 0.0)
    with pytest.raises(SpecializeError, match="^the float16 graph disagrees with the float32 one: max [|]diff[|] "):
        export_subnet("cifar10", ARCH, tmp_path / "h.onnx", precision="fp16")
    assert not (tmp_path / "h.onnx").exists()


def test_bare_trained_weights_without_data_say_what_recalibration_needs(tmp_path, weights_file):
    """A weights file with no table beside it and no --data: nothing to recalibrate batch norm on."""
    with pytest.raises(SpecializeError) as caught:
        export_subnet("cifar10", ARCH, tmp_path / "m.onnx", weights=weights_file)
    assert str(caught.value).startswith(f"cannot recalibrate batch norm for weights {weights_file}: give --data")
    assert "keep the table's table.json and calibration.npz beside the weights" in str(caught.value)
    assert not (tmp_path / "m.onnx").exists()


def test_int8_without_calibration_images_says_what_to_give(tmp_path, weights_file):
    with pytest.raises(SpecializeError) as caught:
        export_subnet(
            "cifar10", ARCH, tmp_path / "q.onnx", weights=weights_file, calibration=[], recalibrate_bn=False,
            precision="int8",
        )  # fmt: skip
    assert str(caught.value) == (
        "precision='int8' needs calibration images for the activation ranges: give data, or keep the table's "
        "calibration file beside the weights"
    )
    assert not (tmp_path / "q.onnx").exists()


def test_what_the_user_reads_when_fp16_or_tensorrt_cannot_be(tmp_path, monkeypatch):
    from supernet.export import check_options, tensorrt_unavailable_reason, write_build_script

    check_options("onnx", "fp16")  # an fp16 ONNX file (test_fp16_export_...)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert tensorrt_unavailable_reason() in ("the tensorrt Python package is not installed", "no CUDA GPU is available")
    script = write_build_script(tmp_path / "m.onnx", tmp_path / "m.engine", 32, "fp32").read_text().splitlines()
    assert script[1:3] == [
        "# Build the TensorRT engine on the device that will run it: engines are specific to the GPU and",
        "# the TensorRT version (on Jetson, run this on the Jetson itself).",
    ]
    script = write_build_script(tmp_path / "m.onnx", tmp_path / "m.engine", 32, "int8").read_text().splitlines()
    assert script[3:] == [
        "set -e",
        'cd "$(dirname "$0")"',  # run from anywhere: the files sit beside the script
        "trtexec --onnx=m.onnx --saveEngine=m.engine --minShapes=input:1x3x32x32 --optShapes=input:1x3x32x32 "
        "--maxShapes=input:32x3x32x32 --int8",
    ]


def test_no_cuda_is_the_reason_where_tensorrt_is_installed(monkeypatch):
    import sys
    import types

    from supernet.export import tensorrt_unavailable_reason

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert tensorrt_unavailable_reason() == "no CUDA GPU is available"

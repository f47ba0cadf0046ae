"""The one deploy path (issue 9): what `--export` writes is the network the search reported, batch norm
recalibrated, its accuracy measured, and refusals where it cannot be."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper, shape_inference
from typer.testing import CliRunner

from cli.main import app
from specialize.api import export_result, specialize
from specialize.errors import SpecializeError
from specialize.table import load_table
from supernet.onnx_graph import read_metadata

runner = CliRunner()


def graph_macs(model: onnx.ModelProto) -> int:
    """MACs counted from the ONNX graph itself (Conv and Gemm), independent of specialize.cost."""
    model = shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input)
    }
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            w, out = weights[node.input[1]], shapes[node.output[0]]
            total += int(np.prod(out[1:])) * int(np.prod(w[1:]))
        elif node.op_type == "Gemm":
            total += int(np.prod(weights[node.input[1]]))
    return total


def test_export_is_the_reported_network(deploy_run, tmp_path):
    table = str(deploy_run / "table.json")
    result = export_result(specialize(table=table, max_flops="1G"), tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    meta = read_metadata(model)
    assert graph_macs(model) == result.macs == result.export["macs"] == int(meta["specialize.macs"])
    assert result.params == result.export["params"] == int(meta["specialize.params"])
    assert meta["specialize.bn_recalibrated"] == "true" and meta["specialize.architecture"] == result.arch
    assert float(meta["specialize.predicted_accuracy"]) == pytest.approx(result.predicted_accuracy, abs=1e-6)
    assert float(meta["specialize.predicted_accuracy_band"]) == pytest.approx(result.predicted_accuracy_band, abs=1e-6)


def test_export_recalibrates_on_training_data_and_measures_accuracy(deploy_run, tmp_path):
    result = export_result(specialize(table=str(deploy_run / "table.json"), max_flops="1G"), tmp_path / "m.onnx")
    assert "training images of" in result.export["bn_statistics"]
    assert 0 <= result.export["measured_accuracy"] <= 1 and "test split" in result.export["measured_on"]


def test_export_with_data_records_it_and_its_batch_norm_source_in_the_file(deploy_run, synthetic_data, tmp_path):
    result = export_result(specialize(table=str(deploy_run / "table.json")), tmp_path / "m.onnx", data=synthetic_data)
    model = onnx.load(str(tmp_path / "m.onnx"))
    meta = read_metadata(model)
    settings = json.loads(meta["specialize.provenance"])["settings"]
    assert settings["data"] == str(synthetic_data) and settings["format"] == "onnx"
    assert settings["bn_statistics"] == result.export["bn_statistics"]
    assert result.export["bn_statistics"].endswith(f"training images of {synthetic_data}")
    assert meta["specialize.input_name"] == model.graph.input[0].name == "input"  # what a user feeds by name
    assert str(synthetic_data) in result.export["measured_on"]


def test_an_fp16_search_ships_a_half_file_and_measures_it(deploy_run, synthetic_data, tmp_path):
    result = specialize("jetson", table=str(deploy_run / "table.json"), precision="fp16")
    exported = export_result(result, tmp_path / "h.onnx", data=synthetic_data).export
    model = onnx.load(str(tmp_path / "h.onnx"))
    assert (
        exported["precision"] == "fp16" and model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    )
    assert 0 <= exported["measured_accuracy"] <= 1 and 0 <= exported["fp32_accuracy"] <= 1  # both files measured
    assert abs(exported["measured_accuracy"] - exported["fp32_accuracy"]) <= 0.1


def test_cli_export_at_fp16_says_what_it_wrote_beside_the_fp32_graph(deploy_run, synthetic_data, tmp_path):
    table = deploy_run / "table.json"
    space = load_table(table).space
    args = ["export", "--space", space.name, "--weights", str(table), "--arch", str(space.largest_arch())]
    args += ["--precision", "fp16"]
    done = runner.invoke(app, [*args, "--data", str(synthetic_data), "-o", str(tmp_path / "h.onnx")])
    assert done.exit_code == 0, done.output
    text = " ".join(done.output.split())
    assert (
        "fp16 (half-precision ONNX); the fp32 graph measured" in text and "(the fp32 graph, before conversion)" in text
    )


def test_a_tensorrt_export_refuses_to_replace_a_build_script_before_any_work(deploy_run, tmp_path):
    script = tmp_path / "build_m_engine.sh"
    script.write_text("#!/bin/sh\necho the user's own\n")
    result = specialize(table=str(deploy_run / "table.json"))
    with pytest.raises(SpecializeError, match="^format='tensorrt' would overwrite .*build_m_engine.sh"):
        export_result(result, tmp_path / "m.onnx", fmt="tensorrt")
    assert script.read_text().endswith("the user's own\n") and not (tmp_path / "m.onnx").exists()


def _moved_run(deploy_run, tmp_path, keep_calibration: bool):
    """A copy of the run whose table names training data that does not exist here."""
    run = tmp_path / "run"
    shutil.copytree(deploy_run, run)
    data = json.loads((run / "table.json").read_text())
    data["provenance"]["settings"]["data"] = data["provenance"]["settings"]["data_path"] = str(tmp_path / "gone")
    (run / "table.json").write_text(json.dumps(data))
    if not keep_calibration:
        (run / "calibration.npz").unlink()
    return run


def test_export_falls_back_to_shipped_calibration_images(deploy_run, tmp_path):
    run = _moved_run(deploy_run, tmp_path, keep_calibration=True)
    result = export_result(specialize(table=str(run / "table.json")), tmp_path / "m.onnx")
    assert "calibration.npz" in result.export["bn_statistics"]
    assert result.export["measured_accuracy"] is None and "not measured" in result.export["measured_on"]


def test_export_without_any_calibration_refuses_unless_told(deploy_run, tmp_path):
    run = _moved_run(deploy_run, tmp_path, keep_calibration=False)
    with pytest.raises(SpecializeError, match="cannot recalibrate batch norm"):
        export_result(specialize(table=str(run / "table.json")), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    result = export_result(specialize(table=str(run / "table.json")), tmp_path / "m.onnx", recalibrate=False)
    assert read_metadata(onnx.load(str(tmp_path / "m.onnx")))["specialize.bn_recalibrated"] == "false"
    assert "NOT recalibrated" in result.export["bn_statistics"]


def test_proxy_table_export_is_refused(tiny_table, tmp_path):
    with pytest.raises(SpecializeError, match="proxy"):
        export_result(specialize(table=str(tiny_table)), tmp_path / "m.onnx")


def test_cli_json_export_has_export_key_and_band(deploy_run, tmp_path):
    out = tmp_path / "m.onnx"
    done = runner.invoke(
        app, ["--table", str(deploy_run / "table.json"), "--max-flops", "1G", "--json", "--export", str(out)]
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["export"]["file"] == str(out) and data["export"]["macs"] == data["macs"]
    assert data["export"]["build_script"] is None  # an ONNX export writes no TensorRT build script
    assert (
        data["predicted_accuracy_band"] > 0
        and "held-out split (images neither training nor the table saw), 10 images" in data["accuracy_basis"]
    )
    assert data["layers_numbered_from"] == 1 and data["blocks"][0]["layer"] == 1


def test_table_carries_fit_over_spread_subnetworks(deploy_run):
    table = load_table(deploy_run / "table.json")
    fit, spread = table.accuracy_fit, table.results["spread"]
    assert fit["samples"] == len(spread) >= 10 and fit["images"] == table.provenance["settings"]["data_counts"]["fit"]
    score = np.array([s["score"] for s in spread])
    acc = np.array([s["accuracy"] for s in spread])
    residual = acc - (fit["intercept"] + fit["slope"] * score)
    assert (residual**2).sum() <= ((acc - acc.mean()) ** 2).sum() + 1e-12  # a least-squares line beats a constant


def test_not_binding_bound_says_the_reachable_range(deploy_run):
    result = specialize(table=str(deploy_run / "table.json"), max_flops="10G")
    bound = result.bounds[0]
    assert not bound["binding"] and "largest network" in bound["note"]
    tight = specialize(table=str(deploy_run / "table.json"), max_flops=result.macs * 0.95)
    assert tight.bounds[0]["binding"] and tight.bounds[0]["note"] == ""


def test_latency_is_timed_only_for_a_profile_measured_here(deploy_run, tmp_path):
    from types import SimpleNamespace

    from hw_profiles.deployed import deployed_latency_ms, not_measured_here
    from hw_profiles.runtime import cpu_name

    table = load_table(deploy_run / "table.json")
    result = export_result(specialize(table=table), tmp_path / "m.onnx")
    here = SimpleNamespace(
        name="this-cpu",
        kind="measured",
        runtime="onnxruntime",
        hardware={"host_cpu": cpu_name()},
        batch=1,
        threads=1,
        graph_optimization_level="all",
        space=table.space,
    )
    assert not_measured_here(here) is None
    latency, how = deployed_latency_ms(result.export["onnx"], here)
    assert latency > 0 and "median of" in how and "1 thread" in how
    elsewhere = SimpleNamespace(**{**vars(here), "hardware": {"host_cpu": "Cortex-A72"}})
    assert "Cortex-A72" in not_measured_here(elsewhere)
    assert "estimated" in not_measured_here(SimpleNamespace(**{**vars(here), "kind": "estimated"}))


def test_export_times_the_file_against_the_profile_the_search_read(deploy_run, tmp_path):
    """A library user passes the profile to `specialize` only; `export_result` must use that same file (it once
    looked the device up among the shipped profiles and refused, the space having none)."""
    from hw_profiles.profiler import profile_space
    from hw_profiles.runtime import Protocol

    table = load_table(deploy_run / "table.json")
    quick = Protocol(warmup_s=0.0, sample_s=0.0005, repeats=3, budget_s=0.005, rel_iqr_max=10.0, retries=0, passes=1)
    profile_space(table.space, "this-cpu", threads=1, protocol=quick, force=True).save(tmp_path / "p.json")
    picked = specialize(table=str(deploy_run / "table.json"), profile=str(tmp_path / "p.json"))
    assert picked.profile_file == str(tmp_path / "p.json")
    result = export_result(picked, tmp_path / "m.onnx")
    assert result.export["measured_latency_ms"] > 0


def test_export_times_the_file_at_the_thread_count_searched(tmp_path, monkeypatch):
    """A search at threads=2 reads this CPU's 2-thread profile: its export is timed at 2 threads, not the default
    (the profile taken as measured on this host, whichever host runs the test)."""
    import hw_profiles.deployed
    import supernet.export

    monkeypatch.setattr(hw_profiles.deployed, "not_measured_here", lambda profile: None)
    # accuracy is not what this test reads: where the default table's data set exists (CI has it), skip decoding its
    # 60,000 images to check class names and measure 10,000
    monkeypatch.setattr(supernet.export, "check_data_classes", lambda *args: None)
    monkeypatch.setattr(supernet.export, "measure_onnx_accuracy", lambda *args: (None, "not measured (this test)"))
    picked = specialize("this-cpu", threads=2, max_flops="45M")
    result = export_result(picked, tmp_path / "m.onnx", recalibrate=False)
    assert "2 thread(s)" in result.export["latency_note"] and result.export["measured_latency_ms"] > 0


def test_export_of_a_device_search_says_why_its_latency_is_not_measured(deploy_run, tmp_path):
    """A search by device name alone (no profile file) still hands its device to the export: the note says why
    an estimated device cannot be timed here, not that no device was given."""
    result = export_result(specialize("jetson", table=str(deploy_run / "table.json")), tmp_path / "m.onnx")
    note = result.export["latency_note"]
    assert note.startswith("not measured: ") and "no device given" not in note
    assert result.export["predicted_latency_ms"] == result.latency_ms > 0


def test_an_export_onto_its_own_data_is_refused_before_any_work(deploy_run, tmp_path):
    data = tmp_path / "data.tar.gz"
    data.write_bytes(b"images a user cannot lose")
    with pytest.raises(SpecializeError, match=f"^output {data} is the input {data}: writing it would destroy"):
        export_result(specialize(table=str(deploy_run / "table.json")), data, data=data)
    assert data.read_bytes() == b"images a user cannot lose"


def test_an_int8_search_ships_an_int8_file(deploy_run, tmp_path):
    result = specialize("raspberry-pi-4", table=str(deploy_run / "table.json"), precision="int8")
    exported = export_result(result, tmp_path / "m.onnx")
    ops = {node.op_type for node in onnx.load(tmp_path / "m.onnx").graph.node}
    assert exported.export["precision"] == "int8" and {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_auto_precision_searches_the_table_given(deploy_run):
    result = specialize("jetson", table=str(deploy_run / "table.json"), precision="auto")
    assert result.space == load_table(deploy_run / "table.json").space.name and len(result.precision_choice) == 2


def test_a_weights_file_finds_its_table_beside_it(deploy_run, tmp_path):
    """Weights given as a file (not a table) still recalibrate on and are measured against the table's data: the
    table beside them whose sha256 names them is found."""
    from supernet.export import export_subnet

    table = load_table(deploy_run / "table.json")
    done = export_subnet("test-tiny", table.best_arch, tmp_path / "m.onnx", weights=deploy_run / "weights.pt")
    assert done.measured_accuracy is not None and table.training_data() in done.measured_on
    assert "training images of" in done.bn_statistics


def test_given_data_is_what_is_measured_at_fp32_and_int8(deploy_run, synthetic_data, tmp_path):
    from supernet.export import export_subnet

    copy = tmp_path / "copy"
    shutil.copytree(synthetic_data, copy)  # the same classes, elsewhere: the export must name this one
    table = load_table(deploy_run / "table.json")
    done = export_subnet(
        "test-tiny", table.best_arch, tmp_path / "q.onnx", weights=deploy_run / "table.json", data=copy,
        precision="int8",
    )  # fmt: skip
    assert str(copy) in done.measured_on and str(copy) in done.bn_statistics
    assert 0 <= done.fp32_accuracy <= 1 and 0 <= done.measured_accuracy <= 1


def test_tensorrt_profiles_run_batch_one_at_best(tmp_path):
    from supernet.export import TRT_MAX_BATCH, trt_shapes, trtexec_command

    assert trt_shapes(32) == ((1, 3, 32, 32), (1, 3, 32, 32), (TRT_MAX_BATCH, 3, 32, 32))
    command = trtexec_command(tmp_path / "m.onnx", tmp_path / "m.engine", 32, "fp16")
    assert "--optShapes=input:1x3x32x32" in command and "--fp16" in command


def test_a_measured_latency_outside_its_band_is_said_after_export(deploy_run, tmp_path, monkeypatch):
    import specialize.api as api

    result = specialize("jetson", table=str(deploy_run / "table.json"), max_flops="1G")
    monkeypatch.setattr(api, "_deployed_latency", lambda path, prof: (10 * result.latency_ms, "timed here"))
    shipped = export_result(result, tmp_path / "m.onnx").export
    assert shipped["measured_latency_ms"] == 10 * result.latency_ms
    assert any(m.startswith(f"measured latency {10 * result.latency_ms:.4g} ms is outside") for m in shipped["misses"])

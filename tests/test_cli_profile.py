"""`specialize profile ...` and `specialize devices` through typer's CliRunner, on a tiny space."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.profile_cmd import anchor_cell
from hw_profiles import load_profile
from hw_profiles.devices import devices
from specialize import space as space_module
from specialize.space import LayerSpec, get_space

runner = CliRunner()


def tiny_space():
    return replace(
        get_space("cifar10"),
        name="tiny",
        resolution=16,
        stem_channels=8,
        first_block_channels=8,
        layers=(LayerSpec(8, 8, 1), LayerSpec(8, 16, 2)),
        head_channels=32,
        kernels=(3, 5),
        expansions=(3,),
    )


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(space_module.SPACES, "tiny", tiny_space)
    return tiny_space()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_profile_file(tmp_path_factory) -> Path:
    """One quick profile of the tiny space (3 repeats), made once for the tests that only read or refuse it."""
    out = tmp_path_factory.mktemp("tiny-profile") / "p.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(space_module.SPACES, "tiny", tiny_space)
        made = invoke("profile", "--name", "this-cpu", "--space", "tiny", "--repeats", 3, "--force", "-o", out)
    assert made.exit_code == 0, made.output
    return out


def tiny_profile(tmp_path, tiny_profile_file) -> Path:
    """A copy of the module's tiny profile that a test may edit."""
    out = tmp_path / "p.json"
    shutil.copyfile(tiny_profile_file, out)
    return out


def test_profile_then_validate(tmp_path, tiny):
    out = tmp_path / "p.json"
    result = invoke(
        "profile", "--name", "this-cpu", "--space", "tiny", "--threads", 1, "--repeats", 3, "--force", "-o", out
    )
    assert result.exit_code == 0, result.output
    assert load_profile(out, tiny).kind == "measured"
    result = invoke("profile", "validate", "--profile", out, "--samples", 3, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"mape", "within_10pct", "kendall_tau", "samples"} <= set(report) and len(report["samples"]) == 3
    result = invoke("profile", "validate", "--profile", out, "--samples", 3)
    assert result.exit_code == 0 and "Kendall" in result.output


def test_profile_needs_name_space_and_output(tmp_path):
    result = invoke("profile", "--space", "cifar10")
    assert result.exit_code == 2 and "--name" in result.output


@pytest.mark.parametrize("runtime,needle", [("torch-cuda", "CUDA"), ("tensorrt", "TensorRT")])
def test_missing_gpu_runtimes_exit_2_with_a_clear_message(tmp_path, runtime, needle):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    out = tmp_path / "p.json"
    result = invoke("profile", "--name", "gpu", "--space", "cifar10", "--runtime", runtime, "-o", out)
    assert result.exit_code == 2 and needle in result.output and not out.exists()


def test_noisy_profile_is_refused_without_force(tmp_path, tiny, monkeypatch):
    from hw_profiles import profiler
    from hw_profiles.runtime import Timing

    monkeypatch.setattr(profiler, "time_runs", lambda run, clock, protocol: Timing(1.0, 0.4, 5, 1))
    out = tmp_path / "p.json"
    result = invoke("profile", "--name", "x", "--space", "tiny", "--threads", 1, "--calibration-networks", 0, "-o", out)
    assert result.exit_code == 2 and "noisier" in result.output and "L00/k3e3" in result.output and not out.exists()
    result = invoke(
        "profile", "--name", "x", "--space", "tiny", "--threads", 1, "--calibration-networks", 0, "--force", "-o", out
    )
    assert result.exit_code == 0 and load_profile(out).measurement["forced"]


def test_bundle_and_import_via_cli(tmp_path, tiny):
    from test_hw_measure import run_bundle_runner

    bundle = tmp_path / "bundle"
    result = invoke("profile", "bundle", "--space", "tiny", "-o", bundle, "--networks", 4)
    assert result.exit_code == 0, result.output
    run_bundle_runner(bundle, "lab-board")
    result = invoke("profile", "import", bundle, "--name", "board", "-o", tmp_path / "p.json")
    assert result.exit_code == 0, result.output
    assert load_profile(tmp_path / "p.json", tiny).name == "board"


def test_devices_lists_every_device_with_its_kind():
    result = invoke("devices", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert set(devices()) <= {r["name"] for r in rows}
    assert all(r["kind"] in ("measured", "estimated") for r in rows)
    result = invoke("devices")
    assert result.exit_code == 0 and "estimated" in result.output and "jetson-orin-nano" in result.output


def test_devices_at_a_precision_lists_only_what_has_a_figure_there():
    """--precision int8: estimates with an int8 throughput figure, banded by their int8 anchors, and the shipped
    int8 profiles; a GPU estimate without an int8 figure (jetson-orin-nano) and fp32 profiles are left out."""
    rows = json.loads(invoke("devices", "--precision", "int8", "--json").stdout)
    names = {r["name"] for r in rows}
    assert "raspberry-pi-4" in names and "jetson-orin-nano" not in names and {r["precision"] for r in rows} == {"int8"}
    pi4 = next(r for r in rows if r["name"] == "raspberry-pi-4")
    assert {a["precision"] for a in pi4["anchors"]} == {"int8"}
    fp32 = next(r for r in json.loads(invoke("devices", "--json").stdout) if r["name"] == "raspberry-pi-4")
    assert pi4["expected_error"] != fp32["expected_error"]
    assert any(r["kind"] == "measured" for r in rows)
    super_ = next(r for r in rows if r["name"] == "jetson-orin-nano-super")  # a Jetson with an int8 anchor
    assert super_["expected_error"] is None and {a["precision"] for a in super_["anchors"]} == {"int8"}
    cell = anchor_cell(super_).splitlines()  # the table's anchor column (its width follows the terminal's)
    assert cell[0] == "v2 0.781ms fit (TensorRT 10.3.0 (trtexec --int8 --fp16))"
    assert "resnet50_v1 +131% (other family, not in the band)" in cell
    refused = invoke("devices", "--precision", "int4")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == "error: unknown precision 'int4'; valid: fp32, fp16, int8"


def test_devices_shows_every_anchor_under_a_distinct_short_name():
    """Each fit anchor with its published ms and each check with its residual; the names were once cut at
    their second '_', which showed MNASNet's check as '1.0-1%' and left out a second fit anchor."""
    from cli.profile_cmd import anchor_cell, network_label
    from hw_profiles.reference_networks import REFERENCE_NETWORKS

    labels = {network_label(n) for n in REFERENCE_NETWORKS}
    assert len(labels) == len(REFERENCE_NETWORKS) and {"v1", "v2", "b0", "mnasnet"} <= labels
    rows = {r["name"]: r for r in json.loads(invoke("devices", "--json").stdout)}
    cell = anchor_cell(rows["jetson-agx-orin"])
    assert "v2 2.91ms fit" in cell and "b0 4.85ms fit" in cell and "mnasnet +2%" in cell.split("\n")


def test_validate_of_a_missing_or_corrupt_profile_exits_2(tmp_path):
    result = invoke("profile", "validate", "--profile", tmp_path / "none.json")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_a_recorded_later_validation_widens_the_expected_error(tmp_path, tiny):
    """`validate --record -o` keeps the validation in the profile; one that missed by more than the
    profile expected becomes its band (a shipped 2-thread profile on a VM whose second core comes and goes)."""
    out, recorded = tmp_path / "p.json", tmp_path / "recorded.json"
    assert (
        invoke(
            "profile",
            "--name",
            "this-cpu",
            "--space",
            "tiny",
            "--repeats",
            3,
            "--force",
            "--calibration-networks",
            4,
            "-o",
            out,
        ).exit_code
        == 0
    )
    profile = load_profile(out, tiny)
    data = profile.to_dict()
    data["measurement"]["validations"] = [{"mape": 0.87}]
    out.write_text(json.dumps(data))
    assert load_profile(out, tiny).expected_error == 0.87
    result = invoke(
        "profile", "validate", "--profile", out, "--samples", 3, "--runs", 3, "--record", "-o", recorded, "--json"
    )
    assert result.exit_code == 0, result.output
    validations = load_profile(recorded, tiny).measurement["validations"]
    assert len(validations) == 2 and validations[1]["mape"] == json.loads(result.stdout)["mape"]
    assert json.loads(result.stdout)["expected_error"] == max(0.87, validations[1]["mape"])


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--record",), "--record writes the profile to a file: give --output"),
        (("--record", "--threads", 2, "-o", "X"), "--record keeps validations of the profile's own settings"),
    ],
)
def test_record_refusals_exit_2_before_timing(tmp_path, tiny, tiny_profile_file, args, needle):
    out = tiny_profile(tmp_path, tiny_profile_file)
    result = invoke(
        "profile", "validate", "--profile", out, "--samples", 3, *[tmp_path / "r.json" if a == "X" else a for a in args]
    )
    assert result.exit_code == 2 and needle in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r.json").exists()


def test_malformed_recorded_validations_name_the_field(tmp_path, tiny, tiny_profile_file):
    out = tiny_profile(tmp_path, tiny_profile_file)
    data = json.loads(out.read_text())
    data["measurement"]["validations"] = [{"mape": "high"}]
    out.write_text(json.dumps(data))
    result = invoke("profile", "validate", "--profile", out, "--samples", 3)
    assert result.exit_code == 2 and "field 'measurement.validations'" in result.output


def test_profile_says_when_its_own_rounds_drift_past_ten_percent(tmp_path, tiny, monkeypatch):
    """Two threads on a 2-vCPU VM: the same networks moved ±21% between rounds and the profile expected ±50%; the
    closing line must say why (the host), not leave it unexplained."""
    from hw_profiles import validate

    monkeypatch.setattr(validate, "repeatability", lambda rounds: 0.3)
    out = tmp_path / "p.json"
    result = invoke("profile", "--name", "x", "--space", "tiny", "--threads", 2, "--repeats", 3, "--force", "-o", out)
    assert result.exit_code == 0, result.output
    line = " ".join(result.output.split())
    assert "moved ±30% between timing rounds" in line and "2-thread timings on a VM" in line

"""CLI: `spaces`, `cost`, `export`; bad input gives one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
from typer.testing import CliRunner

from cli.main import app
from specialize.cost import arch_cost
from specialize.space import get_space

runner = CliRunner()
CIFAR_ARCH = ",".join(["k3e3"] * 11 + ["k7e6se"])


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_spaces_table():
    result = invoke("spaces")
    assert result.exit_code == 0, result.output
    for name in ("cifar10", "ponas-imagenet", "ponas-table1", get_space("cifar10").fingerprint, "k7e6se"):
        assert name in result.output
    assert "FLOPs" in result.output


def test_spaces_json():
    result = invoke("spaces", "--json")
    data = json.loads(result.stdout)
    rows = {row["name"]: row for row in data["spaces"]}
    assert rows["cifar10"]["layers"] == 12 and len(rows["cifar10"]["candidates"]) == 12
    low, high = rows["ponas-imagenet"]["macs_range"]
    assert low < high and rows["ponas-imagenet"]["fingerprint"] == get_space("ponas-imagenet").fingerprint
    assert "FLOPs" in data["note"]


def test_cost_json_keys_and_values():
    result = invoke("cost", "--space", "cifar10", "--arch", CIFAR_ARCH, "--json", "--dtype-bytes", "2", "--batch", "4")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"macs", "params", "bytes", "intensity", "peak_activation_bytes"} <= set(data)
    expected = arch_cost(get_space("cifar10").parse_arch(CIFAR_ARCH), dtype_bytes=2, batch=4)
    assert all(data[k] == expected[k] for k in expected)
    assert "FLOPs" in data["note"] and "latency_ms" not in data


def test_cost_table_mentions_flops():
    result = invoke("cost", "--arch", CIFAR_ARCH)
    assert result.exit_code == 0 and "MACs" in result.output and "FLOPs" in result.output


@pytest.mark.parametrize("name", ["cifar10", "ponas-imagenet"])
def test_per_candidate_shapes(name):
    result = invoke("cost", "--space", name, "--per-candidate", "--json")
    data = json.loads(result.stdout)
    space = get_space(name)
    for key in ("macs", "params", "bytes", "peak_activation_bytes"):
        assert len(data[key]) == space.num_layers and all(len(row) == space.num_candidates for row in data[key])
    assert data["candidates"] == list(space.candidate_names) and data["fixed"]["macs"] > 0


def test_per_candidate_table():
    result = invoke("cost", "--per-candidate")
    assert result.exit_code == 0 and "k7e6" in result.output


def test_profile_hook_adds_latency(monkeypatch):
    import hw_profiles

    seen = {}

    def fake_resolve(device, space, profile_path=None, batch=None):
        seen.update(device=device, space=space.name, path=profile_path, batch=batch)
        return types.SimpleNamespace(predict_ms=lambda arch: 1.25, expected_error=0.3, label="pi5, estimated")

    monkeypatch.setattr(hw_profiles, "resolve_profile", fake_resolve)
    data = json.loads(invoke("cost", "--arch", CIFAR_ARCH, "--profile", "pi5", "--json").stdout)
    assert data["latency_ms"] == 1.25 and seen == {"device": "pi5", "space": "cifar10", "path": None, "batch": 1}
    assert data["latency_expected_error"] == 0.3 and data["latency_profile"] == "pi5, estimated"
    invoke("cost", "--arch", CIFAR_ARCH, "--profile", "my.json", "--json", "--batch", "32")
    assert seen["path"] == "my.json" and seen["batch"] == 32  # latency at the batch the other figures are for


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    "args, needles",
    [
        (["cost", "--space", "imagenet", "--arch", CIFAR_ARCH], ["imagenet", "cifar10", "ponas-imagenet"]),
        (["cost", "--arch", ",".join(["k3e3"] * 11 + ["3x3"])], ["'3x3'", "k<kernel>e<expansion>"]),
        (["cost", "--arch", "k3e3,k3e3"], ["2 blocks", "12", "k7e6se"]),
        (["cost", "--arch", ",".join(["k3e3"] * 11 + ["k9e9"])], ["k9e9", "k7e6se"]),
        (["cost"], ["--arch", "--per-candidate"]),
        (["export", "--space", "nope", "--arch", CIFAR_ARCH, "-o", "m.onnx"], ["nope", "cifar10"]),
        (["export", "--space", "cifar10", "--arch", "k3e3,k3e3", "-o", "m.onnx"], ["2 blocks", "k7e6se"]),
        (
            ["export", "--space", "cifar10", "--arch", ",".join(["k3e3"] * 11 + ["k9e3"]), "-o", "m.onnx"],
            ["k9e3", "k3e3se"],
        ),
        (
            ["export", "--space", "cifar10", "--arch", CIFAR_ARCH, "-o", "/nonexistent-dir/m.onnx"],
            ["/nonexistent-dir", "does not exist"],
        ),
        (
            ["export", "--space", "cifar10", "--arch", CIFAR_ARCH, "-o", "m.onnx", "--format", "pdf"],
            ["pdf", "onnx, tensorrt"],
        ),
    ],
)
def test_bad_input_one_line_exit_2(args, needles, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke(*args), *needles)


def test_export_to_a_directory_is_refused(tmp_path):
    assert_one_line_error(
        invoke("export", "--space", "cifar10", "--arch", CIFAR_ARCH, "-o", str(tmp_path)), "is a directory"
    )


def test_export_untrained_tensorrt_fallback(tmp_path, monkeypatch):
    import supernet.export as export

    monkeypatch.setattr(export, "tensorrt_unavailable_reason", lambda: "the tensorrt Python package is not installed")
    out = tmp_path / "m.onnx"
    result = invoke(
        "export",
        "--space",
        "cifar10",
        "--arch",
        CIFAR_ARCH,
        "-o",
        str(out),
        "--format",
        "tensorrt",
        "--json",
        "--untrained",
    )
    assert result.exit_code == 0, result.output
    assert "UNTRAINED" in result.stderr and "tensorrt Python package" in result.stderr
    data = json.loads(result.stdout)
    assert data["max_abs_diff"] <= 1e-4 and data["build_script"] == str(tmp_path / "build_m_engine.sh")
    assert out.is_file() and (tmp_path / "build_m_engine.sh").is_file()


def test_export_never_ships_random_weights_by_default(tmp_path):
    """No --weights: an embedded table's weights where the space is theirs; elsewhere a refusal naming --untrained."""
    arch = ",".join(["k3e3"] * 19)
    assert_one_line_error(
        invoke("export", "--space", "ponas-imagenet", "--arch", arch, "-o", str(tmp_path / "m.onnx")), "--untrained"
    )
    assert not (tmp_path / "m.onnx").exists()
    from specialize.api.offline import export_weights

    assert export_weights(get_space("cifar10"), None, untrained=False) == "cifar10"  # the embedded table of that space
    assert export_weights(get_space("ponas-imagenet"), None, untrained=True) is None


def test_the_headline_command_imports_no_scipy_or_torch():
    """Cold start: scipy.stats alone took 0.9 s of the headline command's 2.2 s when the profile command's
    defaults pulled hw_profiles.validate, which imported it at the top."""
    code = (
        "import sys; from typer.testing import CliRunner; from cli.main import app; "
        "r = CliRunner().invoke(app, ['--device', 'jetson', '--max-flops', '300M', '--json']); "
        "assert r.exit_code == 0, r.output; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'torch', 'onnx', 'onnxruntime')); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_fast_path_does_not_import_torch():
    code = (
        "import sys; from typer.testing import CliRunner; from cli.main import app; "
        "r = CliRunner().invoke(app, ['cost', '--arch', 'x']); "
        "assert r.exit_code == 2; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

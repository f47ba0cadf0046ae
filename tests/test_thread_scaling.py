"""Multi-thread profiles scaled from 1-thread blocks by a whole-network fit (hw_profiles.thread_scaling)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from hw_profiles.profile import DeviceProfile, load_profile
from hw_profiles.thread_scaling import fit_scaling, scale_to_threads, scaled_profile, scaling_model
from specialize.cost import arch_ops
from specialize.errors import SpecializeError
from specialize.sampling import spread_architectures
from specialize.space import get_space
from tests.test_hw_measure import QUICK, tiny  # noqa: F401  (the tiny-space fixture)

runner = CliRunner()


def one_thread_profile(space, seed=0) -> DeviceProfile:
    rng = np.random.default_rng(seed)
    latency = rng.uniform(0.01, 0.1, (space.num_layers, len(space.candidates)))
    latency[:, [c.is_skip for c in space.candidates]] = 0.0
    return DeviceProfile(
        name="this-cpu",
        kind="measured",
        runtime="onnxruntime",
        space=space,
        latency_ms=latency,
        fixed_ms={"stem": 0.02, "head": 0.03, "dispatch": 0.003},
        threads=1,
        graph_optimization_level="all",
        measurement={"validations": [{"mape": 0.5}]},
    )


def test_scaled_table_predicts_the_fitted_model_for_every_network():
    """a * 1-thread block sum + b * ops + c, exactly, also where `skip` leaves a layer without ops: a
    wrong op count on the stem or head, or c put anywhere but once, would show here."""
    space = get_space("test-tiny-depth")
    base = one_thread_profile(space)
    scaled = scaled_profile(
        base,
        2,
        np.array([0.6, 0.005, -0.02]),
        {"networks": 8, "fit_mape": 0.01, "calibrated_loo_mape": 0.02, "uncalibrated_mape": 0.3},
    )
    archs = spread_architectures(space, 20, 3)
    assert any(c.is_skip for a in archs for c in a.candidates)
    for arch in archs:
        expected = 0.6 * base.predict_ms(arch, calibrated=False) + 0.005 * len(arch_ops(arch)) - 0.02
        assert scaled.predict_ms(arch) == pytest.approx(expected, rel=1e-9)
    assert scaled.threads == 2 and scaled.measurement["validations"] == []  # 1-thread validations say nothing of it
    assert scaled.expected_error == pytest.approx(0.02)


def test_fit_recovers_the_terms_and_falls_back_to_simpler_models_not_negative_costs():
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.uniform(0.3, 1.0, 12), rng.integers(30, 60, 12), np.ones(12)])
    coef = fit_scaling(x, x @ [0.6, 0.004, -0.1])
    assert coef == pytest.approx([0.6, 0.004, -0.1]) and scaling_model(coef) == "a * ms + b * ops + c"
    coef = fit_scaling(x, x @ [0.6, -0.004, 0.1])
    assert coef[1] == 0.0 and coef[0] > 0 and scaling_model(coef) == "a * ms + c"
    coef = fit_scaling(x, x @ [-0.5, 0.0, 2.0])  # ms falling as the 1-thread sum grows: nothing but a ratio is left
    assert coef[0] > 0 and coef[1] == coef[2] == 0.0 and scaling_model(coef) == "a * ms"


def test_fit_never_prices_the_fastest_network_at_or_below_zero():
    # The CI failure of 2026-12-07: a negative offset fitted on mid-sized networks made the tiny space's
    # fastest network -0.002 ms, and saving the 2-thread profile was refused.
    rng = np.random.default_rng(2)
    x = np.column_stack([rng.uniform(0.3, 1.0, 12), rng.integers(30, 60, 12), np.ones(12)])
    y = x @ [0.6, 0.004, -0.1]

    def fastest(coef):  # a network of 0.05 ms at 1 thread and 10 ops
        return coef[0] * 0.05 + coef[1] * 10 + coef[2]

    assert fastest(fit_scaling(x, y)) < 0  # unconstrained, the exact fit goes below zero
    coef = fit_scaling(x, y, fastest)
    assert fastest(coef) > 0 and coef[0] > 0 and coef[1] >= 0


def test_scale_to_threads_times_whole_networks_at_those_threads(tiny, tmp_path):  # noqa: F811
    from hw_profiles.profiler import profile_space

    base = profile_space(tiny, "this-cpu", threads=1, protocol=QUICK, force=True)
    seen = []
    scaled = scale_to_threads(base, 2, networks=4, rounds=2, runs=5, progress=seen.append)
    assert sum(key.startswith("time ") for key in seen) == 2 * 4
    assert scaled.threads == 2 and scaled.calibration["thread_scaling"]["share_of_1_thread_ms"] > 0
    whole = scaled.measurement["whole_network"]
    assert whole["networks"] == 4 and whole["rounds"] == 2 and whole["calibrated_loo_mape"] is not None
    scaled.save(tmp_path / "t2.json")
    loaded = load_profile(tmp_path / "t2.json", tiny)
    assert loaded.threads == 2 and "1 thread" in loaded.measurement["blocks"]
    settings = json.loads((tmp_path / "t2.json").read_text())["provenance"]["settings"]
    assert (
        settings["threads"] == 2 and settings["blocks_timed"] == base.provenance["date"]
    )  # its own date, the blocks' too


@pytest.mark.parametrize(
    "change,needle",
    [
        (dict(threads=2), "timed at 1 thread"),
        (dict(kind="estimated", runtime="roofline"), "timed at 1 thread"),
    ],
)
def test_only_a_measured_one_thread_profile_can_be_scaled(change, needle):
    from dataclasses import replace

    base = replace(one_thread_profile(get_space("test-tiny")), **change)
    with pytest.raises(SpecializeError, match=needle):
        scale_to_threads(base, 2)


def test_cli_from_one_thread_refuses_bad_input_with_one_line(tmp_path):
    space = get_space("test-tiny")
    path = tmp_path / "p1.json"
    one_thread_profile(space).save(path)
    for args, needle in (
        (["--threads", "1", "-o", tmp_path / "o.json"], "2 or more"),
        (["-o", tmp_path / "o.json"], "needs --threads"),
        (["--threads", "2"], "needs --threads"),
    ):
        result = runner.invoke(app, ["profile", "--from-one-thread", str(path), *map(str, args)])
        assert result.exit_code == 2 and needle in result.output, result.output
    (tmp_path / "bad.json").write_text(json.dumps({"kind_of_file": "device_profile"}))
    result = runner.invoke(
        app,
        ["profile", "--from-one-thread", str(tmp_path / "bad.json"), "--threads", "2", "-o", str(tmp_path / "o.json")],
    )
    assert result.exit_code == 2 and "bad.json" in result.output
    elsewhere = one_thread_profile(space)
    elsewhere.hardware = {"host_cpu": "Another CPU 3000", "host_cores": 64}
    elsewhere.save(tmp_path / "other.json")
    result = runner.invoke(
        app,
        [
            "profile",
            "--from-one-thread",
            str(tmp_path / "other.json"),
            "--threads",
            "2",
            "-o",
            str(tmp_path / "o.json"),
        ],
    )
    assert result.exit_code == 2 and "measured on Another CPU 3000, 64 cores, not here" in result.output
    assert "specialize profile --name this-cpu" in result.output and not (tmp_path / "o.json").exists()

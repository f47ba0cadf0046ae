"""Batch size and thread count as profile dimensions: the registry holds several profiles of one device and
space and picks one deterministically; estimated devices build their estimate at the asked batch."""

import json
import random
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from hw_profiles import registry, resolve_profile
from hw_profiles.registry import DATA_DIR, shipped_file_name, shipped_profiles
from specialize import specialize
from specialize.errors import SpecializeError
from specialize.space import get_space
from specialize.table import AccuracyTable

runner = CliRunner()
SPACE = "cifar10"


def lab_profile(batch: int, threads: int, level: float):
    """A measured 'lab-box' profile whose every block takes `level` ms, so a test can tell which one was picked."""
    space = get_space(SPACE)
    base = resolve_profile("t4", space)
    return replace(
        base,
        name="lab-box",
        kind="measured",
        runtime="onnxruntime",
        precision="fp32",
        batch=batch,
        threads=threads,
        latency_ms=np.full_like(base.latency_ms, level),
        hardware={},
    )


@pytest.fixture
def lab_shelf(tmp_path, monkeypatch):
    """Shipped profiles of lab-box at (batch 1, 1 thread), (batch 1, 2 threads), (batch 32, 1 thread), saved in a
    shuffled order under names that do not sort like their settings: the choice must come from the contents."""
    settings = [(1, 1, 1.0), (1, 2, 2.0), (32, 1, 32.0)]
    random.Random(0).shuffle(settings)
    for i, (batch, threads, level) in enumerate(settings):
        lab_profile(batch, threads, level).save(tmp_path / f"{i}-lab.json")
    monkeypatch.setattr(registry, "DATA_DIR", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "batch,threads,level", [(None, None, 1.0), (1, None, 1.0), (None, 2, 2.0), (32, None, 32.0), (32, 1, 32.0)]
)
def test_registry_picks_the_profile_at_the_asked_batch_and_threads(lab_shelf, batch, threads, level):
    profile = resolve_profile("lab-box", get_space(SPACE), batch=batch, threads=threads)
    assert profile.latency_ms[0, 0] == level


def test_default_threads_is_the_fewest_when_no_one_thread_profile_is_shipped(tmp_path, monkeypatch):
    for threads in (4, 2):
        lab_profile(1, threads, float(threads)).save(tmp_path / f"t{threads}.json")
    monkeypatch.setattr(registry, "DATA_DIR", tmp_path)
    assert resolve_profile("lab-box", get_space(SPACE)).threads == 2


@pytest.mark.parametrize("batch,threads", [(8, None), (32, 2)])
def test_a_batch_or_thread_count_not_shipped_lists_what_is(lab_shelf, batch, threads):
    with pytest.raises(SpecializeError) as info:
        resolve_profile("lab-box", get_space(SPACE), batch=batch, threads=threads)
    message = str(info.value)
    assert "batch 1 (1 thread, 2 threads), batch 32 (1 thread)" in message and f"--batch {batch}" in message


def test_estimated_device_builds_its_estimate_at_the_batch():
    space = get_space(SPACE)
    one, many = resolve_profile("raspberry-pi-4", space), resolve_profile("raspberry-pi-4", space, batch=32)
    assert one.batch == 1 and many.batch == 32 and "batch 32" in many.label
    ratio = many.latency_ms / one.latency_ms
    assert (ratio > 1).all() and (ratio < 32).all()  # compute and activations x 32; kernels and weights once
    assert ratio.max() > 10  # the big blocks are compute-bound: nearly x 32
    assert one.expected_error is not None and many.expected_error is None  # anchors are batch-1 latencies


def test_a_profile_file_at_another_batch_or_thread_count_is_refused(tmp_path):
    path = tmp_path / "p.json"
    lab_profile(1, 2, 1.0).save(path)
    space = get_space(SPACE)
    assert resolve_profile(None, space, str(path), batch=1, threads=2).threads == 2
    with pytest.raises(SpecializeError, match="batch 1, not batch=32"):
        resolve_profile(None, space, str(path), batch=32)
    with pytest.raises(SpecializeError, match="not threads=1"):
        resolve_profile(None, space, str(path), threads=1)
    with pytest.raises(SpecializeError, match="^threads applies to measured"):
        resolve_profile("jetson", space, threads=2)
    with pytest.raises(SpecializeError, match="^batch must be"):
        resolve_profile("jetson", space, batch=0)
    with pytest.raises(SpecializeError, match="measured at fp32, not precision='int8'"):
        resolve_profile(None, space, str(path), precision="int8")
    with pytest.raises(SpecializeError, match="unknown precision 'int4'; valid: fp32, fp16, int8"):
        resolve_profile("jetson", space, precision="int4")
    with pytest.raises(SpecializeError, match="no int8 throughput figure to estimate one from"):
        resolve_profile("jetson", space, precision="int8")


def test_an_int8_estimate_rests_on_int8_anchors_or_says_its_error_is_unknown():
    """raspberry-pi-4 has published INT8 latencies (opencv_zoo): its int8 estimate is scaled and banded by them.
    The same device without them is scaled by its fp32 anchors and its error is unknown (±?), not borrowed."""
    from dataclasses import replace

    from hw_profiles.devices import devices
    from hw_profiles.roofline import anchoring

    space = get_space(SPACE)
    pi4 = resolve_profile("raspberry-pi-4", space, precision="int8")
    anchors = pi4.hardware["anchor"]["anchors"]
    assert pi4.precision == "int8" and {a["precision"] for a in anchors} == {"int8"}
    assert pi4.expected_error is not None
    fp32_only = replace(devices()["raspberry-pi-4"], anchors=tuple(a for a in devices()["raspberry-pi-4"].anchors
                                                                     if a["precision"] == "fp32"))  # fmt: skip
    borrowed = anchoring(fp32_only, "int8")
    assert borrowed["expected_error"] is None and "no published int8 anchor" in borrowed["note"]
    assert anchoring(fp32_only, "fp32")["expected_error"] is not None
    # a precision without anchors of its own borrows the default precision's alone: INT8 anchors change no fp16 band
    assert anchoring(devices()["raspberry-pi-4"], "fp16") == anchoring(fp32_only, "fp16")


def test_shipped_profiles_are_named_by_their_settings_and_unique():
    keys = set()
    for header in shipped_profiles():
        assert header["path"].name == shipped_file_name(
            header["name"], header["runtime"], header["space"], header["batch"], header["threads"], header["precision"]
        )
        key = (
            header["name"],
            header["fingerprint"],
            header["runtime"],
            header["precision"],
            header["batch"],
            header["threads"],
        )
        assert key not in keys
        keys.add(key)
    assert shipped_file_name("this-cpu", "onnxruntime", "cifar10") == "this-cpu-onnxruntime.cifar10.json"
    assert shipped_file_name("this-cpu", "onnxruntime", "cifar10", 32, 2) == "this-cpu-onnxruntime.cifar10.b32.t2.json"
    assert (DATA_DIR / shipped_file_name("this-cpu", "onnxruntime", "cifar10")).is_file()


def random_table() -> AccuracyTable:
    space = get_space(SPACE)
    acc = np.random.default_rng(0).uniform(0.6, 0.9, (space.num_layers, space.num_candidates))
    return AccuracyTable(space=space, accuracy=acc, best_arch=str(space.largest_arch()))


def test_api_batch_picks_the_profile_and_the_result_says_so():
    table = random_table()
    one = specialize("raspberry-pi-4", table=table, max_flops="45M")
    many = specialize("raspberry-pi-4", table=table, max_flops="45M", batch=32)
    assert (one.batch, many.batch, many.threads) == (1, 32, None)
    assert many.latency_ms > 10 * one.latency_ms and json.loads(json.dumps(many.to_dict()))["batch"] == 32
    measured = specialize("this-cpu", table=table, max_flops="45M")
    assert (measured.batch, measured.threads) == (1, 1)
    with pytest.raises(SpecializeError, match="^batch, threads and precision choose .* give device or profile"):
        specialize(table=table, max_flops="45M", batch=32)


def test_cli_batch_json_and_the_one_line_refusal(tmp_path):
    table = tmp_path / "t.json"
    random_table().save(table)
    done = runner.invoke(
        app, ["--table", str(table), "--device", "jetson", "--max-flops", "45M", "--batch", "32", "--json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["batch"] == 32
    done = runner.invoke(app, ["--table", str(table), "--device", "this-cpu", "--max-flops", "45M", "--batch", "8"])
    assert done.exit_code == 2 and "at batch 1 (1 thread" in done.output and "not at batch 8" in done.output
    assert len(done.output.strip().splitlines()) == 1


def test_profile_calibrate_fits_the_estimate_at_the_batch(tmp_path):
    from hw_profiles import load_profile
    from specialize.sampling import spread_architectures

    space = get_space(SPACE)
    archs = spread_architectures(space, 6, seed=2)
    timings = tmp_path / "t.json"
    timings.write_text(json.dumps({"timings": [{"arch": str(a), "latency_ms": 5.0 + i} for i, a in enumerate(archs)]}))
    out = tmp_path / "p.json"
    done = runner.invoke(
        app,
        [
            "profile",
            "calibrate",
            "--profile",
            "raspberry-pi-4",
            "--space",
            SPACE,
            "--batch",
            "32",
            "--timings",
            str(timings),
            "-o",
            str(out),
        ],
    )
    assert done.exit_code == 0, done.output
    assert load_profile(out).batch == 32 and "batch 32" in done.output
    done = runner.invoke(
        app, ["profile", "calibrate", "--profile", str(out), "--batch", "1", "--timings", str(timings)]
    )
    assert done.exit_code == 2 and "not --batch 1" in done.output

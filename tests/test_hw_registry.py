"""Device registry, roofline estimates and profile resolution (no measuring)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from hw_profiles import list_devices, load_profile, resolve_profile
from hw_profiles import registry
from hw_profiles.devices import FIGURES, aliases, devices
from specialize.cost import cost_arrays
from specialize.errors import SpecializeError
from specialize.space import get_space

SPACES = ["cifar10", "ponas-imagenet"]


@pytest.mark.parametrize("name", sorted(devices()))
def test_every_device_figure_has_a_source(name):
    device = devices()[name]
    for figure in FIGURES:
        entry = device.figures[figure]
        assert entry["value"] > 0 and entry["source"] and entry["kind"] in ("datasheet", "derived", "assumption")
    assert device.figures["kernel_overhead_s"]["kind"] == "assumption"


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("name", sorted(devices()) + sorted(aliases()))
def test_resolve_every_device_and_alias(name, space_name):
    space = get_space(space_name)
    profile = resolve_profile(name, space)
    assert profile.kind == "estimated" and profile.runtime == "roofline"
    assert profile.name == aliases().get(name, name)
    assert profile.resolved_from == (name if name in aliases() else None)
    assert "estimated" in profile.label
    assert profile.latency_ms.shape == (space.num_layers, space.num_candidates)
    assert (profile.latency_ms > 0).all() and all(v > 0 for v in profile.fixed_ms.values())
    assert profile.predict_ms(space.smallest_arch()) < profile.predict_ms(space.largest_arch())


def test_jetson_alias_resolves_to_orin_nano_and_says_so(tmp_path):
    profile = resolve_profile("jetson", get_space("cifar10"))
    assert profile.name == "jetson-orin-nano" and profile.resolved_from == "jetson"
    profile.save(tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text())["resolved_from"] == "jetson"
    assert load_profile(tmp_path / "p.json").resolved_from == "jetson"


@pytest.mark.parametrize("device", sorted(devices()))
@pytest.mark.parametrize("space_name", SPACES)
def test_roofline_latency_grows_with_kernel_and_expansion(space_name, device):
    space = get_space(space_name)
    profile = resolve_profile(device, space)
    index = {c: i for i, c in enumerate(space.candidates)}
    for cand, i in index.items():
        for bigger, j in index.items():
            if bigger.se == cand.se and bigger.kernel >= cand.kernel and bigger.expansion >= cand.expansion:
                assert (profile.latency_ms[:, j] >= profile.latency_ms[:, i] - 1e-12).all()
    tau = kendalltau(cost_arrays(space).macs.ravel(), profile.latency_ms.ravel())[0]
    assert tau > 0.3  # positive overall; SE adds kernels and bytes, not MACs, so not 1


def test_unknown_device_lists_known_ones():
    with pytest.raises(SpecializeError) as info:
        resolve_profile("no-such-board", get_space("cifar10"))
    message = str(info.value)
    assert "no-such-board" in message and "jetson-orin-nano" in message and "raspberry-pi-5" in message


def test_profile_for_another_space_names_both(tmp_path):
    path = tmp_path / "p.json"
    resolve_profile("jetson", get_space("cifar10")).save(path)
    with pytest.raises(SpecializeError) as info:
        resolve_profile(None, get_space("ponas-imagenet"), str(path))
    assert "cifar10" in str(info.value) and "ponas-imagenet" in str(info.value)


def test_measured_profile_found_by_name_and_fingerprint(tmp_path, monkeypatch):
    space = get_space("cifar10")
    profile = resolve_profile("t4", space)
    profile.name, profile.kind, profile.runtime = "lab-box", "measured", "onnxruntime"
    profile.save(tmp_path / "lab-box-onnxruntime.cifar10.json")
    monkeypatch.setattr(registry, "DATA_DIR", tmp_path)
    found = resolve_profile("lab-box", space)
    assert found.kind == "measured" and found.name == "lab-box"
    with pytest.raises(SpecializeError, match="not for space 'ponas-imagenet'"):
        resolve_profile("lab-box", get_space("ponas-imagenet"))
    rows = list_devices()
    assert any(r["name"] == "lab-box" and r["kind"] == "measured" and r["space"] == "cifar10" for r in rows)


def test_list_devices_has_every_registered_device():
    rows = {r["name"]: r for r in list_devices() if r["kind"] == "estimated"}
    assert set(devices()) <= set(rows)
    for row in rows.values():
        assert row["runtime"] == "roofline" and set(row) >= {"name", "kind", "runtime", "date", "space", "description"}


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("latency_ms", [[1.0]], "latency_ms"),
        ("latency_ms", "oops", "latency_ms"),
        ("fixed_ms", {"stem": -1}, "fixed_ms"),
        ("kind", "guessed", "kind"),
        ("calibration", {"scale": "x"}, "calibration"),
        ("fingerprint", "0000", "fingerprint"),
        ("spread_ms", [[-1.0]], "spread_ms"),
    ],
)
def test_corrupt_profile_names_file_and_field(tmp_path, field, value, needle):
    path = tmp_path / "bad.json"
    data = resolve_profile("jetson", get_space("cifar10")).to_dict()
    data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(SpecializeError) as info:
        load_profile(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_missing_field_and_bad_json_name_the_file(tmp_path):
    path = tmp_path / "bad.json"
    data = resolve_profile("jetson", get_space("cifar10")).to_dict()
    del data["fixed_ms"]
    path.write_text(json.dumps(data))
    with pytest.raises(SpecializeError, match="fixed_ms"):
        load_profile(path)
    path.write_text("{not json")
    with pytest.raises(SpecializeError, match="not valid JSON"):
        load_profile(path)


def test_a_profile_from_another_host_says_so(monkeypatch):
    """A measured profile copied to another machine: labelled 'not here', its band unknown, the command shown."""
    from hw_profiles import host, resolve_profile
    from specialize import specialize
    from specialize.space import get_space

    profile = resolve_profile("this-cpu", get_space("cifar10"))
    recorded = profile.hardware["host_cpu"]
    monkeypatch.setattr(host, "cpu_name", lambda: recorded)
    monkeypatch.setattr(host, "cpu_flags_digest", lambda: profile.hardware.get("host_flags"))
    assert profile.elsewhere is None and profile.expected_error is not None and "not here" not in profile.label
    monkeypatch.setattr(host, "cpu_name", lambda: "Faked CPU 9000")
    assert profile.elsewhere.startswith(recorded) and profile.expected_error is None
    assert f"measured on {recorded}" in profile.label and "not here" in profile.label
    result = specialize("this-cpu", table="cifar10", max_flops="45M")
    assert result.latency_expected_error is None
    assert "specialize profile --name this-cpu --space cifar10" in result.device_note


@settings(max_examples=50, deadline=None)
@given(scale=st.floats(0.2, 5.0), offset=st.floats(-0.05, 0.5), seed=st.integers(0, 2**32 - 1))
def test_prediction_is_scale_times_blocks_and_fixed_parts_plus_offset(scale, offset, seed):
    """predicted = scale * (sum of the architecture's blocks + every fixed part) + offset, for any calibration."""
    from dataclasses import replace

    import numpy as np

    from hw_profiles import resolve_profile
    from specialize.sampling import uniform_architectures
    from specialize.space import get_space

    base = resolve_profile("this-cpu", get_space("cifar10"))
    profile = replace(base, calibration={"scale": scale, "offset_ms": offset})
    [arch] = uniform_architectures(profile.space, np.random.default_rng(seed), 1)
    blocks = sum(profile.latency_ms[layer, c] for layer, c in enumerate(arch.indices))
    expected = scale * (blocks + sum(profile.fixed_ms.values())) + offset
    assert profile.predict_ms(arch) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert profile.predict_ms(arch, calibrated=False) == pytest.approx(blocks + sum(profile.fixed_ms.values()))


def test_a_profile_serves_a_space_that_differs_only_in_the_classifier():
    """cifar10's measured profile serves a 3-class dataset's space, its head priced by the head's MACs; a space
    whose body differs is refused, naming both."""
    from hw_profiles import resolve_profile
    from specialize.cost import head_ops
    from specialize.space import get_space

    base = resolve_profile("this-cpu", get_space("cifar10"))
    three = get_space("cifar10").with_classes(("cat", "dog", "bird"))
    served = resolve_profile("this-cpu", three)
    ratio = sum(o.macs for o in head_ops(three)) / sum(o.macs for o in head_ops(base.space))
    assert served.space.fingerprint == three.fingerprint and (served.latency_ms == base.latency_ms).all()
    assert served.fixed_ms["head"] == pytest.approx(base.fixed_ms["head"] * ratio) and ratio < 1
    with pytest.raises(SpecializeError, match="cifar10-depth"):
        base.for_space(get_space("cifar10-depth"))

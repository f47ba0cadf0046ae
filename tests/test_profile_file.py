"""The device-profile file: every field round-trips, every bad field is refused with one exact line naming the file
and the field, and each range ends where its message says. The message is the interface, so it is compared whole."""

import json
import re
from dataclasses import fields, replace

import numpy as np
import pytest

from hw_profiles import load_profile, resolve_profile
from hw_profiles.profile import MAX_MS, DeviceProfile, profile_from_dict
from specialize.errors import SpecializeError
from specialize.space import get_space
from specialize.table import space_option

SPACE = get_space("cifar10-depth")  # 12 layers x 13 candidates (not square), skip not allowed everywhere


def rich_profile() -> DeviceProfile:
    """A profile with every optional field set to something other than its default."""
    base = resolve_profile("jetson", SPACE)
    latency = np.round(base.latency_ms + 0.001, 6)
    return replace(
        base,
        kind="measured",
        runtime="onnxruntime",
        precision="fp16",
        batch=4,
        latency_ms=latency,
        spread_ms=np.round(latency * 0.1, 6),
        fixed_ms={"stem": 0.25, "head": 0.5, "dispatch": 0.125},
        calibration={"scale": 1.25, "offset_ms": 0.0625, "fit": {"networks": 8}},
        hardware={"cpu": "Test CPU"},
        provenance={"command": "pytest"},
        resolved_from="jet",
        fixed_spread_ms={"stem": 0.01, "head": 0.02},
        measurement={"repeats": 21, "validations": [{"mape": 0.05}]},
        threads=2,
        graph_optimization_level="all",
        path=None,
    )


def profile_dict(**changes) -> dict:
    data = rich_profile().to_dict()
    for key, value in changes.items():
        if value is DELETE:
            del data[key]
        else:
            data[key] = value
    return data


DELETE = object()


def refusal(tmp_path, data: dict) -> str:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpecializeError) as info:
        load_profile(path)
    message = str(info.value)
    prefix = f"device profile file {path}"
    assert message.startswith(prefix), message
    return message[len(prefix) :]


def test_every_field_round_trips_and_save_sets_the_path(tmp_path):
    profile, path = rich_profile(), tmp_path / "p.json"
    profile.save(path)
    assert profile.path == path
    back = load_profile(path)
    for f in fields(DeviceProfile):
        mine, theirs = getattr(profile, f.name), getattr(back, f.name)
        if isinstance(mine, np.ndarray):
            assert theirs.dtype == float and np.array_equal(mine, theirs), f.name
        elif f.name == "space":
            assert theirs.fingerprint == mine.fingerprint
        else:
            assert theirs == mine, f.name


def test_the_file_holds_every_key_a_reader_needs(tmp_path):
    profile, path = rich_profile(), tmp_path / "p.json"
    profile.latency_ms[0, 0] = 0.1234567
    profile.spread_ms[0, 0] = 0.7654321
    profile.save(path)
    data = json.loads(path.read_text())
    assert set(data) == {
        "schema_version", "kind_of_file", "name", "kind", "runtime", "precision", "batch", "space", "space_name",
        "fingerprint", "candidates", "latency_ms", "spread_ms", "fixed_ms", "calibration", "hardware",
        "resolved_from", "fixed_spread_ms", "measurement", "threads", "graph_optimization_level", "expected_error",
        "provenance",
    }  # fmt: skip
    assert data["kind_of_file"] == "device_profile" and data["schema_version"] == 1
    assert data["candidates"] == list(SPACE.candidate_names) and data["space_name"] == SPACE.name
    assert data["expected_error"] == profile.expected_error
    assert data["latency_ms"][0][0] == 0.123457 and data["spread_ms"][0][0] == 0.765432  # stored to the nanosecond


def test_fields_older_files_lack_take_their_defaults(tmp_path):
    path = tmp_path / "p.json"
    data = profile_dict()
    for key in ("precision", "batch", "threads", "graph_optimization_level", "provenance", "hardware", "spread_ms"):
        del data[key]
    for key in ("calibration", "fixed_spread_ms", "resolved_from"):
        del data[key]
    data["measurement"] = {"threads": 3}
    path.write_text(json.dumps(data))
    old = load_profile(path)
    assert (old.precision, old.batch, old.threads, old.graph_optimization_level) == ("fp32", 1, 3, None)
    assert (old.provenance, old.hardware, old.spread_ms, old.calibration) == ({}, {}, None, None)
    assert (old.fixed_spread_ms, old.resolved_from, old.path) == (None, None, path)
    data["measurement"] = {}
    path.write_text(json.dumps(data))
    assert load_profile(path).threads == 1


L, C = SPACE.num_layers, SPACE.num_candidates
ARRAY = f": field 'latency_ms' is not a [{L}][{C}] array of numbers"
VALUE = f": field 'latency_ms' holds a value that is not a number of ms in [0, {MAX_MS:g}]"
FIXED = f": field 'fixed_ms' must map part names to milliseconds in [0, {MAX_MS:g}]"
NUMBERS = ": field 'calibration' needs numbers 'scale' and 'offset_ms'"
RANGE = ": field 'calibration' needs a 'scale' in (0, 1000] and a finite 'offset_ms'"
MAPE = ": field 'measurement.validations' must be a list of records with a non-negative 'mape'"
ROWS = [[1.0] * C] * L


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"space": DELETE}, ": missing field 'space'"),
        ({"fingerprint": "0000"}, ": field 'fingerprint' does not match its 'space'"),
        ({"kind": DELETE}, ": missing field 'kind'"),
        ({"kind": "guessed"}, ": field 'kind' is 'guessed', expected one of measured, estimated"),
        ({"batch": 0}, ": field 'batch' is not a positive integer"),
        ({"batch": "2"}, ": field 'batch' is not a positive integer"),
        ({"batch": True}, ": field 'batch' is not a positive integer"),
        ({"name": DELETE}, ": missing field 'name'"),
        ({"name": ""}, ": field 'name' is not a non-empty string"),
        ({"name": 5}, ": field 'name' is not a non-empty string"),
        ({"runtime": "  "}, ": field 'runtime' is not a non-empty string"),
        ({"runtime": DELETE}, ": missing field 'runtime'"),
        ({"name": "cpu\x1b[31m"}, ": field 'name' holds control characters (terminal escapes)"),
        ({"latency_ms": DELETE}, ": missing field 'latency_ms'"),
        ({"latency_ms": [[1.0] * L] * C}, ARRAY),  # transposed
        ({"latency_ms": [[1.0] * C] * (L - 1) + [[1.0]]}, ARRAY),  # one short row
        ({"latency_ms": ["x" * C] * L}, ARRAY),  # rows that are not lists
        ({"latency_ms": "oops"}, ARRAY),
        ({"latency_ms": [[-1.0] + [1.0] * (C - 1)] + ROWS[1:]}, VALUE),
        ({"latency_ms": [[True] + [1.0] * (C - 1)] + ROWS[1:]}, VALUE),
        ({"latency_ms": [["1"] + [1.0] * (C - 1)] + ROWS[1:]}, VALUE),
        ({"latency_ms": [[MAX_MS * 1.01] + [1.0] * (C - 1)] + ROWS[1:]}, VALUE),
        ({"spread_ms": [[-1.0] * C] * L}, VALUE.replace("latency_ms", "spread_ms")),
        ({"fixed_ms": DELETE}, ": missing field 'fixed_ms'"),
        ({"fixed_ms": {"stem": -1}}, FIXED),
        ({"fixed_ms": [1.0]}, FIXED),
        ({"fixed_spread_ms": {"stem": "x"}}, FIXED.replace("fixed_ms", "fixed_spread_ms")),
        ({"calibration": {"scale": "x", "offset_ms": 0}}, NUMBERS),
        ({"calibration": {"scale": 1.0}}, NUMBERS),
        ({"calibration": {"scale": True, "offset_ms": 0}}, NUMBERS),
        ({"calibration": {"scale": 0, "offset_ms": 0}}, RANGE),
        ({"calibration": {"scale": 1000.5, "offset_ms": 0}}, RANGE),
        (
            {"calibration": {"scale": 1.0, "offset_ms": float("nan")}},
            " is not valid JSON: NaN is not a JSON number (JSON has no NaN or infinity)",
        ),
        ({"calibration": {"scale": 1.0, "offset_ms": MAX_MS * 1.01}}, RANGE),
        ({"threads": 0}, ": field 'threads' must be a positive integer, got 0"),
        ({"threads": "abc"}, ": field 'threads' must be a positive integer, got 'abc'"),
        ({"measurement": {"validations": "x"}}, MAPE),
        ({"measurement": {"validations": [{"mape": -1}]}}, MAPE),
        ({"measurement": {"validations": [5]}}, MAPE),
        ({"measurement": [1]}, MAPE),
        ({"schema_version": 99}, ": field 'schema_version' is 99, expected 1"),
        ({"hardware": ["cpu"]}, ": field 'hardware' is not an object"),
        ({"provenance": "x"}, ": field 'provenance' is not an object"),
        (
            {"hardware": {"anchor": {"expected_error": "10%"}}},
            ": field 'hardware.anchor.expected_error' is '10%', not a non-negative number",
        ),
        ({"hardware": {"anchor": [1]}}, ": field 'hardware.anchor' is not an object"),
        ({"expected_error": 100.5}, ": field 'expected_error' is 100.5, not a relative error in [0, 100]"),
        ({"expected_error": -0.1}, ": field 'expected_error' is -0.1, not a relative error in [0, 100]"),
        (
            {"hardware": {"few_shot": {"loo_mape": -0.1}}},
            ": field 'hardware.few_shot.loo_mape' is -0.1, not a non-negative number",
        ),
        ({"measurement": {"whole_network": "fast"}}, ": field 'measurement.whole_network' is not an object"),
        (
            {"measurement": {"whole_network": {"repeatability": [0.1]}}},
            ": field 'measurement.whole_network.repeatability' is [0.1], not a non-negative number",
        ),
    ],
)
def test_a_bad_field_gets_one_exact_line(tmp_path, changes, expected):
    assert refusal(tmp_path, profile_dict(**changes)) == expected


def test_a_space_that_is_not_a_space_says_why(tmp_path):
    assert refusal(tmp_path, profile_dict(space={"bogus": 1})).startswith(": field 'space' is not a valid space: ")


def test_a_nan_offset_is_refused_when_saving_too(tmp_path):
    """Files cannot carry NaN (the reader refuses it), but a profile built in memory can: save checks the range."""
    profile = replace(rich_profile(), calibration={"scale": 1.0, "offset_ms": float("nan")})
    with pytest.raises(SpecializeError, match=re.escape(RANGE)):
        profile.save(tmp_path / "p.json")


def test_bad_json_is_named(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(SpecializeError, match=f"^device profile file {path} is not valid JSON: "):
        load_profile(path)


def test_range_edges_are_inclusive_where_the_message_says(tmp_path):
    path = tmp_path / "p.json"
    edges = [
        {"latency_ms": [[0.0] + [1.0] * (C - 1)] + ROWS[1:]},  # 0 ms (a skip) and MAX_MS both allowed
        {"latency_ms": [[MAX_MS] + [1.0] * (C - 1)] + ROWS[1:]},
        {"calibration": {"scale": 1000.0, "offset_ms": 0.0}},
        {"calibration": {"scale": 0.5, "offset_ms": 0.0}},
        {"calibration": {"scale": 1.0, "offset_ms": MAX_MS}},
        {"fixed_ms": {"stem": 0, "head": MAX_MS}},
        {"expected_error": 100},
        {"expected_error": 0},
    ]
    for changes in edges:
        path.write_text(json.dumps(profile_dict(**changes)))
        load_profile(path)
    path.write_text(json.dumps(profile_dict(latency_ms=[[1, 2] + [3] * (C - 2)] * L)))
    assert load_profile(path).latency_ms.dtype == float  # integers in the file are milliseconds too


def fastest_allowed(data: dict) -> float:
    allowed = np.array(SPACE.allowed_mask(), dtype=bool)
    return float(np.where(allowed, np.array(data["latency_ms"]), np.inf).min(axis=1).sum())


def test_an_offset_that_makes_some_network_take_no_time_is_refused(tmp_path):
    """The check takes the fastest allowed network: a disallowed cheap cell must not count, and exactly 0 ms is
    refused as well as below."""
    data = profile_dict(fixed_ms={"stem": 0.0, "head": 0.0}, calibration=None)
    allowed = np.array(SPACE.allowed_mask(), dtype=bool)
    latency = np.where(allowed, 1.0 + np.arange(C) % 2, 0.0)  # the disallowed cells are the cheap ones
    assert not allowed.all()
    data["latency_ms"] = latency.tolist()
    fastest = fastest_allowed(data)
    data["calibration"] = {"scale": 1.0, "offset_ms": -fastest + 0.5}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    load_profile(path)  # fastest allowed network 0.5 ms: fine
    data["calibration"]["offset_ms"] = -fastest - 0.5
    expected = ": the fastest architecture would take -0.500 ms; latencies must be positive (check field 'calibration')"
    assert refusal(tmp_path, data) == expected
    zero = profile_dict(fixed_ms={"stem": 0.0}, calibration=None, latency_ms=[[0.0] * C] * L)
    assert refusal(tmp_path, zero).startswith(": the fastest architecture would take 0.000 ms")
    data["calibration"]["offset_ms"] = -MAX_MS  # in the field's range, but no network can take negative time
    assert refusal(tmp_path, data).startswith(": the fastest architecture would take -")
    slow_fixed = profile_dict(fixed_ms={"head": 5.0}, calibration=None, latency_ms=[[0.001] * C] * L)
    path.write_text(json.dumps(slow_fixed))
    load_profile(path)  # fixed parts larger than the blocks are fine


def test_the_offset_is_the_fixed_term_of_the_formula():
    profile = rich_profile()
    scale, offset = profile.calibration["scale"], profile.calibration["offset_ms"]
    assert profile.offset_ms() == pytest.approx(scale * sum(profile.fixed_ms.values()) + offset)


def test_a_profile_that_would_not_load_is_not_saved(tmp_path):
    profile, path = rich_profile(), tmp_path / "p.json"
    profile.kind = "guessed"
    with pytest.raises(SpecializeError) as info:
        profile.save(path)
    expected = f"device profile file {path}: field 'kind' is 'guessed', expected one of measured, estimated"
    assert str(info.value) == expected
    assert not path.exists() and profile.path is None


def test_the_command_that_profiles_here_repeats_the_setting():
    profile = rich_profile()
    option = space_option(SPACE)
    expected = f"specialize profile --name this-cpu --space {option} --batch 4 --threads 2 -o PROFILE.json"
    assert profile.profile_here_command() == expected
    plain = replace(profile, batch=1, threads=1)
    assert plain.profile_here_command() == f"specialize profile --name this-cpu --space {option} -o PROFILE.json"


def test_a_space_differing_in_the_classifier_keeps_everything_but_the_head():
    profile = rich_profile()
    three = SPACE.with_classes(("cat", "dog", "bird"))
    served = profile.for_space(three)
    assert served.measurement["head_repriced"].startswith("head priced for 3 classes from the measured 10-class head")
    assert {k: v for k, v in served.measurement.items() if k != "head_repriced"} == profile.measurement
    assert served.fixed_ms["stem"] == profile.fixed_ms["stem"] and served.fixed_ms["head"] < profile.fixed_ms["head"]
    headless = replace(profile, fixed_ms={"stem": 0.25})
    assert headless.for_space(three).fixed_ms == {"stem": 0.25, "head": 0.0}


def test_another_space_is_refused_naming_the_profile_and_both_spaces(tmp_path):
    profile = rich_profile()
    other = get_space("cifar10")
    with pytest.raises(SpecializeError) as info:
        profile.check_space(other)
    assert str(info.value).startswith(f"device profile {profile.name} is for space 'cifar10-depth' (fingerprint ")
    assert f"but space 'cifar10' (fingerprint {other.fingerprint}) was asked for" in str(info.value)
    profile.path = tmp_path / "p.json"
    with pytest.raises(SpecializeError, match=f"^device profile {profile.path} is for space"):
        profile.for_space(other)


def test_profile_from_dict_names_the_path_it_was_given(tmp_path):
    with pytest.raises(SpecializeError, match=f"^device profile file {tmp_path / 'x.json'}: missing field 'name'"):
        profile_from_dict(profile_dict(name=DELETE), tmp_path / "x.json")

"""Issue 12: bad options and corrupt files give one line on stderr and exit 2, never a traceback, never a
silent wrong answer, never a written output file. Hypothesis generates the inputs; each test stays a few seconds."""

from __future__ import annotations

import importlib.util
import io
import json
import warnings
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()
ARCH = ",".join(["k3e3"] * 12)
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=20 for a long hunt; the default keeps the file ~30 s
FAST = settings(max_examples=25 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(max_examples=8 * SCALE, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BOUND_OPTIONS = [
    f"--{side}-{stem}" for stem in ("latency", "flops", "params", "intensity", "peak-memory") for side in ("min", "max")
]
MARKUP = st.sampled_from(["[/]", "[/bold]", "[red]", "[bold", "]", "[", "\\[x]", "[link=x]"])


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_refused(result, absent: Path | None = None) -> str:
    """Exit 2, one line on stderr, nothing on stdout, no traceback, `absent` not written."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout.strip() == ""
    if absent is not None:
        assert not absent.exists()
    return result.stderr


def assert_clean(result) -> None:
    """Exit 0 with strict JSON on stdout, or a clean refusal."""
    if result.exit_code == 0:
        json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))
    else:
        assert_refused(result)


# -- options ------------------------------------------------------------------------------------------
numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(0, 99), st.integers(-(10**9), 10**9)),
)
units = st.sampled_from(["", "M", "k", "G", "T", "m", "ms", "us", "µs", "s", "B", "MiB", "GB", "x", "５", "0"])
bound_values = st.one_of(
    st.builds(lambda n, u: n + u, numbers, units),
    st.builds(lambda n, m, u: n + m + u, numbers, MARKUP, units),
    st.text(max_size=12),
)


@FAST
@given(option=st.sampled_from(BOUND_OPTIONS), value=bound_values)
def test_bound_options_never_traceback(option, value):
    """Every bound option: the search answers in strict JSON or refuses in one line."""
    assert_clean(invoke("--device", "jetson", option, value, "--json"))


@FAST
@given(value=st.text(max_size=10))
def test_device_and_table_text_refused(value):
    assert_refused(invoke("--device", value, "--max-flops", "1k"))
    if value.strip() != "default":
        assert_refused(invoke("--device", "jetson", "--table", value))


@FAST
@given(
    value=st.builds(
        lambda a, m, b: a + m + b,
        st.text("abc", max_size=3),
        MARKUP.filter(lambda m: "\\" not in m),
        st.text("xyz.", max_size=3),
    )
)
def test_markup_in_user_text_printed_literally(value):
    """Brackets in a path, a device name or a bound are never parsed as Rich markup."""
    assert value in assert_refused(invoke("--device", value, "--max-flops", "1k"))
    assert value in assert_refused(invoke("--device", "jetson", "--table", f"/nonexistent/{value}.json"))
    assert value in assert_refused(invoke("--device", "jetson", "--max-flops", f"3{value}"))


@FAST
@given(option=st.sampled_from(["--seed"]), value=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32)))
def test_seed_out_of_range(option, value):
    assert_refused(invoke("--device", "jetson", "--max-flops", "300M", option, value))
    assert_refused(invoke("pareto", "--objective", "macs", option, value))


def test_a_negative_sampling_seed_is_refused_before_any_work():
    """It reached numpy's generator (a ValueError traceback) once the data had been decoded."""
    assert "--seed" in assert_refused(invoke("table", "int8-check", "--seed", "-51693863"))


@FAST
@given(batch=st.integers(min_value=(1 << 20) + 1, max_value=10**30), dtype=st.integers(1, 4))
def test_cost_batch_overflow(batch, dtype):
    assert_refused(invoke("cost", "--arch", ARCH, "--batch", batch, "--dtype-bytes", dtype, "--json"))


@FAST
@given(dtype=st.integers(min_value=17, max_value=2**70))
def test_cost_dtype_overflow(dtype):
    assert_refused(invoke("cost", "--arch", ARCH, "--dtype-bytes", dtype, "--json"))


def test_cost_large_batch_is_exact():
    result = invoke("cost", "--arch", ARCH, "--batch", 1 << 20, "--json")
    data = json.loads(result.stdout)
    assert data["bytes"] > 0 and data["intensity"] > 0 and data["peak_activation_bytes"] > 0


candidate_names = st.one_of(
    st.builds(
        lambda k, e: f"k{k}e{e}",
        st.sampled_from(["03", "３", "٣", "+3", " 3", "3.0", "0"]),
        st.sampled_from(["3", "6"]),
    ),
    st.builds(lambda k, e: f"k{k}e{e}", st.sampled_from(["3", "5"]), st.sampled_from(["06", "６", "0", "-6"])),
)


@FAST
@given(name=candidate_names)
def test_candidate_names_ascii_no_leading_zero(name):
    assert_refused(invoke("cost", "--arch", ",".join([name] + ["k3e3"] * 11)))


TRAIN_BAD = {
    "--batch-size": ["0", "-1", "70000"],
    "--val-per-class": ["0", "-1"],
    "--finetune-epochs": ["nan", "inf", "-1", "-0.5"],
    "--lr": ["-1", "0", "nan", "inf", "-inf"],
    "--finetune-lr": ["nan", "-2"],
    "--threads": ["-1", "0"],
    "--resolution": ["-1", "0", "4", "99999"],
    "--calib-images": ["0", "-1"],
    "--seed": ["-1", str(2**40)],
    "--width": ["0", "1.5", "nan"],
    "--sample-ratio": ["0", "2", "nan"],
    "--epochs": ["-1"],
    "--weight-decay": ["nan", "-1"],
    "--warmup": ["-0.1", "1.5", "nan"],
    "--clip-grad": ["-1", "nan", "inf"],
    "--label-smoothing": ["1", "-0.1", "nan"],
    "--spread-samples": ["-1"],
    "--candidates-per-pass": ["0"],
    "--schedule": ["linear", "[/]"],
}


@FAST
@given(pair=st.sampled_from([(k, v) for k, vs in TRAIN_BAD.items() for v in vs]))
def test_train_options_refused_before_any_file(tmp_path, pair):
    option, value = pair
    out = tmp_path / f"run{abs(hash(pair))}"
    result = invoke("train", "--space", "cifar10", "--data", tmp_path / "no-data", "-o", out, option, value)
    assert option in assert_refused(result, absent=out)


@pytest.mark.parametrize("target", ["file", "/proc/run", "/proc/self/x/run"])
def test_train_output_not_a_directory(tmp_path, synthetic_data, target):
    out = tmp_path / "file" if target == "file" else Path(target)
    (tmp_path / "file").write_text("x")
    assert_refused(invoke("train", "--space", "cifar10", "--data", synthetic_data, "-o", out, "--epochs", "0"))


def test_pareto_generations_refused():
    assert_refused(invoke("pareto", "--objective", "macs", "--generations", "-5"))


# -- tables -------------------------------------------------------------------------------------------
def default_table() -> dict:
    """The embedded cifar10 table (the cases are written for its 12-layer space), without its weights."""
    from specialize.table import EMBEDDED_TABLES

    data = json.loads(EMBEDDED_TABLES["cifar10"].read_text())
    data["weights"] = None
    return data


bad_cells = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.lists(st.floats(0, 1), max_size=2),
    st.floats(min_value=1.0000001, allow_infinity=False, allow_nan=False),
    st.floats(max_value=-1e-9, allow_infinity=False, allow_nan=False),
    st.integers(min_value=2),
    st.integers(max_value=-1),
    st.just(1e308),
    st.sampled_from(["0.5", "55", "NaN"]),
)


def table_mutations():
    cell = st.builds(lambda r, c, v: ("cell", r, c, v), st.integers(0, 11), st.integers(0, 11), bad_cells)
    row = st.builds(lambda r, k: ("row", r, k), st.integers(0, 11), st.sampled_from(["pop", "append", "str"]))
    field = st.builds(
        lambda k, v: ("field", k, v),
        st.sampled_from(
            ["accuracy", "best_arch", "space", "fingerprint", "proxy", "results", "schema_version", "weights"]
        ),
        st.one_of(st.text(max_size=4), st.integers().filter(lambda i: i != 1), st.lists(st.integers(), max_size=2)),
    )
    return st.one_of(cell, row, field)


def mutate_table(data: dict, mutation) -> None:
    kind = mutation[0]
    if kind == "cell":
        data["accuracy"][mutation[1]][mutation[2]] = mutation[3]
    elif kind == "row":
        row = data["accuracy"][mutation[1]]
        {
            "pop": row.pop,
            "append": lambda: row.append(0.5),
            "str": lambda: data["accuracy"].__setitem__(mutation[1], "x"),
        }[mutation[2]]()
    else:
        data[mutation[1]] = mutation[2]


@FAST
@given(mutation=table_mutations())
def test_corrupt_tables_refused(tmp_path, mutation):
    data = default_table()
    mutate_table(data, mutation)
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    assert_refused(invoke("table", "show", "--table", path, "--json"))


@FEW
@given(cut=st.integers(1, 20000))
def test_truncated_table_refused(tmp_path, cut):
    text = json.dumps(default_table(), indent=1)
    path = tmp_path / "t.json"
    path.write_text(text[: max(0, len(text) - cut)])
    assert_refused(invoke("table", "show", "--table", path))


def test_deeply_nested_and_directory_tables(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    assert_refused(invoke("table", "show", "--table", path))
    assert "directory" in assert_refused(invoke("--device", "jetson", "--table", tmp_path))


def test_unreadable_files_named(tmp_path, monkeypatch):
    """The tests run as root, so reading is made to fail the way it does for another user."""
    table = tmp_path / "t.json"
    table.write_text(json.dumps(default_table()))
    real = Path.read_text

    def denied(self, *a, **k):
        if self == table:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", denied)
    assert str(table) in assert_refused(invoke("table", "show", "--table", table))


# -- profiles -----------------------------------------------------------------------------------------
def jetson_profile() -> dict:
    from hw_profiles import resolve_profile
    from specialize.space import get_space

    return resolve_profile("jetson", get_space("cifar10")).to_dict()


profile_mutations = st.one_of(
    st.builds(
        lambda r, c, v: ("latency_ms", r, c, v),
        st.integers(0, 11),
        st.integers(0, 11),
        bad_cells.filter(lambda v: not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1e7)),
    ),
    st.builds(
        lambda v: ("calibration", v),
        st.one_of(
            st.fixed_dictionaries({"scale": st.floats(allow_nan=True), "offset_ms": st.floats(max_value=-1000)}),
            st.fixed_dictionaries(
                {"scale": st.sampled_from([0, -1, "1", None, float("nan")]), "offset_ms": st.just(0.0)}
            ),
            st.text(max_size=3),
        ),
    ),
    st.builds(lambda v: ("batch", v), st.sampled_from([0, -1, "abc", 1.5, True, None])),
    st.builds(lambda v: ("fixed_ms", v), st.sampled_from([{"stem": -1}, {"stem": "x"}, [], "x", {"stem": 1e308}])),
    st.builds(lambda v: ("name", v), st.sampled_from(["", "   ", 5, None, ["x"]])),
)


@FAST
@given(mutation=profile_mutations)
def test_corrupt_profiles_refused(tmp_path, mutation):
    data = jetson_profile()
    if mutation[0] == "latency_ms":
        data["latency_ms"][mutation[1]][mutation[2]] = mutation[3]
    else:
        data[mutation[0]] = mutation[1]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    assert_refused(invoke("cost", "--arch", ARCH, "--profile", path, "--json"))


@FEW
@given(name=st.builds(lambda a, m, b: a + m + b, st.text("abc", max_size=3), MARKUP, st.text("xyz", max_size=3)))
def test_profile_names_print_literally(tmp_path, name):
    data = jetson_profile()
    data["name"] = name
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    result = invoke("--profile", path, "--table", "cifar10", "--max-flops", "300M")
    assert result.exit_code == 0, result.output
    assert name in result.stdout.replace("\n", "")


# -- weights and checkpoints --------------------------------------------------------------------------
def torch_bytes(payload) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def weights_payload():
    import torch

    from specialize.table import load_table

    return torch.load(load_table().weights_path(), map_location="cpu", weights_only=True)


weights_mutations = st.one_of(
    st.builds(
        lambda v: ("space", v),
        st.one_of(st.text(max_size=4), st.integers(), st.lists(st.integers(), max_size=2), st.just({"name": "x"})),
    ),
    st.builds(
        lambda v: ("state_dict", v),
        st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=3), st.just({"a": 1}), st.just({})),
    ),
    st.builds(lambda v: ("nan", v), st.sampled_from([math.nan, math.inf, -math.inf])),
    st.builds(lambda v: ("format", v), st.one_of(st.none(), st.text(max_size=3))),
)


@FEW
@given(mutation=weights_mutations)
def test_corrupt_weights_refused(tmp_path, weights_payload, mutation):
    import copy

    payload = copy.copy(weights_payload)
    payload["state_dict"] = dict(weights_payload["state_dict"])
    if mutation[0] == "nan":
        key = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
        payload["state_dict"][key] = payload["state_dict"][key].clone().fill_(mutation[1])
    else:
        payload[mutation[0]] = mutation[1]
    path, out = tmp_path / "w.pt", tmp_path / "m.onnx"
    path.write_bytes(torch_bytes(payload))
    assert_refused(invoke("export", "--space", "cifar10", "--arch", ARCH, "--weights", path, "-o", out), absent=out)


@FEW
@given(cut=st.integers(0, 10**7), junk=st.sampled_from([b"", b"hello", b"PK\x03\x04", b"\x80\x04N."]))
def test_truncated_weights_refused(tmp_path, weights_payload, cut, junk):
    data = torch_bytes(weights_payload)
    path, out = tmp_path / "w.pt", tmp_path / "m.onnx"
    path.write_bytes(junk if cut % 3 == 0 else data[: cut % len(data)])
    assert_refused(invoke("export", "--space", "cifar10", "--arch", ARCH, "--weights", path, "-o", out), absent=out)


def test_a_corrupt_weights_file_gets_its_one_line_and_no_torch_warning(tmp_path):
    """A 4-byte pickle header made torch's weights-only unpickler warn of protocol 4 on stderr before the error."""
    path, out = tmp_path / "w.pt", tmp_path / "m.onnx"
    path.write_bytes(b"\x80\x04N.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke("export", "--space", "cifar10", "--arch", ARCH, "--weights", path, "-o", out)
    assert "cannot be read as a weights-only checkpoint" in assert_refused(result, absent=out)
    assert [str(w.message) for w in caught] == []


TINY = [
    "--space",
    "cifar10",
    "--width",
    "0.25",
    "--resolution",
    "16",
    "--epochs",
    "1",
    "--val-per-class",
    "2",
    "--finetune-epochs",
    "0.1",
    "--batch-size",
    "16",
    "--calib-images",
    "10",
    "--spread-samples",
    "2",
]


@FEW
@given(
    content=st.one_of(
        st.sampled_from([b"", b"text", b"PK\x03\x04trunc"]),
        st.sampled_from(["no-net", "net-list", "state-junk", "code", "nan-net"]),
    )
)
def test_corrupt_checkpoints_refused(tmp_path, synthetic_data, content):
    import torch

    run = tmp_path / f"run{abs(hash(content))}"
    run.mkdir(exist_ok=True)
    good = {
        "config": {},
        "state_json": json.dumps({k: 0 for k in ("stage", "epoch", "layer", "chosen", "accuracy", "wall", "history")}),
        "net": {"w": torch.zeros(1)},
        "optimizer": {},
    }
    variants = {
        "no-net": {k: v for k, v in good.items() if k != "net"},
        "net-list": dict(good, net=[1]),
        "state-junk": dict(good, state_json="{"),
        "code": dict(good, net=Path("/")),
        "nan-net": dict(good, net={"w": torch.full((2,), math.nan)}),
    }
    (run / "checkpoint.pt").write_bytes(content if isinstance(content, bytes) else torch_bytes(variants[content]))
    assert_refused(invoke("train", *TINY, "--data", synthetic_data, "-o", run, "--resume"))
    assert not (run / "table.json").exists()


GOOD_STATE = {
    "stage": "finetune",
    "epoch": 4,
    "layer": 2,
    "chosen": ["k3e3", "k5e6"],
    "accuracy": [[0.5, 0.6], [0.7, 0.0]],
    "wall": {"meta": 10.0},
    "history": [{"stage": "meta", "epoch": 1}],
    "meta_test_accuracy": 0.8,
}


@pytest.mark.parametrize(
    "edit,said",
    [
        ({"epoch": -1}, "epoch' and 'layer' must be whole numbers"),
        ({"layer": "2"}, "epoch' and 'layer' must be whole numbers"),
        ({"layer": 3}, "chosen' must name one block per finished layer (3)"),
        ({"chosen": ["k3e3", 5]}, "chosen' must name one block per finished layer"),
        ({"accuracy": [[0.5, 5.0], [0.7, 0.0]]}, "rows must be lists of accuracies in [0, 1]"),
        ({"accuracy": [[0.5, -3.0], [0.7, 0.0]]}, "rows must be lists of accuracies in [0, 1]"),
        ({"accuracy": [[0.5, 0.6]]}, "accuracy' must hold one row per finished layer (2)"),
        ({"wall": {"meta": "long"}}, "wall' must map stages to seconds"),
        ({"history": "x"}, "history' must be a list of records"),
        ({"meta_test_accuracy": 87.5}, "meta_test_accuracy' must be an accuracy in [0, 1]"),
    ],
)
def test_edited_training_state_is_refused_on_resume(tmp_path, edit, said):
    import torch

    from specialize.errors import SpecializeError
    from supernet.checkpoint import read_checkpoint

    path = tmp_path / "checkpoint.pt"
    good = {"config": {}, "net": {"w": torch.zeros(1)}, "optimizer": {}}
    path.write_bytes(torch_bytes(dict(good, state_json=json.dumps(GOOD_STATE))))
    read_checkpoint(path)
    path.write_bytes(torch_bytes(dict(good, state_json=json.dumps({**GOOD_STATE, **edit}))))
    with pytest.raises(SpecializeError) as info:
        read_checkpoint(path)
    assert str(info.value).startswith(f"checkpoint file {path}: field 'state_json.") and said in str(info.value)


def test_resume_refuses_changed_settings(tmp_path, synthetic_data):
    """A resumed run with another --lr, --calib-images or --data would mix two configurations in one table."""
    from dataclasses import asdict

    from supernet.train_config import TrainConfig

    args = dict(zip(TINY[::2], TINY[1::2]), **{"--data": str(synthetic_data)})
    config = TrainConfig(
        space="cifar10",
        data=str(synthetic_data),
        width=0.25,
        resolution=16,
        epochs=1,
        val_per_class=2,
        finetune_epochs=0.1,
        batch_size=16,
        calib_images=10,
        spread_samples=2,
    )
    state = {"stage": "meta", "epoch": 0, "layer": 0, "chosen": [], "accuracy": [], "wall": {}, "history": []}
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(
        torch_bytes(
            {"config": asdict(config.with_recipe()), "state_json": json.dumps(state), "net": {}, "optimizer": {}}
        )
    )
    from supernet.data import make_synthetic_folder

    other = make_synthetic_folder(tmp_path / "other", classes=10, train_per_class=8, test_per_class=3, size=16)
    for option, value, key in (
        ("--lr", "0.2", "lr"),
        ("--calib-images", "7", "calib_images"),
        ("--data", str(other), "data"),
    ):
        changed = dict(args, **{option: value})
        result = invoke("train", *[x for kv in changed.items() for x in kv], "-o", run, "--resume")
        assert f"{key}=" in assert_refused(result)


# -- run directories ------------------------------------------------------------------------------------
def test_second_run_into_locked_directory_refused(tmp_path, synthetic_data):
    from supernet.run_dir import lock_run_dir, unlock

    run = tmp_path / "run"
    run.mkdir()
    fd = lock_run_dir(run)
    try:
        stderr = assert_refused(invoke("train", *TINY, "--data", synthetic_data, "-o", run))
        assert "another" in stderr and not (run / "log.jsonl").exists()
    finally:
        unlock(fd)


def test_resume_clears_leftovers_and_log_link_refused(tmp_path):
    from specialize.errors import SpecializeError
    from supernet.run_dir import clear_leftovers, open_log

    for name in (".checkpoint.pt.abc.tmp", ".weights.pt.x1.tmp", ".table.json.q.tmp"):
        (tmp_path / name).write_text("partial")
    (tmp_path / "keep.json").write_text("{}")
    assert len(clear_leftovers(tmp_path)) == 3 and [p.name for p in tmp_path.iterdir()] == ["keep.json"]
    target = tmp_path / "target"
    (tmp_path / "log.jsonl").symlink_to(target)
    with pytest.raises(SpecializeError):
        open_log(tmp_path)
    assert not target.exists()


def test_run_bundle_results_do_not_follow_links(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "run_bundle", Path(__file__).parents[1] / "hw_profiles" / "run_bundle.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    for planted in ("results.json", "results.json.tmp"):
        (tmp_path / planted).symlink_to(victim)
    module.write_new(str(tmp_path / "results.json"), "{}")
    assert victim.read_text() == "keep" and (tmp_path / "results.json").read_text() == "{}"


def test_tensorrt_export_refuses_to_overwrite_companions(tmp_path):
    (tmp_path / "x.onnx").write_text("mine")
    result = invoke("export", "--space", "cifar10", "--arch", ARCH, "--format", "tensorrt", "-o", tmp_path / "x.engine")
    assert "x.onnx" in assert_refused(result)
    assert (tmp_path / "x.onnx").read_text() == "mine"
    (tmp_path / "x.onnx").unlink()
    (tmp_path / "build_x_engine.sh").write_text("mine")  # the script is named after the model
    result = invoke("export", "--space", "cifar10", "--arch", ARCH, "--format", "tensorrt", "-o", tmp_path / "x.engine")
    assert "build_x_engine.sh" in assert_refused(result)
    assert (tmp_path / "build_x_engine.sh").read_text() == "mine"


def test_data_cache_keyed_by_content(tmp_path, monkeypatch):
    import os

    from supernet.data import load_dataset, make_synthetic_folder

    monkeypatch.setenv("SPECIALIZE_CACHE", str(tmp_path / "cache"))
    root = make_synthetic_folder(tmp_path / "d", classes=2, train_per_class=2, test_per_class=1, size=8)
    first = load_dataset(root)
    images = sorted((root / "train").rglob("*.*"))
    a, b = images[0], images[-1]
    stat_a, stat_b, bytes_a = a.stat(), b.stat(), a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(bytes_a)
    os.utime(a, ns=(stat_a.st_atime_ns, stat_a.st_mtime_ns))
    os.utime(b, ns=(stat_b.st_atime_ns, stat_b.st_mtime_ns))
    second = load_dataset(root)
    assert not (first.train_images == second.train_images).all()


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "meta.json").write_text(""),  # a full disk left it empty
        lambda d: (d / "meta.json").unlink(),  # a crash before the last write (old writers)
        lambda d: (d / "train_images.npy").write_bytes((d / "train_images.npy").read_bytes()[:100]),  # truncated
        lambda d: (d / "test_labels.npy").write_bytes(  # one byte flipped, header intact
            (d / "test_labels.npy").read_bytes()[:-1] + bytes([(d / "test_labels.npy").read_bytes()[-1] ^ 1])
        ),
        lambda d: (d / "test_images.npy").unlink(),
    ],
)
def test_a_damaged_dataset_cache_entry_is_rebuilt_and_said(tmp_path, monkeypatch, damage):
    import numpy as np

    from supernet.data import load_dataset, make_synthetic_folder

    monkeypatch.setenv("SPECIALIZE_CACHE", str(tmp_path / "cache"))
    root = make_synthetic_folder(tmp_path / "d", classes=2, train_per_class=3, test_per_class=2, size=8)
    first = load_dataset(root)
    [entry] = (tmp_path / "cache" / "datasets").iterdir()
    damage(entry)
    again = load_dataset(root)
    assert any("was damaged" in n for n in again.notes)
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        assert np.array_equal(getattr(first, key), getattr(again, key))
    clean = load_dataset(root)  # rebuilt whole: read back from the cache without a remark
    assert not any("damaged" in n or "cached in" in n for n in clean.notes)


def test_a_full_disk_costs_the_cache_not_the_run(tmp_path, monkeypatch):
    import errno

    from supernet import data

    monkeypatch.setenv("SPECIALIZE_CACHE", str(tmp_path / "cache"))
    root = data.make_synthetic_folder(tmp_path / "d", classes=2, train_per_class=2, test_per_class=1, size=8)

    def full(path, value):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(data.np, "save", full)
    loaded = data.load_dataset(root)
    assert len(loaded.train_labels) == 4 and any("not cached (No space left on device)" in n for n in loaded.notes)
    assert list((tmp_path / "cache" / "datasets").iterdir()) == []  # no half-written entry left behind


def test_a_writer_killed_mid_write_leaves_nothing_the_next_write_keeps(tmp_path):
    import os

    from specialize.fileio import atomic_write_bytes

    dead = tmp_path / ".m.onnx.999999999.abcd1234.tmp"  # no such process
    live = tmp_path / f".m.onnx.{os.getpid()}.efgh5678.tmp"  # a writer still at work
    other = tmp_path / ".n.onnx.999999999.abcd1234.tmp"  # another file's
    for path in (dead, live, other):
        path.write_bytes(b"half")
    atomic_write_bytes(tmp_path / "m.onnx", b"whole")
    assert (tmp_path / "m.onnx").read_bytes() == b"whole"
    assert not dead.exists() and live.exists() and other.exists()


def test_a_name_too_long_for_its_temporary_is_refused_before_any_work(tmp_path):
    name = "m" * 240 + ".onnx"
    result = invoke("export", "--space", "cifar10", "--arch", ARCH, "-o", tmp_path / name)
    assert "its file name is 245 bytes" in assert_refused(result)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_training_run_leaves_no_run_directory(tmp_path):
    data = tmp_path / "bad"
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (data / split / cls).mkdir(parents=True)
            (data / split / cls / "x.jpg").write_text("not an image")
    run = tmp_path / "run"
    result = invoke("train", "--space", "cifar10", "--data", data, "-o", run, "--epochs", "1")
    assert "unreadable image" in assert_refused(result) and "0x" not in result.stderr
    assert not run.exists()
    run.mkdir()
    (run / "mine.txt").write_text("keep")
    assert_refused(invoke("train", "--space", "cifar10", "--data", data, "-o", run, "--epochs", "1"))
    assert (run / "mine.txt").read_text() == "keep"  # a directory the user made stays


# -- bundles -------------------------------------------------------------------------------------------
def write_bundle_files(root: Path, manifest_edit, results_edit) -> Path:
    from hw_profiles.workloads import space_workloads
    from specialize.space import get_space

    space = get_space("cifar10")
    entries = [{"key": w.key, "file": f"onnx/{i}.onnx", "arch": None} for i, w in enumerate(space_workloads(space, 1))]
    manifest = {
        "schema_version": 1,
        "space": space.to_dict(),
        "fingerprint": space.fingerprint,
        "batch": 1,
        "entries": entries,
    }
    results = {
        "schema_version": 1,
        "name": "dev",
        "runner": "onnxruntime",
        "results": {e["key"]: {"median_ms": 0.5, "iqr_ms": 0.01, "samples": 9} for e in entries},
    }
    manifest_edit(manifest)
    results_edit(results)
    root.mkdir(exist_ok=True)
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "results.json").write_text(json.dumps(results))
    return root


def _set_key(data, key, value):
    data[key] = value


bundle_mutations = st.one_of(
    st.builds(
        lambda k, v: ("manifest", lambda m: _set_key(m, k, v)),
        st.sampled_from(["entries", "batch", "space"]),
        st.sampled_from(["x", "abc", 0, -1, None, [1], {"a": 1}]),
    ),
    st.builds(lambda i: ("manifest", lambda m: m["entries"][i % len(m["entries"])].pop("key")), st.integers(0, 200)),
    st.builds(lambda i: ("manifest", lambda m: m.pop("entries")), st.just(0)),
    st.builds(
        lambda f, v: ("results", lambda r: r["results"]["stem"].__setitem__(f, v)),
        st.sampled_from(["median_ms", "iqr_ms", "samples"]),
        st.sampled_from([math.nan, math.inf, -5.0, "x", None, 0]),
    ),
    st.builds(lambda v: ("results", lambda r: _set_key(r, "results", v)), st.sampled_from(["x", [], None])),
    st.builds(
        lambda k, v: ("results", lambda r: _set_key(r, k, v)),
        st.sampled_from(["threads", "precision", "runner", "device_name"]),
        st.sampled_from(["abc", 10**400, 0, -1, 1.5, True, [1], {"a": 1}, "int4"]),
    ),
)


@FAST
@given(mutation=bundle_mutations)
def test_corrupt_bundles_refused(tmp_path, mutation):
    where, edit = mutation
    root = write_bundle_files(
        tmp_path / "b",
        edit if where == "manifest" else (lambda m: None),
        edit if where == "results" else (lambda r: None),
    )
    out = tmp_path / "p.json"
    result = invoke("profile", "import", root, "-o", out)
    if result.exit_code == 0:  # a zero iqr, samples-as-int or text settings can be valid: then the profile loads
        out.unlink()
        return
    assert_refused(result, absent=out)


@pytest.mark.parametrize(
    "key,value,said",
    [
        ("threads", "abc", "field 'threads' is 'abc', not a whole number 1..65536"),
        ("threads", 10**400, "not a whole number 1..65536"),
        ("threads", 0, "field 'threads' is 0, not a whole number 1..65536"),
        ("precision", "int4", "field 'precision' is 'int4'; expected one of fp32, fp16, int8"),
        ("runner", ["trtexec"], "field 'runner' is not text"),
    ],
)
def test_bundle_run_settings_are_checked(tmp_path, key, value, said):
    root = write_bundle_files(tmp_path / "b", lambda m: None, lambda r: _set_key(r, key, value))
    out = tmp_path / "p.json"
    assert said in assert_refused(invoke("profile", "import", root, "-o", out), absent=out)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_numbers_are_refused_by_every_reader(tmp_path, constant):
    from hw_profiles import resolve_profile
    from specialize.space import get_space

    text = json.dumps(resolve_profile("jetson", get_space("cifar10")).to_dict())
    path = tmp_path / "p.json"
    path.write_text(text.replace('"batch": 1', f'"batch": {constant}', 1))
    said = assert_refused(invoke("--profile", path, "--max-flops", "45M"))
    assert f"is not valid JSON: {constant.lstrip('-')}" in said or f"{constant} is not a JSON number" in said


def test_profile_bundle_output_must_be_a_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    assert "not a directory" in assert_refused(invoke("profile", "bundle", "--space", "cifar10", "-o", tmp_path / "f"))


# -- the benchmark's fixed list -------------------------------------------------------------------------
def test_hardening_benchmark_all_clean(tmp_path, synthetic_data):
    spec = importlib.util.spec_from_file_location(
        "hardening", Path(__file__).parents[1] / "benchmarks" / "hardening.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    fx = bench.Fixtures(tmp_path)
    verdicts = {}
    for kind, name, argv, options in bench.cases(fx):
        argv = [a.replace("{data}", str(synthetic_data)) for a in argv]
        verdicts[name] = bench.judge(runner, kind, argv, options)[0]
    for name, argv, expected in bench.ENCODING_CASES:
        verdicts[name] = bench.run_with_ascii_output(argv, expected)
    assert {n: v for n, v in verdicts.items() if v != "clean"} == {}


# -- every option of every command ----------------------------------------------------------------------
def _commands() -> dict[str, list[str]]:
    """Every command's option flags, read from the CLI itself (a new option is fuzzed without editing this file)."""
    import typer.main

    root = typer.main.get_command(app)
    out = {"": [o for p in root.params for o in p.opts if o.startswith("--")]}

    def walk(group, prefix):
        for name, cmd in getattr(group, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            out[path] = [o for p in cmd.params for o in p.opts if o.startswith("--")]
            walk(cmd, path)

    walk(root, "")
    return out


# Base arguments that make each command fail fast after parsing (infeasible bounds, missing data, no output
# directory), so every generated value is parsed and checked but no long job starts.
CHEAP = {
    "": ["--max-flops", "1k"],
    "pareto": ["--max-flops", "1k"],
    "train": ["--data", "/nonexistent", "-o", "/nonexistent/r"],
    "export": ["-o", "/nonexistent/m.onnx"],
    "profile": ["-o", "/nonexistent/p.json"],
    "profile bundle": ["-o", "/proc/nonexistent"],
    "profile import": ["/nonexistent"],
    "profile validate": ["-p", "/nonexistent"],
    "table validate": ["--data", "/nonexistent"],
    "table int8-check": ["--data", "/nonexistent"],  # else it measures the default table on its data where that exists
    "table refit": ["--data", "/nonexistent"],
    "search": ["--data", "/nonexistent", "--max-flops", "1k"],
}
any_value = st.one_of(
    numbers,
    st.builds(lambda n, m: n + m, numbers, MARKUP),
    st.text(max_size=8),
    MARKUP,
    st.sampled_from(["-1", "0", "nan", "inf", "1e999999999", "99999999999999999999", "default", ""]),
)


@settings(max_examples=60 * SCALE, deadline=None)
@given(data=st.data())
def test_every_option_parses_or_refuses(data):
    commands = _commands()
    command = data.draw(st.sampled_from(sorted(c for c in commands if commands[c] and c not in ("devices", "spaces"))))
    flag = data.draw(
        st.sampled_from(
            sorted(
                set(commands[command]) - {"--help", "--json", "--resume", "--force", "--calibrate", "--per-candidate"}
            )
        )
    )
    value = data.draw(any_value)
    result = invoke(*command.split(), *CHEAP.get(command, []), flag, value)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        command,
        flag,
        value,
        repr(result.exception),
    )
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, (
            command,
            flag,
            value,
            result.output,
        )


def test_outputs_never_replace_a_device_or_pipe(tmp_path):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = invoke("export", "--space", "cifar10", "--arch", ARCH, "--untrained", "-o", fifo)
    assert "not a regular file" in assert_refused(result)
    assert fifo.is_fifo()


def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path):
    import shutil

    from specialize.table import resolve_table_path

    table = tmp_path / "t.json"
    shutil.copyfile(resolve_table_path("cifar10"), table)
    before = table.read_bytes()
    assert "destroy the input" in assert_refused(invoke("--table", table, "--export", table))
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not really weights")
    assert "destroy the input" in assert_refused(
        invoke("export", "--space", "cifar10", "--arch", ARCH, "--weights", weights, "-o", weights)
    )
    assert table.read_bytes() == before and weights.read_bytes() == b"not really weights"
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "results.json").write_text("{}")
    assert "destroy the input" in assert_refused(invoke("profile", "import", bundle, "-o", bundle / "results.json"))
    assert (bundle / "results.json").read_text() == "{}"


def test_export_refuses_data_of_other_classes_and_weights_the_table_did_not_record(tmp_path, deploy_run):
    from specialize.table import load_table

    import shutil

    from supernet.data import make_synthetic_folder

    table = deploy_run / "table.json"
    arch = load_table(table).best_arch
    other = make_synthetic_folder(tmp_path / "three", classes=3, train_per_class=4, test_per_class=2, size=16)
    said = assert_refused(
        invoke(
            "export",
            "--space",
            "test-tiny",
            "--arch",
            arch,
            "--weights",
            table,
            "--data",
            other,
            "-o",
            tmp_path / "a.onnx",
        ),
        absent=tmp_path / "a.onnx",
    )
    assert "has classes class0, class1, class2" in said and said.rstrip().endswith(
        "recalibrating on it or measuring on it would mean nothing; give data with the model's classes "
        "(or --no-recalibrate without --data)"
    )
    copy = tmp_path / "copy"
    shutil.copytree(deploy_run, copy)
    weights = copy / load_table(copy / "table.json").weights["file"]
    weights.write_bytes(weights.read_bytes()[:-8] + b"12345678")  # other weights beside a copy of the table
    said = assert_refused(
        invoke(
            "export",
            "--space",
            "test-tiny",
            "--arch",
            arch,
            "--weights",
            copy / "table.json",
            "-o",
            tmp_path / "b.onnx",
        ),
        absent=tmp_path / "b.onnx",
    )
    assert "is not the one accuracy table" in said


@pytest.mark.parametrize("limit", ["-1", "nan", "inf", "0"])
def test_a_time_limit_out_of_range_is_refused(limit):
    assert "time limit" in assert_refused(invoke("--time-limit", limit))


def test_a_device_and_a_profile_of_another_device_are_refused():
    profile = Path(__file__).resolve().parents[1] / "hw_profiles/data/this-cpu-onnxruntime.cifar10.json"
    assert "disagree" in assert_refused(invoke("--device", "jetson", "--table", "cifar10", "--profile", profile))
    assert invoke("--device", "this-cpu", "--table", "cifar10", "--profile", profile).exit_code == 0


def test_terminal_escapes_in_files_are_refused_not_printed(tmp_path):
    """A name from a file that holds an escape sequence would reach the terminal as a command."""
    import shutil

    from specialize.table import resolve_table_path

    source = Path(__file__).resolve().parents[1] / "hw_profiles/data/this-cpu-onnxruntime.cifar10.json"
    data = json.loads(source.read_text())
    data["name"] = "cpu\x1b]0;pwned\x07"
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps(data))
    said = assert_refused(invoke("--profile", profile))
    assert "control characters" in said and "\x1b" not in said
    table = json.loads(Path(resolve_table_path("cifar10")).read_text())
    table["space"]["name"] = "cifar10\x1b[2J"
    (tmp_path / "t.json").write_text(json.dumps(table))
    shutil.copyfile(
        Path(resolve_table_path("cifar10")).with_name("cifar10.weights.pt"), tmp_path / "cifar10.weights.pt"
    )
    said = assert_refused(invoke("--table", tmp_path / "t.json"))
    assert "printable" in said and "\x1b" not in said


def test_a_huge_batch_and_a_decompression_bomb_are_refused_before_allocating(tmp_path, monkeypatch):
    from PIL import Image

    from supernet.data import make_synthetic_folder

    said = assert_refused(invoke("profile", "bundle", "--space", "cifar10", "--batch", "20000", "-o", tmp_path / "b"))
    assert "GiB of activations" in said and not (tmp_path / "b" / "onnx").exists()
    said = assert_refused(
        invoke("profile", "--name", "x", "--space", "cifar10", "--batch", "20000", "-o", tmp_path / "p.json")
    )
    assert "GiB of activations" in said
    root = make_synthetic_folder(tmp_path / "d", classes=2, train_per_class=2, test_per_class=1, size=16)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # a 16x16 image now counts as a bomb (over 2 x 50 pixels)
    said = assert_refused(invoke("table", "validate", "--data", root, "--samples", "2"))
    assert "too large to decode safely" in said


def test_a_small_weights_file_declaring_a_huge_space_is_refused_before_building(tmp_path):
    """2 KB declaring 8,000-channel layers used to allocate gigabytes building the supernet before the shapes
    were compared; the tensors it holds are counted first."""
    import resource

    import torch

    from specialize.errors import SpecializeError
    from specialize.space import get_space
    from supernet.checkpoint import WEIGHTS_FORMAT, load_supernet

    space = get_space("cifar10").to_dict()
    space["head_channels"] = 8000
    for layer in space["layers"]:
        layer["in_channels"] = layer["out_channels"] = 1500
    space["first_block_channels"] = 1500
    path = tmp_path / "w.pt"
    path.write_bytes(torch_bytes({"format": WEIGHTS_FORMAT, "space": space, "state_dict": {"w": torch.zeros(4)}}))
    assert path.stat().st_size < 10_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SpecializeError, match="holds 4 numbers, and field 'space' needs at least"):
        load_supernet(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: no gigabytes allocated


def test_a_huge_image_header_and_a_huge_archive_member_are_refused_before_reading(tmp_path, monkeypatch):
    """A 100-byte PNG declaring 9000 x 9000 would decode to 243 MB in RGB; an archive member is sized from its header.
    Both are refused before any pixel or byte of them is read."""
    import io
    import resource
    import tarfile

    from supernet import data as data_module
    from supernet.data import make_synthetic_folder, png_declaring

    root = make_synthetic_folder(tmp_path / "d", classes=2, train_per_class=2, test_per_class=1, size=16)
    bomb = next((root / "train").rglob("*.png"), None) or next((root / "train").rglob("*.*"))
    bomb.write_bytes(png_declaring(9000, 9000))  # under Pillow's own bomb limit, over ours
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    said = assert_refused(invoke("table", "validate", "--data", root, "--samples", "2"))
    assert "too large to decode safely" in said and bomb.name in said
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB: nothing near 588 MB

    monkeypatch.setattr(data_module, "MAX_IMAGE_FILE_BYTES", 4096)
    archive = tmp_path / "big.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path != bomb:
                tar.add(path, arcname=str(path.relative_to(tmp_path)))
        member = tarfile.TarInfo(str(bomb.relative_to(tmp_path)))
        member.size = 8192
        tar.addfile(member, io.BytesIO(b"\0" * 8192))
    said = assert_refused(invoke("table", "validate", "--data", archive, "--samples", "2"))
    assert "8,192 bytes, over the 4,096-byte limit for one image file" in said
    big = tmp_path / "e"
    make_synthetic_folder(big, classes=2, train_per_class=2, test_per_class=1, size=16)
    next((big / "test").rglob("*.*")).write_bytes(b"\0" * 8192)
    assert "limit for one image file" in assert_refused(invoke("table", "validate", "--data", big, "--samples", "2"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@FAST
@given(
    accuracies=st.dictionaries(st.sampled_from(["c0r0s0e1", "x"]), json_values, max_size=2) | json_values,
    key=json_values,
)
def test_proxy_check_checkpoints_load_or_refuse_naming_the_field(tmp_path_factory, accuracies, key):
    """Whatever a proxy-check checkpoint holds, reading it gives accuracies in [0, 1] or one named refusal."""
    from specialize.errors import SpecializeError
    from supernet.proxy_check import read_checkpoint

    path = tmp_path_factory.mktemp("pc") / "check.json"
    path.write_text(json.dumps({"key": key, "accuracies": accuracies}))
    try:
        saved = read_checkpoint(path)
    except SpecializeError as exc:
        assert "'accuracies' missing or malformed" in str(exc)
        return
    assert all(0 <= a <= 1 for values in saved["accuracies"].values() for a in values)


@FAST
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=5),
    dtype=st.sampled_from(["uint8", "float32", "int64", "bool"]),
    name=st.sampled_from(["images", "other"]),
)
def test_calibration_files_load_or_refuse_naming_the_field(tmp_path_factory, shape, dtype, name):
    """A calibration file (the npz shipped beside weights) of any array gives uint8 [N, H, W, 3] batches or one
    named refusal."""
    import numpy as np

    from specialize.errors import SpecializeError
    from supernet.export import calibration_file_batches

    path = tmp_path_factory.mktemp("cal") / "c.npz"
    np.savez(path, **{name: np.zeros(shape, dtype=dtype)})
    try:
        batches = calibration_file_batches(path, 8)
    except SpecializeError as exc:
        assert f"calibration file {path}: field 'images'" in str(exc)
        return
    assert batches and all(tuple(b.shape[1:]) == (3, 8, 8) for b in batches)


@FAST
@given(field=st.sampled_from(sorted(GOOD_STATE)), value=json_values)
def test_any_edit_of_the_training_state_resumes_valid_or_is_refused_naming_it(tmp_path_factory, field, value):
    """Generated from the state's own fields: any JSON value in any field either reads back as a state the
    trainer can use (whole-number counters, accuracies in [0, 1]) or is refused naming `state_json.<field>`."""
    import torch

    from specialize.errors import SpecializeError
    from supernet.checkpoint import read_checkpoint

    path = tmp_path_factory.mktemp("state") / "checkpoint.pt"
    good = {"config": {}, "net": {"w": torch.zeros(1)}, "optimizer": {}}
    path.write_bytes(torch_bytes(dict(good, state_json=json.dumps({**GOOD_STATE, field: value}))))
    try:
        _, state = read_checkpoint(path)
    except SpecializeError as exc:
        assert str(exc).startswith(f"checkpoint file {path}: field 'state_json")
        return
    assert type(state["epoch"]) is int and type(state["layer"]) is int and state["layer"] == len(state["chosen"])
    assert all(0 <= a <= 1 for row in state["accuracy"] for a in row)
    assert {"meta", "finetune"} <= set(state["wall"])  # the trainer adds to both (an empty 'wall' was a KeyError)


@pytest.mark.parametrize(
    "args",
    [
        ["table", "refit", "--table", "default"],
        ["table", "int8-check", "--record", "--data", "/nonexistent"],
        ["table", "refit", "--table", "cifar10"],
    ],
)
def test_commands_that_rewrite_a_table_refuse_an_embedded_tables_name(args):
    """`--table default` (or `cifar10`) is a table inside the package: a command that rewrites its table in place
    refuses the name (a fuzzed `table refit --table default` once rewrote the shipped file) and says how to
    consent."""
    from specialize.table import load_table

    name = args[args.index("--table") + 1] if "--table" in args else "default"
    shipped = load_table(name).path
    before = shipped.read_bytes()
    result = invoke(*args)
    assert result.exit_code == 2 and f"name its file to rewrite it: --table {shipped}" in result.stderr
    assert f"`--table {name}` is the one inside the package" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and shipped.read_bytes() == before

"""`specialize --device ... --max-flops ...` and `specialize pareto`: output, JSON, exit codes.

Plumbing tests use a table file of random accuracies; end-to-end tests use the `tiny_table` fixture
(a table made by the training command on tiny synthetic data) or the embedded default table, and
skip when neither exists yet.
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from specialize.space import get_space
from specialize.table import DEFAULT_TABLE, AccuracyTable

runner = CliRunner()
JSON_KEYS = {
    "arch",
    "space",
    "device",
    "macs",
    "params",
    "latency_ms",
    "intensity",
    "predicted_accuracy",
    "optimality_gap",
    "search_seconds",
}


@pytest.fixture(scope="module")
def random_table_file(tmp_path_factory) -> str:
    space = get_space("cifar10")
    acc = np.random.default_rng(0).uniform(0.6, 0.9, (space.num_layers, space.num_candidates))
    path = tmp_path_factory.mktemp("tables") / "random.table.json"
    AccuracyTable(space=space, accuracy=acc, best_arch=str(space.largest_arch())).save(path)
    return str(path)


@pytest.fixture
def real_table(request) -> str:
    try:
        return str(request.getfixturevalue("tiny_table"))
    except pytest.FixtureLookupError:
        if DEFAULT_TABLE.is_file():
            return "default"
        pytest.skip(
            "no trained table yet: tests/conftest.py has no tiny_table fixture and the default table is missing"
        )


def run(*args):
    return runner.invoke(app, list(args))


def test_json_output_has_the_documented_keys(random_table_file):
    done = run("--table", random_table_file, "--device", "jetson", "--max-flops", "45M", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert JSON_KEYS <= set(data) and data["macs"] <= 45e6 and data["latency_ms"] > 0
    assert data["device_kind"] in ("measured", "estimated")


def test_rich_output_shows_blocks_bounds_and_gap(random_table_file):
    done = run("--table", random_table_file, "--max-params", "1.5M", "--min-intensity", "6")
    assert done.exit_code == 0, done.output
    for words in (
        "layer",
        "predicted accuracy",
        "MACs",
        "params",
        "intensity",
        "<= 1.5M",
        ">= 6",
        "answer: ga's, heuristic",
        "gap",
    ):
        assert words in done.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (("--max-flops", "10M"), "--max-flops 10M is infeasible: the smallest MACs in space cifar10 is 32.77M"),
        (("--max-flops", "30m"), "ambiguous"),
        (("--max-latency", "2ms"), "needs a device"),
        (
            ("--strategy", "magic", "--max-flops", "40M"),
            "unknown strategy 'magic'; known strategies: econas, epnas, exact, ga, pnas, random",
        ),
        (("--solver", "magic", "--max-flops", "40M"), "unknown strategy 'magic'"),
        (("--device", "no-such-device"), "no-such-device"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(random_table_file, args, words):
    done = run("--table", random_table_file, *args)
    assert done.exit_code == 2
    assert words in done.stderr and "Traceback" not in done.output and len(done.stderr.strip().splitlines()) == 1


def test_bare_command_prints_help():
    done = run()
    assert done.exit_code == 0 and "Usage" in done.stdout


def test_pareto_writes_front_json_and_plot(random_table_file, tmp_path):
    out, png = tmp_path / "front.json", tmp_path / "front.png"
    done = run(
        "pareto",
        "--objective",
        "macs",
        "--table",
        random_table_file,
        "--generations",
        "20",
        "-o",
        str(out),
        "--plot",
        str(png),
    )
    assert done.exit_code == 0, done.output
    front = json.loads(out.read_text())
    assert front["objective"] == "macs" and len(front["points"]) >= 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_end_to_end_on_a_trained_table(real_table):
    done = run("--table", real_table, "--device", "jetson", "--max-flops", "300M", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["space"] == "cifar10" and data["optimality_gap"] >= 0 and 0 <= data["predicted_accuracy"] <= 1


def test_export_writes_the_chosen_subnetwork(deploy_run, tmp_path):
    out = tmp_path / "sub.onnx"
    done = run("--table", str(deploy_run / "table.json"), "--max-flops", "1G", "--export", str(out))
    assert done.exit_code == 0, done.output
    assert out.stat().st_size > 0 and "exported" in done.stdout and "measured" in done.stdout


@pytest.mark.parametrize("command", [(), ("pareto",)])
def test_every_bound_option_is_generated_from_the_metric_registry(command, random_table_file):
    from specialize.search.constraints import BOUND_OPTIONS

    done = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert all(f"--{name.replace('_', '-')}" in done.stdout for name in BOUND_OPTIONS)
    args = ("--objective", "macs", "--generations", "5") if command else ()
    done = run(
        *command, "--table", random_table_file, *args, "--min-flops", "40M", "--max-peak-memory", "2MiB", "--json"
    )
    assert done.exit_code == 0, done.output
    bounds = {b["metric"]: b for b in json.loads(done.stdout)["bounds"]}
    assert bounds["macs"]["lower"] == 40e6 and bounds["peak_activation_bytes"]["upper"] == 2 * 2**20


@pytest.mark.parametrize(
    "args", [("--max-flops", "40M", "--max-params", "1.8M"), ("--min-flops", "46061312", "--max-flops", "46061312")]
)
def test_json_stdout_is_only_json_even_when_highs_solves(random_table_file, args):
    """A fresh process, so output written by HiGHS's C++ code to file descriptor 1 would be caught too."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "--table", random_table_file, "--device", "jetson", *args, "--json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["exact_seconds"] >= 0 and data["optimum_status"] in ("optimal", "not proven")


def test_shared_options_keep_their_help_and_short_flags():
    """The options declared once for the main command and pareto keep their help and -d through bound_options."""
    for args in (["--help"], ["pareto", "--help"]):
        out = CliRunner().invoke(app, args, env={"COLUMNS": "200"}).stdout
        assert "-d" in out and "device name (e.g. jetson)" in out and "batch size the latency is for" in out

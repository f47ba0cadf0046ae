"""The one runtime layer: the standalone bundle runner carries runtime.py's protocol verbatim, and
every onnxruntime session in the project is made by `supernet.sessions.ort_session`."""

import ast
import importlib.util
import inspect
from pathlib import Path

import pytest

from hw_profiles import runtime
from hw_profiles.bundle import RUNNER

ROOT = Path(__file__).resolve().parents[1]


def load_runner():
    spec = importlib.util.spec_from_file_location("run_bundle_under_test", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", runtime.SHARED)
def test_runner_functions_are_verbatim_copies(name):
    assert inspect.getsource(getattr(load_runner(), name)) == inspect.getsource(getattr(runtime, name))


@pytest.mark.parametrize("name", runtime.PROTOCOL_CONSTANTS)
def test_runner_protocol_constants_match(name):
    assert getattr(load_runner(), name) == getattr(runtime, name)


def test_runner_imports_nothing_from_this_package():
    tree = ast.parse(RUNNER.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"hw_profiles", "specialize", "supernet", "cli", "torch"}


def test_protocol_defaults_are_the_constants():
    protocol = runtime.Protocol()
    assert (
        protocol.warmup_s,
        protocol.sample_s,
        protocol.repeats,
        protocol.budget_s,
        protocol.rel_iqr_max,
        protocol.passes,
        protocol.min_samples,
    ) == (
        runtime.WARMUP_S,
        runtime.SAMPLE_S,
        runtime.REPEATS,
        runtime.BUDGET_S,
        runtime.REL_IQR_MAX,
        runtime.PASSES,
        runtime.MIN_SAMPLES,
    )


def test_only_runtime_py_creates_onnxruntime_sessions():
    makers = []
    for path in [
        *ROOT.glob("hw_profiles/*.py"),
        *ROOT.glob("supernet/*.py"),
        *ROOT.glob("cli/*.py"),
        *ROOT.glob("specialize/**/*.py"),
        *ROOT.glob("benchmarks/*.py"),
    ]:
        if "InferenceSession(" in path.read_text() and path.name not in ("sessions.py", "run_bundle.py"):
            makers.append(str(path.relative_to(ROOT)))
    assert makers == []


def test_deployment_protocol_times_single_runs():
    calls = []
    timing = runtime.time_runs(
        lambda: calls.append(1), runtime.wall_clock, runtime.deployment_protocol(runs=7, warmup_s=0.0)
    )
    assert timing.samples == 7 and timing.runs_per_sample == 1 and len(calls) == 3 + 1 + 7


def test_pick_prefers_the_lowest_steady_median():
    steady, fast_noisy = runtime.Timing(2.0, 0.1, 5, 1), runtime.Timing(1.0, 0.9, 5, 1)
    assert runtime.pick_timing([steady, fast_noisy], 0.1) == steady
    assert runtime.pick_timing([fast_noisy], 0.1) == fast_noisy


def test_unknown_graph_optimization_level_lists_the_valid_ones():
    with pytest.raises(runtime.SpecializeError, match="extended"):
        runtime.get_runtime("onnxruntime", graph_optimization_level="max")

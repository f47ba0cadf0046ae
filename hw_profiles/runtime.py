"""The one runtime layer: sessions and timing on onnxruntime (CPU), torch-cuda and TensorRT.

Everything that times an onnxruntime session or a TensorRT engine comes through here: `specialize
profile`, `profile validate` and the standalone bundle runner; the sessions and engines themselves are made
by `supernet.sessions`, which export's verification uses too. One registry of runtimes (`RUNTIMES`, `get_runtime`)
and one timing protocol (`time_samples`): warm up, choose how many runs make one sample so that a
sample is long enough to time well, then take samples until the repeat count or the time budget is
reached; a figure is the median of the samples. With `sample_s=0` each sample is one run, which is
how a deployment measures ("warm-up, then the median of N runs").

`hw_profiles/run_bundle.py` must run on a device without this package, so it carries verbatim
copies of the functions named in `SHARED` (`ort_session` is made in `supernet.sessions`, the one place below
export and profiling where sessions and engines are made) and of the protocol constants; tests/test_hw_runtime.py
fails when the copies drift. Heavy imports (torch, onnxruntime, tensorrt) happen inside functions.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

from hw_profiles.profile import PRECISIONS
from specialize.errors import SpecializeError, option
from specialize.registry import Registry
from hw_profiles.host import cpu_name
from supernet.sessions import ort_session, tensorrt_engine

# -- the timing protocol (run_bundle.py carries the same values) ---------------------------------
WARMUP_S = 0.02  # warm-up time (at least 3 runs)
SAMPLE_S = 0.001  # aim for samples at least this long (runs per sample adapt)
REPEATS = 21  # samples per entry
MIN_SAMPLES = 5  # samples taken even when the budget has run out
BUDGET_S = 0.12  # stop sampling an entry after this long
REL_IQR_MAX = 0.10  # IQR / median above this marks a timing noisy
PASSES = 3  # round-robin passes over all entries; each entry keeps its best pass
GRAPH_OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")
DEFAULT_GRAPH_OPTIMIZATION = "all"  # onnxruntime's own default, so what a plain deployment gets
PROTOCOL_CONSTANTS = (
    "WARMUP_S",
    "SAMPLE_S",
    "REPEATS",
    "MIN_SAMPLES",
    "BUDGET_S",
    "REL_IQR_MAX",
    "PASSES",
    "GRAPH_OPTIMIZATION_LEVELS",
    "DEFAULT_GRAPH_OPTIMIZATION",
)
SHARED = ("cpu_name", "ort_session", "wall_clock", "time_samples", "summarize", "pick")  # cpu_name: host.py
PROFILE_CALIBRATION_NETWORKS = 8  # whole networks `specialize profile` times to fit its correction and expected error
BUNDLE_NETWORKS = 12  # whole networks a bundle spreads over the space and times: the few-shot fit takes 5-20


class RuntimeUnavailable(SpecializeError):
    """The runtime asked for cannot run here (no CUDA GPU, TensorRT not installed, ...)."""


@dataclass(frozen=True)
class Protocol:
    """How each entry is timed: each sample is the mean of enough runs to last `sample_s`; an entry's
    figure is the median of its samples in its best pass (see `hw_profiles.profiler.measure_workloads`)."""

    warmup_s: float = WARMUP_S
    sample_s: float = SAMPLE_S
    repeats: int = REPEATS
    budget_s: float = BUDGET_S
    rel_iqr_max: float = REL_IQR_MAX
    passes: int = PASSES
    retries: int = 5  # re-measure a noisy entry this many times before giving up
    min_samples: int = MIN_SAMPLES


@dataclass(frozen=True)
class Timing:
    median_ms: float
    iqr_ms: float
    samples: int
    runs_per_sample: int

    @property
    def rel_iqr(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else math.inf

    def to_dict(self) -> dict:
        return asdict(self)


# -- shared verbatim with run_bundle.py ----------------------------------------------------------
def wall_clock(run, n):
    """Seconds that `n` calls of `run` take, by the wall clock."""
    start = time.perf_counter()
    for _ in range(n):
        run()
    return time.perf_counter() - start


def time_samples(run, clock, warmup_s, sample_s, repeats, budget_s, min_samples):
    """The timing protocol: warm up for `warmup_s` (at least 3 runs); time one run to pick how many
    runs make a sample at least `sample_s` long; take samples (ms per run) until `repeats`, or until
    `budget_s` has passed once `min_samples` are in. Returns (samples, runs per sample)."""
    start, warm = time.perf_counter(), 0
    while warm < 3 or time.perf_counter() - start < warmup_s:
        run()
        warm += 1
    once = clock(run, 1)
    inner = max(1, math.ceil(sample_s / max(once, 1e-7))) if sample_s > 0 else 1
    samples, begin = [], time.perf_counter()
    while len(samples) < repeats:
        samples.append(1e3 * clock(run, inner) / inner)
        if len(samples) >= min_samples and time.perf_counter() - begin > budget_s:
            break
    return samples, inner


def summarize(samples, runs_per_sample):
    """Median and interquartile range of the samples (ms)."""
    import numpy as np

    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return {
        "median_ms": float(median),
        "iqr_ms": float(q3 - q1),
        "samples": len(samples),
        "runs_per_sample": runs_per_sample,
    }


def pick(timings, rel_iqr_max):
    """Lowest median among steady timings (interference only adds time), else the steadiest one."""

    def rel(t):
        return t["iqr_ms"] / t["median_ms"] if t["median_ms"] > 0 else float("inf")

    steady = [t for t in timings if rel(t) <= rel_iqr_max]
    return min(steady, key=lambda t: t["median_ms"]) if steady else min(timings, key=rel)


# -- the library's use of the protocol -----------------------------------------------------------
def time_runs(run: Callable[[], None], clock: Callable[[Callable[[], None], int], float], protocol: Protocol) -> Timing:
    """`time_samples` under `protocol`, summarized."""
    samples, inner = time_samples(
        run, clock, protocol.warmup_s, protocol.sample_s, protocol.repeats, protocol.budget_s, protocol.min_samples
    )
    return Timing(**summarize(samples, inner))


def pick_timing(timings: list[Timing], rel_iqr_max: float) -> Timing:
    return Timing(**pick([t.to_dict() for t in timings], rel_iqr_max))


def deployment_protocol(runs: int, warmup_s: float = 0.1) -> Protocol:
    """How a deployment times a model: warm up, then the median of `runs` single runs (no budget cut)."""
    return Protocol(
        warmup_s=warmup_s, sample_s=0.0, repeats=runs, budget_s=math.inf, min_samples=runs, passes=1, retries=0
    )


def check_graph_optimization(level: str) -> str:
    if level not in GRAPH_OPTIMIZATION_LEVELS:
        raise SpecializeError(
            f"unknown graph optimization level {level!r}; valid: {', '.join(GRAPH_OPTIMIZATION_LEVELS)}"
        )
    return level


def all_cores() -> int:
    return os.cpu_count() or 1


BUSY_LIMIT = 0.15  # above this share of the CPU used by others, timings are flagged (and not shipped)


def cpu_busy_share(seconds: float = 1.0) -> float | None:
    """Share of all CPU time used by other processes over the next `seconds` (this one sleeps), from
    /proc/stat; None where there is no /proc/stat. Timings taken beside a busy share are distorted."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, 1 - (idle1 - idle0) / max(total1 - total0, 1))


# -- runtimes ------------------------------------------------------------------------------------
DEFAULT_THREADS = 1  # steadiest; on a 2-vCPU VM two intra-op threads gave 200% relative IQR on small blocks


class OnnxRuntime:
    """ONNX Runtime, CPU execution provider, `threads` intra-op threads, sequential execution."""

    name = "onnxruntime"
    clock = staticmethod(wall_clock)

    def __init__(
        self,
        precision: str = "fp32",
        threads: int | None = None,
        graph_optimization_level: str = DEFAULT_GRAPH_OPTIMIZATION,
    ):
        if precision not in ("fp32", "int8"):
            raise SpecializeError(
                f"runtime onnxruntime (CPU) measures fp32 and int8 (QDQ), not {precision}; use "
                f"{option('runtime')} tensorrt or torch-cuda for fp16"
            )
        self.precision, self.threads = precision, threads or DEFAULT_THREADS
        self.graph_optimization_level = check_graph_optimization(graph_optimization_level)

    def describe(self) -> dict:
        import onnxruntime

        return {
            "runtime": self.name,
            "runtime_version": onnxruntime.__version__,
            "device_name": cpu_name(),
            "threads": self.threads,
            "graph_optimization_level": self.graph_optimization_level,
            "precision": self.precision,
        }

    def session(self, model: bytes | str | os.PathLike):
        return ort_session(model, self.threads, self.graph_optimization_level)

    def load(self, model: bytes | str | os.PathLike, input_shape: tuple[int, ...]) -> Callable[[], None]:
        """A zero-argument run of the ONNX model on a fixed random input."""
        import numpy as np

        session = self.session(model)
        feed = {"input": np.random.default_rng(0).random(input_shape, dtype=np.float32)}
        return lambda: session.run(None, feed)

    def prepare(self, module, example) -> Callable[[], None]:
        from supernet.onnx_graph import deploy_graph

        return self.load(deploy_graph(module, example).SerializeToString(), tuple(example.shape))


def _require_cuda(runtime: str):
    import torch

    if not torch.cuda.is_available():
        raise RuntimeUnavailable(
            f"runtime {runtime} needs a CUDA GPU, but torch {torch.__version__} sees none "
            f"(torch.cuda.is_available() is False); use {option('runtime', 'onnxruntime')} on this machine"
        )
    return torch


def cuda_clock(run: Callable[[], None], n: int) -> float:
    import torch

    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    for _ in range(n):
        run()
    end.record()
    end.synchronize()
    return begin.elapsed_time(end) / 1e3


class TorchCuda:
    """Eager PyTorch on the current CUDA device, timed with CUDA events; fp16 casts the module."""

    name = "torch-cuda"
    clock = staticmethod(cuda_clock)

    def __init__(
        self, precision: str = "fp32", threads: int | None = None, graph_optimization_level: str | None = None
    ):
        if precision == "int8":
            raise SpecializeError(
                f"runtime torch-cuda times eager modules in fp32 or fp16, not int8; use {option('runtime')} "
                "onnxruntime or tensorrt for int8"
            )
        self.torch = _require_cuda(self.name)
        self.precision, self.threads, self.graph_optimization_level = precision, threads, None

    def describe(self) -> dict:
        return {
            "runtime": self.name,
            "runtime_version": f"torch {self.torch.__version__}, CUDA {self.torch.version.cuda}",
            "device_name": self.torch.cuda.get_device_name(),
            "precision": self.precision,
        }

    def prepare(self, module, example) -> Callable[[], None]:
        torch = self.torch
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        module = module.eval().to("cuda", dtype)
        x = example.to("cuda", dtype)

        def run() -> None:
            with torch.inference_mode():
                module(x)

        return run


class TensorRT:
    """TensorRT engine built from the module's ONNX (fp16 flag for fp16), timed with CUDA events."""

    name = "tensorrt"
    clock = staticmethod(cuda_clock)

    def __init__(
        self, precision: str = "fp32", threads: int | None = None, graph_optimization_level: str | None = None
    ):
        try:
            import tensorrt
        except ImportError:
            raise RuntimeUnavailable(
                "runtime tensorrt needs the TensorRT Python package (pip install tensorrt) "
                "and a CUDA GPU; `import tensorrt` failed here. Use --runtime onnxruntime, or "
                "`specialize profile bundle` and run the bundle on the device"
            ) from None
        self.trt, self.torch = tensorrt, _require_cuda(self.name)
        self.precision, self.threads, self.graph_optimization_level = precision, threads, None

    def describe(self) -> dict:
        return {
            "runtime": self.name,
            "runtime_version": self.trt.__version__,
            "device_name": self.torch.cuda.get_device_name(),
            "precision": self.precision,
        }

    def session(self, onnx_bytes: bytes, input_shape: tuple[int, ...] | None = None):
        """An execution context with its own input and output buffers, and a zero-argument run;
        `input_shape` fixes a dynamic batch (the exported sub-networks have one)."""
        trt, torch = self.trt, self.torch
        shapes = None if input_shape is None else (input_shape,) * 3
        engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(
            tensorrt_engine(onnx_bytes, self.precision, shapes)
        )
        context = engine.create_execution_context()
        if input_shape is not None:
            context.set_input_shape("input", input_shape)
        buffers = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            buffers.append(torch.randn(tuple(context.get_tensor_shape(name)), device="cuda"))
            context.set_tensor_address(name, buffers[-1].data_ptr())
        stream = torch.cuda.current_stream().cuda_stream

        def run() -> None:
            context.execute_async_v3(stream)

        run.buffers = buffers  # keep the device memory alive as long as the run
        return run

    def load(self, model: bytes | str | os.PathLike, input_shape: tuple[int, ...]) -> Callable[[], None]:
        """A zero-argument run of the ONNX model (bytes or path) as a TensorRT engine."""
        data = model if isinstance(model, bytes) else open(model, "rb").read()
        return self.session(data, input_shape)

    def prepare(self, module, example) -> Callable[[], None]:
        from supernet.onnx_graph import deploy_graph

        return self.session(deploy_graph(module, example).SerializeToString(), tuple(example.shape))


RUNTIMES = Registry("runtime", items={runtime.name: runtime for runtime in (OnnxRuntime, TorchCuda, TensorRT)})


def as_deployed(onnx_bytes: bytes, precision: str, runtime_name: str, input_shape: tuple[int, ...]) -> bytes:
    """A timed graph in the form its precision ships in: an INT8 graph quantized as `export --precision int8`
    quantizes it for that runtime (supernet.quantize), with random calibration images (the ranges change no
    kernel's cost); fp32 and fp16 graphs unchanged (fp16 is a TensorRT build flag)."""
    if precision != "int8":
        return onnx_bytes
    import torch

    from supernet.quantize import quantize_int8

    generator = torch.Generator().manual_seed(0)
    batches = [torch.rand(input_shape, generator=generator) for _ in range(2)]
    return quantize_int8(onnx_bytes, batches, "tensorrt" if runtime_name == "tensorrt" else "onnxruntime")


def get_runtime(
    name: str,
    precision: str = "fp32",
    threads: int | None = None,
    graph_optimization_level: str = DEFAULT_GRAPH_OPTIMIZATION,
):
    """The one factory for runtimes; raises RuntimeUnavailable when it cannot run here."""
    if precision not in PRECISIONS:
        raise SpecializeError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return RUNTIMES.lookup(name)(precision, threads, graph_optimization_level)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the body with torch using `n` intra-op threads, then restore the previous setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)

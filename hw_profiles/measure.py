"""Timing torch modules on a runtime: onnxruntime (CPU), torch-cuda (CUDA events), tensorrt.

One registry of runtimes, one timing protocol. A runtime's `prepare` turns (module, example input)
into a zero-argument `run`, and its `clock(run, n)` says how long n runs take; `time_runs` warms up, picks how many runs make one sample so that a
sample is long enough to time well, then takes samples until the repeat count or the time budget is
reached. Heavy imports (torch, onnxruntime, tensorrt) happen inside the functions that need them.
"""
from __future__ import annotations

import contextlib
import math
import platform
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from specialize.errors import SpecializeError

PRECISIONS = ("fp32", "fp16")


class RuntimeUnavailable(SpecializeError):
    """The runtime asked for cannot run here (no CUDA GPU, TensorRT not installed, ...)."""


@dataclass(frozen=True)
class Protocol:
    """How each entry is timed: each sample is the mean of `inner` runs; an entry's figure is the
    median of its samples in its best pass (see `hw_profiles.profiler.measure_workloads`)."""

    warmup_s: float = 0.02        # warm-up time (at least 3 runs)
    sample_s: float = 0.001       # aim for samples at least this long (runs per sample adapt)
    repeats: int = 21             # samples per entry (at least 5 unless the budget runs out)
    budget_s: float = 0.12        # stop sampling an entry after this long
    rel_iqr_max: float = 0.10     # IQR / median above this marks an entry noisy
    passes: int = 3               # round-robin passes over all entries; each entry keeps its best pass
    retries: int = 5              # re-measure a noisy entry this many times before giving up


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


def summarize(samples_ms: list[float], runs_per_sample: int) -> Timing:
    q1, median, q3 = np.percentile(samples_ms, [25, 50, 75])
    return Timing(float(median), float(q3 - q1), len(samples_ms), runs_per_sample)


def time_runs(run: Callable[[], None], clock: Callable[[Callable[[], None], int], float], protocol: Protocol) -> Timing:
    """Warm up, then take up to `protocol.repeats` samples of `clock(run, n)` (seconds for n runs)."""
    start, warm = time.perf_counter(), 0
    while warm < 3 or time.perf_counter() - start < protocol.warmup_s:
        run()
        warm += 1
    once = clock(run, 1)
    inner = max(1, math.ceil(protocol.sample_s / max(once, 1e-7)))
    samples, begin = [], time.perf_counter()
    while len(samples) < protocol.repeats:
        samples.append(1e3 * clock(run, inner) / inner)
        if len(samples) >= 5 and time.perf_counter() - begin > protocol.budget_s:
            break
    return summarize(samples, inner)


def wall_clock(run: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        run()
    return time.perf_counter() - start


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class OnnxRuntime:
    """ONNX Runtime, CPU execution provider, `threads` intra-op threads, sequential execution."""

    name = "onnxruntime"

    def __init__(self, precision: str = "fp32", threads: int | None = None):
        if precision != "fp32":
            raise SpecializeError("runtime onnxruntime (CPU) measures fp32 only; use --precision fp32, "
                                  "or --runtime tensorrt / torch-cuda for fp16")
        self.precision, self.threads = precision, threads or default_threads()

    def describe(self) -> dict:
        import onnxruntime
        return {"runtime": self.name, "runtime_version": onnxruntime.__version__, "device_name": cpu_name(),
                "threads": self.threads, "precision": self.precision}

    def session(self, onnx_bytes: bytes):
        import onnxruntime
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])

    clock = staticmethod(wall_clock)

    def prepare(self, module, example) -> Callable[[], None]:
        from supernet.export import module_to_onnx_bytes
        session = self.session(module_to_onnx_bytes(module, example, dynamic_batch=False))
        feed = {"input": example.numpy()}
        return lambda: session.run(None, feed)


DEFAULT_THREADS = 1  # steadiest; on a 2-vCPU VM two intra-op threads gave 200% relative IQR on small blocks


def default_threads() -> int:
    return DEFAULT_THREADS


def _require_cuda(runtime: str):
    import torch
    if not torch.cuda.is_available():
        raise RuntimeUnavailable(f"runtime {runtime} needs a CUDA GPU, but torch {torch.__version__} sees none "
                                 f"(torch.cuda.is_available() is False); use --runtime onnxruntime on this machine")
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

    def __init__(self, precision: str = "fp32", threads: int | None = None):
        self.torch = _require_cuda(self.name)
        self.precision, self.threads = precision, threads

    def describe(self) -> dict:
        return {"runtime": self.name, "runtime_version": f"torch {self.torch.__version__}, CUDA {self.torch.version.cuda}",
                "device_name": self.torch.cuda.get_device_name(), "precision": self.precision}

    clock = staticmethod(cuda_clock)

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

    def __init__(self, precision: str = "fp32", threads: int | None = None):
        try:
            import tensorrt
        except ImportError:
            raise RuntimeUnavailable("runtime tensorrt needs the TensorRT Python package (pip install tensorrt) "
                                     "and a CUDA GPU; `import tensorrt` failed here. Use --runtime onnxruntime, or "
                                     "`specialize profile bundle` and run the bundle on the device") from None
        self.trt, self.torch = tensorrt, _require_cuda(self.name)
        self.precision, self.threads = precision, threads
        self.logger = tensorrt.Logger(tensorrt.Logger.WARNING)

    def describe(self) -> dict:
        return {"runtime": self.name, "runtime_version": self.trt.__version__,
                "device_name": self.torch.cuda.get_device_name(), "precision": self.precision}

    def engine(self, onnx_bytes: bytes):
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_bytes):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise SpecializeError(f"TensorRT could not parse the exported ONNX: {errors}")
        config = builder.create_builder_config()
        if self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise SpecializeError("TensorRT failed to build an engine (see its log above)")
        return trt.Runtime(self.logger).deserialize_cuda_engine(serialized)

    clock = staticmethod(cuda_clock)

    def prepare(self, module, example) -> Callable[[], None]:
        from supernet.export import module_to_onnx_bytes
        torch = self.torch
        engine = self.engine(module_to_onnx_bytes(module, example, dynamic_batch=False))
        context = engine.create_execution_context()
        buffers = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(context.get_tensor_shape(name))
            buffers.append(torch.randn(shape, device="cuda"))
            context.set_tensor_address(name, buffers[-1].data_ptr())
        stream = torch.cuda.current_stream().cuda_stream
        return lambda: context.execute_async_v3(stream)


RUNTIMES = {runtime.name: runtime for runtime in (OnnxRuntime, TorchCuda, TensorRT)}


def get_runtime(name: str, precision: str = "fp32", threads: int | None = None):
    """The one factory for runtimes; raises RuntimeUnavailable when it cannot run here."""
    if name not in RUNTIMES:
        raise SpecializeError(f"unknown runtime {name!r}; known runtimes: {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise SpecializeError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return RUNTIMES[name](precision, threads)


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

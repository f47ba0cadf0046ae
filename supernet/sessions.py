"""The one place ONNX Runtime sessions and TensorRT engines are made, below both export (verification, accuracy)
and profiling (`hw_profiles.runtime` times them). onnxruntime and tensorrt are imported inside the functions.

`ort_session` is copied verbatim into the standalone `hw_profiles/run_bundle.py` (tests/test_hw_runtime.py checks).
"""

from __future__ import annotations

from specialize.errors import SpecializeError


def ort_session(model, threads=1, graph_optimization_level="all"):
    """An onnxruntime CPU session as a deployment makes one: `threads` intra-op threads, one inter-op
    thread, sequential execution, the named graph optimization level. `model`: ONNX bytes or a path."""
    import onnxruntime

    levels = {
        "disabled": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = levels[graph_optimization_level]
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def tensorrt_engine(onnx_bytes: bytes, precision: str, input_shapes: tuple | None = None):
    """A serialized TensorRT engine built from ONNX with builder + OnnxParser (fp16 flag for fp16, int8 flag for a
    QDQ graph); `input_shapes` (min, opt, max) adds an optimization profile for a dynamic batch."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = (
        0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    )
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise SpecializeError(f"TensorRT's ONNX parser rejected the model: {errors}")
    config = builder.create_builder_config()
    if input_shapes is not None:
        profile = builder.create_optimization_profile()
        profile.set_shape("input", *input_shapes)
        config.add_optimization_profile(profile)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":  # explicit quantization: the QDQ graph carries its scales, no calibrator
        config.set_flag(trt.BuilderFlag.INT8)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise SpecializeError("TensorRT failed to build an engine (see its log above)")
    return bytes(engine)

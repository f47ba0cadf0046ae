"""ONNX export of torch modules (sub-networks, single blocks), and the deployable sub-network export.

`module_to_onnx_bytes` is the one export primitive; everything that writes ONNX goes through it.
`export_subnet` turns (space, architecture, weights) into a checked ONNX file (or a TensorRT engine):
opset 17, dynamic batch, RGB float [0, 1] NCHW input with normalization inside, only ops that
TensorRT's ONNX parser takes, verified against torch with onnxruntime, metadata for provenance.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from torch import nn

from specialize.cost import arch_cost
from specialize.errors import SpecializeError, option
from specialize.fileio import atomic_write_bytes, check_writable, provenance, sha256_file
from specialize.space import Architecture, SearchSpace, get_space
from supernet.onnx_graph import deploy_graph, onnx_ops, set_metadata
from supernet.sessions import ort_session, tensorrt_engine
from supernet.validate import at_trained_size

if TYPE_CHECKING:
    from specialize.table import AccuracyTable

    from supernet.elastic import Supernet
    from supernet.train_config import FinetuneRecipe

FORMATS = ("onnx", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
MAX_ABS_DIFF = 1e-4
UNTRAINED_WARNING = (
    "UNTRAINED weights: no --weights given, so the exported model has random initial weights "
    "(fine for latency measurements, useless for predictions)"
)
VERIFY_BATCHES = (1, 3)
TRT_MAX_BATCH = 32
INPUT_CONVENTION = "RGB {dtype} in [0, 1], NCHW, shape [batch, 3, {r}, {r}]; mean/std normalization is inside the model"
# an fp16 ONNX file against the fp32 graph it came from, on noise: max |diff| may be this share of the largest logit
FP16_MAX_REL_DIFF = 0.05
META = "specialize."


def max_abs_diff(
    model_bytes: bytes, module: nn.Module, resolution: int, batches: Sequence[int] = VERIFY_BATCHES
) -> float:
    """Largest |onnxruntime - torch| over random inputs at each batch size (checks the dynamic batch too)."""
    import numpy

    session = ort_session(model_bytes)
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    module.eval()
    for batch in batches:
        x = torch.rand(batch, 3, resolution, resolution, generator=generator)
        with torch.no_grad():
            expected = module(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        if got.shape != expected.shape:
            raise SpecializeError(
                f"onnxruntime output shape {got.shape} differs from torch {expected.shape} at batch {batch}"
            )
        if not (numpy.isfinite(got).all() and numpy.isfinite(expected).all()):
            raise SpecializeError(
                f"the sub-network outputs NaN or infinity at batch {batch} (are the weights corrupt?); nothing written"
            )
        worst = max(worst, float(abs(got - expected).max()))
    return worst


def subnet_to_onnx(module: nn.Module, resolution: int, metadata: dict[str, str]) -> tuple[bytes, float, list[str]]:
    """Export, clean, check and verify a static sub-network: (ONNX bytes, max |ORT - torch|, ops)."""
    import onnx

    model = deploy_graph(module, torch.rand(1, 3, resolution, resolution))
    set_metadata(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()
    diff = max_abs_diff(data, module, resolution)
    if not diff <= MAX_ABS_DIFF:
        raise SpecializeError(
            f"exported ONNX disagrees with torch: max |onnxruntime - torch| = {diff:.3g} > {MAX_ABS_DIFF:g}; "
            "nothing written"
        )
    return data, diff, sorted(onnx_ops(model))


# -- weights ------------------------------------------------------------------------------------
@dataclass
class LoadedWeights:
    net: "Supernet"
    trained: bool
    source: str  # weights path, or "random-init"
    notes: list[str] = field(default_factory=list)
    table: "AccuracyTable | None" = None  # the accuracy table these weights came with, when known


def resolve_weights_path(weights: str | os.PathLike) -> Path:
    """A weights path; an accuracy table (.json), meaning its weights; or `default`, the embedded table's weights."""
    from specialize.table import is_embedded_name, is_table_reference, load_table

    if not is_table_reference(weights):
        return Path(weights)
    what = f"--weights {weights}" if is_embedded_name(weights) else f"accuracy table {weights}"
    try:
        table = load_table(weights)
    except SpecializeError as exc:
        raise SpecializeError(f"{what}: no weights available ({exc})") from None
    path = table.weights_path()
    if path is None or not path.is_file():
        raise SpecializeError(f"{what}: names no weights file, or {path} is missing; give --weights PATH")
    recorded = (table.weights or {}).get("sha256")
    if recorded and sha256_file(path) != recorded:
        raise SpecializeError(
            f"weights file {path} is not the one {what} was trained with (its sha256 differs from the "
            f"table's {str(recorded)[:16]}...): the table's accuracies would describe another network"
        )
    return path


def load_weights(space: SearchSpace, weights: str | os.PathLike | None, seed: int = 0) -> LoadedWeights:
    """The supernet to extract from: trained weights (checked against `space`) or a random init."""
    from supernet.elastic import Supernet

    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = Supernet(space).eval()
        return LoadedWeights(net, False, "random-init")
    from supernet.checkpoint import load_supernet
    from supernet.pretrained import import_pretrained, is_pretrained_file

    if is_pretrained_file(weights):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = Supernet(space)
        record = import_pretrained(net, str(weights))
        return LoadedWeights(
            net.eval(), True, f"{record['source']} (sha256 {record['sha256'][:16]}, classifier {record['classifier']})"
        )

    path = resolve_weights_path(weights)
    net = load_supernet(path)
    table = companion_table(weights, path)
    elastic = tuple(table.sizes()) if table is not None else ()
    return LoadedWeights(net, True, str(path), check_weights_space(space, net.space, path, elastic), table)


def companion_table(weights: str | os.PathLike, path: Path) -> "AccuracyTable | None":
    """The accuracy table that names these weights: the one given (`default`, a .json), or table.json beside
    a weights file whose sha256 it records."""
    from specialize.fileio import sha256_file
    from specialize.table import is_table_reference, load_table

    if is_table_reference(weights):
        return load_table(weights)
    beside = path.parent / "table.json"
    if not beside.is_file():
        return None
    try:
        table = load_table(beside)
    except SpecializeError:
        return None
    return table if (table.weights or {}).get("sha256") == sha256_file(path) else None


def check_weights_space(
    space: SearchSpace, trained: SearchSpace, path: Path, elastic: tuple[int, ...] = ()
) -> list[str]:
    """Accept the requested space, the same network at an input size its table says it was trained at (`elastic`:
    elastic resolution's sizes), or an EcoNAS proxy of it (notes say how it differs); refuse anything else."""
    if trained.fingerprint == space.fingerprint:
        return []
    if at_trained_size(space, trained, elastic):
        return []
    if trained.with_classes(space.class_names or ()).fingerprint == space.fingerprint if space.class_names else False:
        return []
    is_proxy = (
        trained.base_space == space.name
        and space.scaled(trained.width_multiplier, trained.resolution).fingerprint == trained.fingerprint
    )
    if not is_proxy:
        raise SpecializeError(
            f"weights file {path} is for space {trained.name!r} (fingerprint {trained.fingerprint}), which is neither "
            f"space {space.name!r} (fingerprint {space.fingerprint}) nor a proxy of it"
        )
    notes = []
    if trained.resolution != space.resolution:
        notes.append(
            f"weights were trained at proxy resolution {trained.resolution}; exporting for input "
            f"{space.resolution}x{space.resolution}"
        )
    return notes


def deploy_space(trained: SearchSpace, space: SearchSpace) -> SearchSpace:
    """The space of the network actually exported: the weights' channels at the requested input resolution."""
    return (
        trained if trained.resolution == space.resolution else dataclasses.replace(trained, resolution=space.resolution)
    )


def proxy_width_note(arch: Architecture, exported: Architecture) -> str | None:
    width = exported.space.width_multiplier
    if width == 1:
        return None
    full, mine = arch_cost(arch)["macs"], arch_cost(exported)["macs"]
    return (
        f"PROXY WIDTH: the weights were trained at EcoNAS proxy width multiplier {width:g}, so the exported network "
        f"is the width-{width:g} sub-network: {mine / 1e6:.1f}M MACs, not the full-width {full / 1e6:.1f}M MACs "
        f"of space {arch.space.name!r}"
    )


# -- batch-norm recalibration ---------------------------------------------------------------------
def recalibrate(module: nn.Module, batches: Sequence[torch.Tensor]) -> int:
    """Re-estimate the sub-network's BN statistics on `batches`; returns the number of images used."""
    from supernet.bn import recalibrate_bn

    if not batches:
        raise SpecializeError("batch-norm recalibration got no images")
    recalibrate_bn(module, batches)
    return sum(int(b.shape[0]) for b in batches)


def noise_batches(resolution: int, n_batches: int = 2, batch_size: int = 8, seed: int = 0) -> list[torch.Tensor]:
    """Uniform-noise images. Random-init networks get BN statistics from these so their ReLU6s do not
    saturate into a constant output (which would make the onnxruntime-vs-torch check meaningless)."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(batch_size, 3, resolution, resolution, generator=generator) for _ in range(n_batches)]


def calibration_batches_from(data: str | os.PathLike, resolution: int, n_images: int = 500) -> list[torch.Tensor]:
    try:
        from supernet.data import calibration_batches, load_dataset
    except ImportError as exc:
        raise SpecializeError(
            f"--data needs the dataset reader supernet.data, which cannot be imported: {exc}"
        ) from None
    return calibration_batches(
        load_dataset(data, image_size=resolution), resolution, n_images=n_images, batch_size=100, seed=0
    )


# -- TensorRT -----------------------------------------------------------------------------------
def tensorrt_unavailable_reason() -> str | None:
    """Why no engine can be built here (None when TensorRT and a CUDA GPU are both present)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "the tensorrt Python package is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU is available"
    return None


def trt_shapes(resolution: int, max_batch: int = TRT_MAX_BATCH) -> tuple[tuple[int, ...], ...]:
    return tuple((b, 3, resolution, resolution) for b in (1, 1, max_batch))


def build_tensorrt_engine(onnx_bytes: bytes, resolution: int, precision: str) -> bytes:
    """A serialized TensorRT engine (batch 1..TRT_MAX_BATCH, optimized for 1), built by the runtime layer."""
    return tensorrt_engine(onnx_bytes, precision, trt_shapes(resolution))


def trtexec_command(onnx_path: Path, engine_path: Path, resolution: int, precision: str) -> str:
    dims = ["x".join(map(str, shape)) for shape in trt_shapes(resolution)]
    parts = [
        "trtexec",
        f"--onnx={shlex.quote(onnx_path.name)}",
        f"--saveEngine={shlex.quote(engine_path.name)}",
        f"--minShapes=input:{dims[0]}",
        f"--optShapes=input:{dims[1]}",
        f"--maxShapes=input:{dims[2]}",
    ]
    if precision in ("fp16", "int8"):
        parts.append(f"--{precision}")  # int8: explicit quantization, the scales are in the QDQ graph
    return " ".join(parts)


def build_script_path(onnx_path: Path) -> Path:
    """build_<model>_engine.sh beside the ONNX file: named after the model, so the next export beside it does not
    overwrite it."""
    return onnx_path.parent / f"build_{onnx_path.stem}_engine.sh"


def write_build_script(onnx_path: Path, engine_path: Path, resolution: int, precision: str) -> Path:
    """An executable build script (build_script_path) beside the ONNX file that runs trtexec on the target
    device."""
    script = build_script_path(onnx_path)
    text = (
        "#!/bin/sh\n"
        "# Build the TensorRT engine on the device that will run it: engines are specific to the GPU and\n"
        "# the TensorRT version (on Jetson, run this on the Jetson itself).\n"
        "set -e\n"
        'cd "$(dirname "$0")"\n'
        f"{trtexec_command(onnx_path, engine_path, resolution, precision)}\n"
    )
    atomic_write_bytes(script, text.encode())
    script.chmod(0o755)
    return script


# -- the sub-network export -----------------------------------------------------------------------
@dataclass
class ExportResult:
    output: Path  # the file written for the requested format (ONNX or engine)
    onnx_path: Path
    fmt: str
    precision: str
    space: str  # the requested space
    network_space: str  # the exported network's space: the requested one, or its proxy
    fingerprint: str  # fingerprint of the exported network's space
    arch: str
    trained: bool
    weights: str
    width_multiplier: float
    macs: int  # MACs of the exported network (what MobileNet papers call FLOPs)
    full_macs: int  # MACs of the arch at full width in the requested space
    params: int
    bytes: int
    intensity: float
    peak_activation_bytes: int
    max_abs_diff: float  # max |onnxruntime - torch| at batch sizes VERIFY_BATCHES
    ops: list[str]
    recalibrated_images: int = 0
    bn_statistics: str = "inherited from the supernet"
    measured_accuracy: float | None = None  # top-1 of the written graph in onnxruntime on held-out images
    measured_on: str = ""
    fp32_accuracy: float | None = None  # int8: the same network's FP32 graph on the same images, before quantizing
    finetuned: dict | None = None  # the pick fine-tuned alone: recipe, images, minutes, accuracy_before (onnxruntime)
    engine_path: Path | None = None
    build_script: Path | None = None
    warnings: list[str] = field(default_factory=list)  # say these loudly
    notes: list[str] = field(default_factory=list)


def check_options(fmt: str, precision: str) -> None:
    if fmt not in FORMATS:
        raise SpecializeError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise SpecializeError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")


def input_dtype(precision: str, fmt: str) -> str:
    """What the written ONNX file takes: float16 for an fp16 ONNX export; float32 otherwise (an int8 QDQ file takes
    float32 and quantizes inside; for --format tensorrt the ONNX stays fp32 and TensorRT builds fp16 kernels)."""
    return "float16" if precision == "fp16" and fmt == "onnx" else "float32"


def output_paths(output: str | os.PathLike, fmt: str) -> tuple[Path, Path | None]:
    """(ONNX path, engine path): `-o x.engine` puts the ONNX beside it as x.onnx, `-o x.onnx` the engine as x.engine."""
    path = Path(output)
    if fmt != "tensorrt":
        return path, None
    if path.suffix == ".engine":
        return path.with_suffix(".onnx"), path
    return path, path.with_suffix(".engine")


def build_metadata(space: SearchSpace, exported: Architecture, loaded: LoadedWeights, settings: dict) -> dict[str, str]:
    net_space = exported.space
    meta = {
        "architecture": str(exported),
        "space": net_space.name,
        "space_fingerprint": net_space.fingerprint,
        "requested_space": space.name,
        "requested_space_fingerprint": space.fingerprint,
        "width_multiplier": f"{net_space.width_multiplier:g}",
        "input": INPUT_CONVENTION.format(
            r=space.resolution, dtype=input_dtype(settings["precision"], settings["format"])
        ),
        "resolution": str(space.resolution),  # README tells users to read it here
        "precision": settings["precision"],
        "input_name": "input",
        "output_name": "output",
        "weights_trained": "true" if loaded.trained else "false",
        "weights": loaded.source,
        "provenance": json.dumps(provenance(**settings), sort_keys=True),
    }
    class_names = net_space.class_names or space.class_names  # the weights' own names win (custom datasets)
    if class_names:
        meta["class_names"] = json.dumps(list(class_names))
    return {META + k: v for k, v in meta.items()}


def resolve_space(space_name: "str | SearchSpace", weights: str | os.PathLike | None) -> SearchSpace:
    """The space itself when given one; a preset by name, or the space of the given weights when it carries that
    name (a space trained on a dataset of its own, e.g. `cifar10-2class`, exists only in its table and weights)."""
    from specialize.space import SPACES

    if isinstance(space_name, SearchSpace):
        return space_name
    if space_name in SPACES or weights is None:
        return get_space(space_name)
    from supernet.checkpoint import load_supernet

    path = resolve_weights_path(weights)
    table = companion_table(weights, path)
    if table is not None and table.space.name == space_name:
        return table.space
    trained = load_supernet(path).space
    if trained.name == space_name and trained.width_multiplier == 1:
        return trained
    return get_space(space_name)


def export_subnet(
    space_name: "str | SearchSpace",
    arch_string: str,
    output: str | os.PathLike,
    weights: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    fmt: str = "onnx",
    precision: str = "fp32",
    calibration: Sequence[torch.Tensor] | None = None,
    recalibrate_bn: bool = True,
    extra_metadata: dict[str, str] | None = None,
    finetune: "FinetuneRecipe | None" = None,
    progress: Callable[[str], None] = lambda text: None,
) -> ExportResult:
    """The one deploy path: extract `arch_string` from the supernet (trained `weights` or random init),
    recalibrate batch norm, write ONNX (or an engine or its build script), check it against torch, and
    measure the written graph's accuracy on held-out images when there are any.

    Batch norm is recalibrated on, in order: `calibration` batches, `data`, the data the table was trained
    on (when that path exists here), or the calibration images shipped beside the weights. With none of
    these it refuses, unless `recalibrate_bn=False` (recorded in the ONNX metadata). Accuracy is measured
    on the test split of `data`, else of the table's training data when it exists here.

    With `finetune`, the sub-network is first measured as extracted (recalibrated, through ONNX, on the same test
    images), then trained alone on every training image of that data (`supernet.finetune`), then exported."""
    check_options(fmt, precision)
    if finetune is not None:
        finetune.check()
    space = resolve_space(space_name, weights)
    arch = space.parse_arch(arch_string)
    onnx_path, engine_path = output_paths(output, fmt)
    for path in filter(None, (onnx_path, engine_path)):
        check_writable(path)
    loaded = load_weights(space, weights)
    exported = deploy_space(loaded.net.space, space).arch_from_indices(arch.indices)
    module = loaded.net.extract(loaded.net.space.arch_from_indices(arch.indices)).eval()
    table_data = loaded.table.training_data() if loaded.trained and loaded.table is not None else None
    eval_data = data if data is not None else table_data
    if loaded.trained and (data if data is not None else eval_data) is not None and (recalibrate_bn or eval_data):
        check_data_classes(loaded.net.space, data if data is not None else eval_data, space.resolution)
    images_from, batches = (
        calibration_images(loaded, space.resolution, data, calibration, eval_data)
        if recalibrate_bn or precision == "int8" or not loaded.trained
        else ("", [])
    )
    finetuned = (
        finetune_pick(
            module,
            loaded,
            batches,
            finetune,
            data if data is not None else table_data,
            space,
            finetune_checkpoint_path(onnx_path),
            progress,
        )
        if finetune is not None
        else None
    )
    bn_source, images = calibrate(module, loaded, images_from, batches, recalibrate_bn)
    cost = arch_cost(exported)
    settings = {
        "space": space.name,
        "arch": str(arch),
        "weights": loaded.source,
        "data": str(data) if data else None,
        "format": fmt,
        "precision": precision,
        "bn_statistics": bn_source,
    }
    metadata = build_metadata(space, exported, loaded, settings)
    metadata.update({META + k: f"{v:.6g}" if isinstance(v, float) else str(v) for k, v in cost.items()})
    metadata.update({META + "bn_recalibrated": "true" if images else "false", **(extra_metadata or {})})
    if finetuned is not None:
        recorded = {k: v for k, v in finetuned.items() if k != "checkpoint"}
        metadata[META + "finetuned"] = json.dumps(recorded, sort_keys=True)
    onnx_bytes, diff, ops = subnet_to_onnx(module, space.resolution, metadata)
    fp32_accuracy = None
    if input_dtype(precision, fmt) == "float16" or precision == "int8":
        if loaded.trained:
            fp32_accuracy = measure_onnx_accuracy(onnx_bytes, eval_data, space.resolution)[0]
        if precision == "int8":
            onnx_bytes, ops = to_int8(onnx_bytes, batches, images_from, fmt)
        else:
            onnx_bytes, half_diff = to_fp16(onnx_bytes, space.resolution)
            loaded.notes.append(f"float16 file against the float32 graph on noise: max |diff| {half_diff:.3g}")
    measured, measured_on = (
        measure_onnx_accuracy(onnx_bytes, eval_data, space.resolution)
        if loaded.trained
        else (None, "not measured: untrained weights")
    )
    if measured is not None:
        onnx_bytes = with_metadata(
            onnx_bytes, {META + "measured_accuracy": f"{measured:.6f}", META + "measured_on": measured_on}
        )
    atomic_write_bytes(onnx_path, onnx_bytes)
    if finetuned is not None:
        Path(finetuned["checkpoint"]).unlink(missing_ok=True)  # the file holds what it held
    result = ExportResult(
        output=onnx_path,
        onnx_path=onnx_path,
        fmt=fmt,
        precision=precision,
        space=space.name,
        network_space=exported.space.name,
        fingerprint=exported.space.fingerprint,
        arch=str(arch),
        trained=loaded.trained,
        weights=loaded.source,
        width_multiplier=exported.space.width_multiplier,
        macs=cost["macs"],
        full_macs=arch_cost(arch)["macs"],
        params=cost["params"],
        bytes=cost["bytes"],
        intensity=cost["intensity"],
        peak_activation_bytes=cost["peak_activation_bytes"],
        max_abs_diff=diff,
        ops=ops,
        recalibrated_images=images,
        bn_statistics=bn_source,
        measured_accuracy=measured,
        measured_on=measured_on,
        fp32_accuracy=fp32_accuracy,
        finetuned=finetuned,
        notes=list(loaded.notes),
    )
    _collect_warnings(result, loaded, arch, exported)
    if fmt == "tensorrt":
        _tensorrt_output(result, onnx_bytes, engine_path, space.resolution)
    return result


def finetune_checkpoint_path(onnx_path: Path) -> Path:
    """Where an export's pick fine-tune checkpoints (beside the file; removed once the file is written)."""
    return onnx_path.with_name(onnx_path.stem + ".finetune.pt")


def finetune_reporter(say: Callable[[str], None], every_seconds: float = 30.0) -> Callable[[int, int, float], None]:
    """The fine-tune's step callback as a line of text at its first step, then every `every_seconds`, and at its
    last: step, loss and the minutes left at the pace so far (off a terminal each is a log line, so not every step)."""
    start, last, first = time.time(), [-math.inf], []

    def report(step: int, total: int, loss: float) -> None:
        now = time.time()
        if not first:
            first.append(step - 1)  # a resumed run starts past 0
        if step not in (first[0] + 1, total) and now - last[0] < every_seconds:
            return
        last[0] = now
        left = (now - start) / (step - first[0]) * (total - step) / 60
        say(f"fine-tuning the pick alone: step {step}/{total}, loss {loss:.3f}, about {left:.1f} min left")

    return report


def finetune_pick(
    module: nn.Module,
    loaded: LoadedWeights,
    batches: list[torch.Tensor],
    recipe: "FinetuneRecipe",
    data: str | os.PathLike | None,
    space: SearchSpace,
    checkpoint: Path,
    progress: Callable[[str], None] = lambda text: None,
) -> dict:
    """Measure the extracted sub-network as the search predicted it (batch norm recalibrated, the ONNX graph on the
    test split), then train it alone on every training image of `data`, checkpointing to `checkpoint` (the same
    export run again resumes there); returns what was done, for the result and the file's metadata."""
    from supernet.data import load_dataset
    from supernet.finetune import finetune

    if not loaded.trained:
        raise SpecializeError("--pick-finetune-epochs needs trained weights: give --weights (not --untrained)")
    if data is None:
        raise SpecializeError(
            "--pick-finetune-epochs needs the training images: give --data (the folder or .tar.gz it was trained on)"
        )
    if batches:
        recalibrate(module, batches)
    before, _ = measure_onnx_accuracy(subnet_to_onnx(module, space.resolution, {})[0], data, space.resolution)
    dataset = load_dataset(data, image_size=space.resolution)
    identity = {"architecture": module.arch_string, "weights": loaded.source, "data": str(data)}
    report = finetune(
        module,
        dataset.train_images,
        dataset.train_labels,
        recipe,
        space.resolution,
        checkpoint=checkpoint,
        identity=identity,
        progress=finetune_reporter(progress),
        teacher=distillation_teacher(loaded, batches) if recipe.distill else None,
    )
    return {
        **report.recipe.to_dict(),
        "data": str(data),
        "images": report.images,
        "steps": report.steps,
        "minutes": round(report.minutes, 3),
        "batch_norm": report.batch_norm,
        "final_loss": round(report.final_loss, 6),
        "accuracy_before": before,
        "checkpoint": str(checkpoint),
        "resumed_at_step": report.resumed_at_step,
    }


def distillation_teacher(loaded: LoadedWeights, batches: list[torch.Tensor]) -> nn.Module:
    """The supernet's largest network (every layer's largest candidate), extracted from the same weights with its
    batch norm recalibrated on the export's images like the pick's: the teacher of `--pick-finetune-distill`."""
    teacher = loaded.net.extract(loaded.net.space.largest_arch())
    if batches:
        recalibrate(teacher, batches)
    return teacher.eval()


def to_int8(onnx_bytes: bytes, batches: list[torch.Tensor], images_from: str, fmt: str) -> tuple[bytes, list[str]]:
    """The checked FP32 graph quantized to INT8 QDQ (supernet.quantize) on the images that set batch norm, in the
    form of the runtime that will run it: TensorRT's for --format tensorrt, else onnxruntime's."""
    import onnx

    from supernet.quantize import FORMS, quantize_int8

    if not batches:
        raise SpecializeError(
            f"{option('precision', 'int8')} needs calibration images for the activation ranges: give "
            f"{option('data')}, or keep the table's calibration file beside the weights"
        )
    target = "tensorrt" if fmt == "tensorrt" else "onnxruntime"
    quantized = quantize_int8(onnx_bytes, batches, target)
    settings = {**FORMS[target], "for": target, "calibration": f"{sum(len(b) for b in batches)} {images_from}"}
    quantized = with_metadata(quantized, {META + "precision": "int8", META + "quantization": json.dumps(settings)})
    return quantized, sorted(onnx_ops(onnx.load_from_string(quantized)))


def to_fp16(onnx_bytes: bytes, resolution: int) -> tuple[bytes, float]:
    """The checked FP32 graph in half precision (weights, activations, input and output), checked against it on
    noise in onnxruntime: (bytes, max |fp16 - fp32|). Refused when the half graph overflows or drifts by more than
    FP16_MAX_REL_DIFF of the largest logit."""
    import numpy as np
    import onnx

    from supernet.onnx_graph import to_float16
    from supernet.tensorrt_support import check_tensorrt_parser_support

    half = to_float16(onnx.load_from_string(onnx_bytes))
    onnx.checker.check_model(half, full_check=True)
    check_tensorrt_parser_support(half)  # for a GPU target: TensorRT parses float16 graphs as well
    half_bytes = half.SerializeToString()
    x = noise_batches(resolution, n_batches=1)[0].numpy()
    full = ort_session(onnx_bytes).run(None, {"input": x})[0]
    low = ort_session(half_bytes).run(None, {"input": x.astype(np.float16)})[0].astype(np.float32)
    diff = float(np.abs(full - low).max())
    if not np.isfinite(low).all() or diff > FP16_MAX_REL_DIFF * max(1.0, float(np.abs(full).max())):
        raise SpecializeError(
            f"the float16 graph disagrees with the float32 one: max |diff| {diff:.3g} against logits up to "
            f"{float(np.abs(full).max()):.3g}; nothing written (export fp32, or --format tensorrt --precision fp16)"
        )
    return half_bytes, diff


def with_metadata(onnx_bytes: bytes, metadata: dict[str, str]) -> bytes:
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    set_metadata(model, metadata)
    return model.SerializeToString()


def measure_onnx_accuracy(
    onnx_bytes: bytes, data: str | os.PathLike | None, resolution: int
) -> tuple[float | None, str]:
    """Top-1 accuracy of the serialized graph in onnxruntime on `data`'s test split; (None, why) without data."""
    if data is None:
        return None, "not measured: no held-out images (give --data with a test split)"
    import numpy as np

    from supernet.data import load_dataset, to_tensor
    from supernet.evaluate import top1

    dataset = load_dataset(data, image_size=resolution)
    session = ort_session(onnx_bytes, threads=torch.get_num_threads())
    images = dataset.test_images

    dtype = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32

    def predict(start: int, stop: int) -> np.ndarray:
        return session.run(None, {"input": to_tensor(images[start:stop], resolution).numpy().astype(dtype)})[0]

    try:
        accuracy = top1(predict, dataset.test_labels)
    except SpecializeError as exc:
        raise SpecializeError(f"the exported graph: {exc}; nothing written") from None
    n = len(dataset.test_labels)
    return accuracy, f"test split of {data} ({n} images, onnxruntime)"


def check_data_classes(trained: SearchSpace, data: str | os.PathLike, resolution: int) -> None:
    """Data that recalibrates or measures a model must have the model's classes, in its order: other classes give a
    meaningless accuracy (two folders renamed measured 29.7%; a 3-class folder on a 10-class model, 8%)."""
    from supernet.data import load_dataset

    classes = tuple(load_dataset(data, image_size=resolution).classes)
    names = tuple(trained.class_names or ())
    if len(classes) != trained.num_classes or (names and classes != names):
        mine = ", ".join(names) if names else f"{trained.num_classes} unnamed classes"
        raise SpecializeError(
            f"data {data} has classes {', '.join(classes)}, the model has {mine}: recalibrating on it or measuring "
            "on it would mean nothing; give data with the model's classes (or --no-recalibrate without --data)"
        )


def calibration_images(
    loaded: LoadedWeights,
    resolution: int,
    data: str | os.PathLike | None,
    calibration: Sequence[torch.Tensor] | None,
    table_data: str | None = None,
) -> tuple[str, list[torch.Tensor]]:
    """The images that calibrate an export (batch norm, then INT8 ranges) and where they came from: given batches,
    `data`, the data the table was trained on, or the calibration images shipped beside the weights."""
    if not loaded.trained:
        return "uniform noise (untrained weights)", noise_batches(resolution)
    if calibration is not None:
        return "images of the given batches", list(calibration)
    source = data if data is not None else table_data
    if source is not None:
        return f"training images of {source}", calibration_batches_from(source, resolution)
    shipped = shipped_calibration(loaded.table)
    if shipped is not None:
        return f"training images shipped in {shipped.name}", calibration_file_batches(shipped, resolution)
    raise SpecializeError(
        f"cannot recalibrate batch norm for weights {loaded.source}: give --data with the training images, or keep "
        f"the table's {'calibration file' if loaded.table else 'table.json and calibration.npz'} beside the weights; "
        f"--no-recalibrate exports with the supernet's statistics (much less accurate for smaller sub-networks)"
    )


def calibrate(
    module: nn.Module, loaded: LoadedWeights, images_from: str, batches: list[torch.Tensor], recalibrate_bn: bool
) -> tuple[str, int]:
    """Set the sub-network's BN statistics from `batches`; returns (where they came from, images used)."""
    if not loaded.trained:
        return images_from, recalibrate(module, batches)
    if not recalibrate_bn:
        return "inherited from the supernet, NOT recalibrated (--no-recalibrate)", 0
    count = recalibrate(module, batches)
    frozen = loaded.net.space.batch_norm == "frozen"
    where = " (the last layer and the head; the rest keep the pretrained statistics they were trained with)"
    return f"recalibrated on {count} {images_from}{where if frozen else ''}", count


def shipped_calibration(table: "AccuracyTable | None") -> Path | None:
    """The calibration images the table ships beside its weights, checked against their recorded sha256."""
    from specialize.fileio import sha256_file

    path = table.calibration_path() if table is not None else None
    if path is None or not path.is_file():
        return None
    if sha256_file(path) != table.calibration.get("sha256"):
        raise SpecializeError(
            f"calibration file {path} does not match the sha256 recorded in accuracy table {table.path}"
        )
    return path


def calibration_file_batches(path: Path, resolution: int) -> list[torch.Tensor]:
    import numpy as np

    from supernet.data import image_batches, resized_as_read

    try:
        with np.load(path, allow_pickle=False) as archive:
            images = archive["images"]
    except (OSError, ValueError, KeyError) as exc:
        raise SpecializeError(f"calibration file {path}: field 'images' cannot be read: {exc}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise SpecializeError(f"calibration file {path}: field 'images' is not uint8 [N, H, W, 3]")
    return image_batches(resized_as_read(images, resolution), resolution)


def _collect_warnings(result: ExportResult, loaded: LoadedWeights, arch: Architecture, exported: Architecture) -> None:
    if not loaded.trained:
        result.warnings.append(UNTRAINED_WARNING)
    width_note = proxy_width_note(arch, exported)
    if width_note:
        result.warnings.append(width_note)


def _tensorrt_output(result: ExportResult, onnx_bytes: bytes, engine_path: Path, resolution: int) -> None:
    reason = tensorrt_unavailable_reason()
    if reason is None:
        atomic_write_bytes(engine_path, build_tensorrt_engine(onnx_bytes, resolution, result.precision))
        result.output = result.engine_path = engine_path
        result.notes.append("TensorRT engines are specific to the GPU and TensorRT version they were built with")
        return
    result.build_script = write_build_script(result.onnx_path, engine_path, resolution, result.precision)
    result.warnings.append(
        f"no TensorRT engine built: {reason}. Wrote the ONNX file and {result.build_script}, which runs trtexec; "
        f"engines are GPU- and TensorRT-version specific, so build on the target device (Jetson users: on the Jetson)"
    )

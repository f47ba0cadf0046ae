"""What gets timed: every (layer, candidate) block at its real input shape, the stem, the head, whole
networks, and an empty graph that measures the runtime's per-call cost. Each is a torch module plus
an example input, built from `supernet.static` so that timed blocks are the deployed blocks.
Imports torch: only the measuring commands import this module."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from specialize.space import Architecture, SearchSpace
from supernet.static import StaticNet, build_static, classify_features, layer_module


@dataclass(frozen=True)
class Workload:
    key: str  # "L03/k5e6se", "stem", "head", "dispatch", "net/<arch>"
    input_shape: tuple[int, ...]
    layer: int | None = None
    candidate: int | None = None
    arch: str | None = None


def block_key(space: SearchSpace, layer: int, candidate: int) -> str:
    return f"L{layer:02d}/{space.candidate_names[candidate]}"


def space_workloads(space: SearchSpace, batch: int = 1) -> list[Workload]:
    """The dispatch probe, the stem, every block and the head, in network order. `skip` is the identity:
    it runs nothing, so it has no workload and its latency is 0 (what `assemble_profile` leaves there)."""
    sizes = space.layer_in_sizes()
    items = [Workload("dispatch", (1, 1, 1, 1)), Workload("stem", (batch, 3, space.resolution, space.resolution))]
    for layer, spec in enumerate(space.layers):
        shape = (batch, spec.in_channels, sizes[layer], sizes[layer])
        items += [
            Workload(block_key(space, layer, i), shape, layer, i)
            for i in range(space.num_candidates)
            if not space.candidates[i].is_skip
        ]
    last = space.layers[-1].out_channels
    items.append(Workload("head", (batch, last, space.final_size, space.final_size)))
    return items


BOUNDARY = "qdq/"  # key prefix of the INT8 boundary probes


def boundary_key(shape: tuple[int, ...]) -> str:
    return BOUNDARY + "x".join(map(str, shape[1:]))


def handover_shapes(space: SearchSpace, batch: int = 1) -> list[tuple[int, ...]]:
    """The tensor each block takes: the stem's output, every layer's output; the last one is the head's input."""
    sizes = space.layer_in_sizes() + [space.final_size]
    channels = [spec.in_channels for spec in space.layers] + [space.layers[-1].out_channels]
    return [(batch, c, s, s) for c, s in zip(channels, sizes)]


def timed_workloads(space: SearchSpace, batch: int = 1, precision: str = "fp32") -> list[Workload]:
    """What a profile times: `space_workloads`, and at int8 one QuantizeLinear -> DequantizeLinear probe per
    tensor shape blocks hand over (`supernet.quantize.boundary_graph`): a block timed alone pays that pair at its
    input and output, a block inside a network does not, so `assemble_profile` takes it off."""
    probes = sorted(set(handover_shapes(space, batch))) if precision == "int8" else []
    return space_workloads(space, batch) + [Workload(boundary_key(shape), shape) for shape in probes]


def workload_onnx(
    space: SearchSpace, workload: Workload, precision: str, runtime_name: str, dynamic_batch: bool = True
) -> bytes:
    """The ONNX graph timed for `workload`, in the form its precision ships in (`as_deployed`); a boundary probe
    is its QDQ pair; the empty dispatch graph stays as it is at any precision."""
    from hw_profiles.runtime import as_deployed
    from supernet.onnx_graph import deploy_graph
    from supernet.quantize import boundary_graph

    if workload.key.startswith(BOUNDARY):
        return boundary_graph(workload.input_shape, "tensorrt" if runtime_name == "tensorrt" else "onnxruntime")
    module, example = build_module(space, workload), example_input(workload.input_shape)
    dispatch = workload.key == "dispatch"
    onnx = deploy_graph(module, example, check_ops=not dispatch, dynamic_batch=dynamic_batch).SerializeToString()
    return onnx if dispatch else as_deployed(onnx, precision, runtime_name, tuple(workload.input_shape))


def network_workload(space: SearchSpace, arch: Architecture, batch: int = 1) -> Workload:
    return Workload(f"net/{arch}", (batch, 3, space.resolution, space.resolution), arch=str(arch))


class Head(nn.Module):
    """StaticNet after its blocks: head conv, global average pool, dropout, classifier."""

    def __init__(self, net: StaticNet):
        super().__init__()
        self.head, self.dropout, self.classifier = net.head, net.dropout, net.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return classify_features(self, x)


def build_module(space: SearchSpace, workload: Workload) -> nn.Module:
    """A freshly initialized torch module for `workload` (random weights: latency does not care)."""
    if workload.key == "dispatch":
        return nn.Identity()
    if workload.arch is not None:
        return build_static(space, space.parse_arch(workload.arch))
    if workload.layer is not None:
        return layer_module(space, workload.layer, space.candidates[workload.candidate])
    net = build_static(space, space.smallest_arch())
    return nn.Sequential(net.normalize, net.stem) if workload.key == "stem" else Head(net)


def example_input(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random(shape, dtype=np.float32))

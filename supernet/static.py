"""Static networks built from standard torch modules: what `extract` returns and what gets exported.

Models take RGB float input in [0, 1], NCHW; normalization is the first module, so it travels
inside every exported graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from specialize.cost import se_channels
from specialize.space import Architecture, Candidate, LayerSpec, SearchSpace
from supernet.bn import freeze_batch_norm


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class _AsymmetricConv(torch.autograd.Function):
    """Conv with zero padding (left, right, top, bottom), exported as one ONNX Conv whose `pads` differ before and
    after (TorchScript would export F.pad as a computed Pad). Used only while exporting; training pads with F.pad."""

    @staticmethod
    def forward(ctx, x, weight, stride: int, groups: int, pads: tuple[int, int, int, int]):
        return F.conv2d(F.pad(x, pads), weight, None, stride, 0, 1, groups)

    @staticmethod
    def symbolic(g, x, weight, stride: int, groups: int, pads: tuple[int, int, int, int]):
        kernel = weight.type().sizes()[-2:]
        return g.op(
            "Conv",
            x,
            weight,
            kernel_shape_i=list(kernel),
            strides_i=[stride, stride],
            group_i=groups,
            dilations_i=[1, 1],
            pads_i=[pads[2], pads[0], pads[3], pads[1]],
        )


class PaddedConv2d(nn.Conv2d):
    """A bias-free conv whose zero padding may differ before and after (TensorFlow's 'SAME' at stride 2 on an even
    input pads one more pixel after). Symmetric padding stays the conv's own; asymmetric padding exports as one
    ONNX Conv with asymmetric `pads`. State-dict keys are those of `nn.Conv2d`."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, groups: int, pads: tuple[int, int]):
        symmetric = pads[0] == pads[1]
        super().__init__(c_in, c_out, kernel, stride, pads[0] if symmetric else 0, groups=groups, bias=False)
        self.pads = None if symmetric else (pads[0], pads[1], pads[0], pads[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pads is None:
            return super().forward(x)
        if torch.onnx.is_in_onnx_export():
            return _AsymmetricConv.apply(x, self.weight, self.stride[0], self.groups, self.pads)
        return F.conv2d(F.pad(x, self.pads), self.weight, None, self.stride, 0, 1, self.groups)


def conv_bn(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    act: bool = True,
    pads: tuple[int, int] | None = None,
) -> nn.Sequential:
    """Conv (padding `pads` before/after, default kernel // 2 each side) + BN [+ ReLU6]."""
    pads = pads or (kernel // 2, kernel // 2)
    layers = [PaddedConv2d(c_in, c_out, kernel, stride, groups, pads), nn.BatchNorm2d(c_out)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        reduced = se_channels(channels)
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = torch.sigmoid(self.expand(torch.relu(self.reduce(s))))
        return x * s


class MBConv(nn.Module):
    """1x1 expand (BN, ReLU6) -> kxk depthwise (BN, ReLU6) -> [SE] -> 1x1 project (BN) [+ input]."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        kernel: int,
        expansion: int,
        se: bool,
        pads: tuple[int, int] | None = None,
    ):
        super().__init__()
        mid = c_in * expansion
        self.expand = conv_bn(c_in, mid, 1) if expansion != 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, kernel, stride, groups=mid, pads=pads)
        self.se = SqueezeExcite(mid) if se else nn.Identity()
        self.project = conv_bn(mid, c_out, 1, act=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


def block_module(spec: LayerSpec, cand: Candidate, pads: tuple[int, int] | None = None) -> nn.Module:
    """The static module of one searchable layer: its MBConv, or `nn.Identity` for `skip` (no ONNX node).
    `pads`: the depthwise conv's padding before/after (SearchSpace.conv_pads); default symmetric."""
    if cand.is_skip:
        return nn.Identity()
    return MBConv(spec.in_channels, spec.out_channels, spec.stride, cand.kernel, cand.expansion, cand.se, pads)


def layer_module(space: SearchSpace, layer: int, cand: Candidate) -> nn.Module:
    """Searchable layer `layer` of `space` as candidate `cand`, padded as the space pads: what a StaticNet holds
    there and what the profiler times for that (layer, candidate)."""
    spec, size = space.layers[layer], space.layer_in_sizes()[layer]
    return block_module(spec, cand, None if cand.is_skip else space.conv_pads(size, cand.kernel, spec.stride))


def build_stem(space: SearchSpace) -> nn.Sequential:
    """The fixed stem: conv 3x3 + BN + ReLU6, then an MBConv of expansion 1, kernel 3."""
    return nn.Sequential(
        conv_bn(
            3, space.stem_channels, 3, space.stem_stride, pads=space.conv_pads(space.resolution, 3, space.stem_stride)
        ),
        MBConv(space.stem_channels, space.first_block_channels, 1, 3, 1, False),
    )


def pooled_head(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[N, head channels]: `net.head` conv on the last block's output, then global average pooling."""
    return torch.flatten(net.head(x).mean((2, 3), keepdim=True), 1)


def classify_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The fixed head of every network: `pooled_head`, `net.dropout`, `net.classifier`."""
    return net.classifier(net.dropout(pooled_head(net, x)))


class StaticNet(nn.Module):
    def __init__(self, space: SearchSpace, arch: Architecture):
        super().__init__()
        self.arch_string = str(arch)
        self.normalize = Normalize(space.mean, space.std)
        self.stem = build_stem(space)
        self.blocks = nn.Sequential(*[layer_module(space, layer, c) for layer, c in enumerate(arch.candidates)])
        self.head = conv_bn(space.layers[-1].out_channels, space.head_channels, 1)
        self.dropout = nn.Dropout(space.dropout)
        self.classifier = nn.Linear(space.head_channels, space.num_classes)
        if space.batch_norm == "frozen":
            freeze_batch_norm(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled head features the classifier reads (what a linear probe is fitted on)."""
        return pooled_head(self, self.blocks(self.stem(self.normalize(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return classify_features(self, self.blocks(self.stem(self.normalize(x))))


def build_static(space: SearchSpace, arch: Architecture) -> StaticNet:
    """A freshly initialized static network of `arch` (no supernet involved)."""
    return StaticNet(space, arch)

"""Static networks built from standard torch modules: what `extract` returns and what gets exported.

Models take RGB float input in [0, 1], NCHW; normalization is the first module, so it travels
inside every exported graph.
"""
from __future__ import annotations

import torch
from torch import nn

from specialize.cost import se_channels
from specialize.space import Architecture, Candidate, LayerSpec, SearchSpace


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
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

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, expansion: int, se: bool):
        super().__init__()
        mid = c_in * expansion
        self.expand = conv_bn(c_in, mid, 1) if expansion != 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, kernel, stride, groups=mid)
        self.se = SqueezeExcite(mid) if se else nn.Identity()
        self.project = conv_bn(mid, c_out, 1, act=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


def block_module(spec: LayerSpec, cand: Candidate) -> nn.Module:
    """The static module of one searchable layer: its MBConv, or `nn.Identity` for `skip` (no ONNX node)."""
    if cand.is_skip:
        return nn.Identity()
    return MBConv(spec.in_channels, spec.out_channels, spec.stride, cand.kernel, cand.expansion, cand.se)


def classify_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The fixed head of every network: `net.head` conv, global average pool, `net.dropout`, `net.classifier`."""
    x = torch.flatten(net.head(x).mean((2, 3), keepdim=True), 1)
    return net.classifier(net.dropout(x))


class StaticNet(nn.Module):
    def __init__(self, space: SearchSpace, arch: Architecture):
        super().__init__()
        self.arch_string = str(arch)
        self.normalize = Normalize(space.mean, space.std)
        self.stem = nn.Sequential(
            conv_bn(3, space.stem_channels, 3, space.stem_stride),
            MBConv(space.stem_channels, space.first_block_channels, 1, 3, 1, False),
        )
        self.blocks = nn.Sequential(*[block_module(spec, c) for spec, c in zip(space.layers, arch.candidates)])
        self.head = conv_bn(space.layers[-1].out_channels, space.head_channels, 1)
        self.dropout = nn.Dropout(space.dropout)
        self.classifier = nn.Linear(space.head_channels, space.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return classify_features(self, self.blocks(self.stem(self.normalize(x))))


def build_static(space: SearchSpace, arch: Architecture) -> StaticNet:
    """A freshly initialized static network of `arch` (no supernet involved)."""
    return StaticNet(space, arch)

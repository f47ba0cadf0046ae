"""The weight-sharing supernet (PONAS Fig. 1(b), once-for-all style).

Each searchable layer stores the weights of its largest candidate (largest kernel and expansion,
SE on). A smaller candidate uses the centre crop of the depthwise kernel and the leading channels of
the expansion; batch norm is sliced the same way. The architecture is given at call time, so one
set of parameters runs forward and backward for any architecture without reallocation.
`extract(arch)` copies the slices into a `StaticNet` made of standard torch modules.
Elastic depth: the `skip` candidate is the identity (the input passes through; no weights are used),
and an extracted network has an `nn.Identity` there.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from specialize.cost import se_channels
from specialize.space import Architecture, Candidate, LayerSpec, SearchSpace
from supernet.bn import freeze_batch_norm
from supernet.static import Normalize, StaticNet, build_static, build_stem, classify_features, conv_bn


def _batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d, channels: int) -> torch.Tensor:
    """Batch norm over the leading `channels` of `bn` (running stats update in place on the slice)."""
    return F.batch_norm(
        x,
        bn.running_mean[:channels],
        bn.running_var[:channels],
        bn.weight[:channels],
        bn.bias[:channels],
        bn.training,
        bn.momentum,
        bn.eps,
    )


class ElasticMBConv(nn.Module):
    def __init__(
        self,
        spec: LayerSpec,
        kernels: Sequence[int],
        expansions: Sequence[int],
        pads: Callable[[int], tuple[int, int]] = lambda k: (k // 2, k // 2),
    ):
        super().__init__()
        self.spec = spec
        self.pads = pads  # kernel -> the depthwise conv's zero padding before/after (SearchSpace.conv_pads)
        self.max_kernel = max(kernels)
        c_in, c_out, mid = spec.in_channels, spec.out_channels, spec.in_channels * max(expansions)
        reduced = se_channels(mid)
        self.expand_conv = nn.Parameter(torch.empty(mid, c_in, 1, 1))
        self.expand_bn = nn.BatchNorm2d(mid)
        self.dw_conv = nn.Parameter(torch.empty(mid, 1, self.max_kernel, self.max_kernel))
        self.dw_bn = nn.BatchNorm2d(mid)
        self.se_reduce = nn.Conv2d(mid, reduced, 1)
        self.se_expand = nn.Conv2d(reduced, mid, 1)
        self.project_conv = nn.Parameter(torch.empty(c_out, mid, 1, 1))
        self.project_bn = nn.BatchNorm2d(c_out)
        self.residual = spec.stride == 1 and c_in == c_out
        for weight in (self.expand_conv, self.dw_conv, self.project_conv):
            nn.init.kaiming_normal_(weight, mode="fan_out")

    def sliced(self, cand: Candidate) -> dict[str, torch.Tensor]:
        """The weight views that candidate `cand` uses, keyed like `MBConv`'s state dict (none for skip)."""
        if cand.is_skip:
            return {}
        mid = self.spec.in_channels * cand.expansion
        off = (self.max_kernel - cand.kernel) // 2
        views = {
            "expand.0.weight": self.expand_conv[:mid],
            "depthwise.0.weight": self.dw_conv[:mid, :, off : off + cand.kernel, off : off + cand.kernel],
            "project.0.weight": self.project_conv[:, :mid],
        }
        for prefix, bn, n in (
            ("expand.1", self.expand_bn, mid),
            ("depthwise.1", self.dw_bn, mid),
            ("project.1", self.project_bn, self.spec.out_channels),
        ):
            for key in ("weight", "bias", "running_mean", "running_var"):
                views[f"{prefix}.{key}"] = getattr(bn, key)[:n]
        if cand.se:
            r = se_channels(mid)
            views.update(
                {
                    "se.reduce.weight": self.se_reduce.weight[:r, :mid],
                    "se.reduce.bias": self.se_reduce.bias[:r],
                    "se.expand.weight": self.se_expand.weight[:mid, :r],
                    "se.expand.bias": self.se_expand.bias[:mid],
                }
            )
        return views

    def forward(self, x: torch.Tensor, cand: Candidate) -> torch.Tensor:
        if cand.is_skip:
            return x
        mid = self.spec.in_channels * cand.expansion
        off = (self.max_kernel - cand.kernel) // 2
        h = F.relu6(_batch_norm(F.conv2d(x, self.expand_conv[:mid]), self.expand_bn, mid))
        dw = self.dw_conv[:mid, :, off : off + cand.kernel, off : off + cand.kernel]
        before, after = self.pads(cand.kernel)
        if before == after:
            h = F.conv2d(h, dw, None, self.spec.stride, before, 1, mid)
        else:
            h = F.conv2d(F.pad(h, (before, after, before, after)), dw, None, self.spec.stride, 0, 1, mid)
        h = F.relu6(_batch_norm(h, self.dw_bn, mid))
        if cand.se:
            r = se_channels(mid)
            s = F.conv2d(h.mean((2, 3), keepdim=True), self.se_reduce.weight[:r, :mid], self.se_reduce.bias[:r])
            s = F.conv2d(F.relu(s), self.se_expand.weight[:mid, :r], self.se_expand.bias[:mid])
            h = h * torch.sigmoid(s)
        y = _batch_norm(F.conv2d(h, self.project_conv[:, :mid]), self.project_bn, self.spec.out_channels)
        return x + y if self.residual else y


class Supernet(nn.Module):
    def __init__(self, space: SearchSpace):
        super().__init__()
        self.space = space
        self.normalize = Normalize(space.mean, space.std)
        self.stem = build_stem(space)
        self.blocks = nn.ModuleList(
            ElasticMBConv(spec, space.kernels, space.expansions, partial(space.conv_pads, size, stride=spec.stride))
            for spec, size in zip(space.layers, space.layer_in_sizes())
        )
        self.head = conv_bn(space.layers[-1].out_channels, space.head_channels, 1)
        self.dropout = nn.Dropout(space.dropout)
        self.classifier = nn.Linear(space.head_channels, space.num_classes)
        if space.batch_norm == "frozen":
            freeze_batch_norm(self)

    def _candidates(self, arch: Architecture | Sequence[Candidate]) -> Sequence[Candidate]:
        cands = arch.candidates if isinstance(arch, Architecture) else arch
        if len(cands) != self.space.num_layers:
            raise ValueError(f"architecture has {len(cands)} blocks, space has {self.space.num_layers} layers")
        return cands

    def features_in(self, x: torch.Tensor) -> torch.Tensor:
        """Input normalization and the fixed stem."""
        return self.stem(self.normalize(x))

    def run_blocks(self, h: torch.Tensor, cands: Sequence[Candidate], start: int = 0) -> torch.Tensor:
        for block, cand in zip(self.blocks[start : start + len(cands)], cands):
            h = block(h, cand)
        return h

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return classify_features(self, h)

    def forward(self, x: torch.Tensor, arch: Architecture | Sequence[Candidate]) -> torch.Tensor:
        return self.classify(self.run_blocks(self.features_in(x), self._candidates(arch)))

    @torch.no_grad()
    def extract(self, arch: Architecture, space: SearchSpace | None = None) -> StaticNet:
        """A standalone static network with this supernet's weights and BN statistics for `arch`, built for `space`
        (default this supernet's; another input size of the same network builds its own 'same' padding)."""
        net = build_static(space or self.space, arch)
        net.normalize.load_state_dict(self.normalize.state_dict())
        net.stem.load_state_dict(self.stem.state_dict())
        net.head.load_state_dict(self.head.state_dict())
        net.classifier.load_state_dict(self.classifier.state_dict())
        for block, static_block, cand in zip(self.blocks, net.blocks, arch.candidates):
            target = static_block.state_dict()
            for key, view in block.sliced(cand).items():
                target[key].copy_(view)
        return net.train(self.training)

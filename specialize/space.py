"""The search space, declared once as data.

Everything else (supernet, cost model, profiler, tables, exporter, search) reads a `SearchSpace`.
A space is a stem (conv 3x3 + BN + ReLU6, then an MBConv with expansion 1 and kernel 3), a list of
searchable layers, a head (conv 1x1 + BN + ReLU6, global average pool, dropout, fully connected),
an input resolution, a class count and a candidate set.

Candidates are MBConv blocks named `k{kernel}e{expansion}` with `se` appended when
squeeze-and-excite is on (`k3e3`, `k7e6se`). An architecture is one candidate per searchable layer;
its canonical string joins the names with commas.

Elastic depth (once-for-all): a space declared with `skip=True` has one more candidate, `skip`, the
identity, placed last in the candidate list. It is allowed only on layers whose input and output
shapes match (stride 1, equal channels); `allowed_mask()` says where, as [layers][candidates], and every
reader (cost model, search problem, sampler, trainer, profiler) uses it. `k3e6,skip,k5e3se` is an
architecture of such a space; `skip` on a layer that changes shape is refused. `skip` is covered by the
fingerprint only when true, so spaces without it keep their fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from specialize.errors import SpecializeError, has_control_characters
from specialize.registry import Registry

SPACE_SCHEMA_VERSION = 1
_CANDIDATE_RE = re.compile(r"^k([1-9][0-9]*)e([1-9][0-9]*)(se)?$", re.ASCII)  # ASCII digits, no leading zeros


SKIP_NAME = "skip"
PADDINGS = ("symmetric", "same")
# How training treats batch norm. batch: batch statistics in training, re-estimated for every sub-network
# (recalibration). frozen (a pretrained start only): the imported running statistics normalize in training too and
# are never re-estimated (the scale and shift still train), except in the last searchable layer and the head: what
# the head normalizes depends on the last layer's candidate, which one fixed set of statistics cannot fit, so those
# two are treated as under `batch` (supernet/bn.py; measured in docs/training.md).
BATCH_NORMS = ("batch", "frozen")
# The largest space a file may declare: ImageNet-21k's classes, EfficientNet-B7-sized channels and resolution; a
# 28 KB file listing 2,000 kernels x 2,000 expansions took 1 GB before it was refused.
LIMITS = {
    "channels": 8192,
    "layers": 200,
    "candidates": 256,
    "resolution": 1024,
    "kernels": 15,
    "expansions": 16,
    "classes": 100_000,
}


@dataclass(frozen=True, order=True)
class Candidate:
    """An MBConv block (kernel, expansion, squeeze-excite), or the identity `SKIP` (kernel and expansion 0)."""

    kernel: int
    expansion: int
    se: bool

    @property
    def is_skip(self) -> bool:
        return self.kernel == 0

    @property
    def name(self) -> str:
        return SKIP_NAME if self.is_skip else f"k{self.kernel}e{self.expansion}{'se' if self.se else ''}"

    @classmethod
    def parse(cls, name: str) -> "Candidate":
        if name.strip() == SKIP_NAME:
            return SKIP
        match = _CANDIDATE_RE.match(name.strip())
        if not match:
            raise SpecializeError(
                f"malformed candidate name {name!r}: expected k<kernel>e<expansion>[se] or skip, e.g. k3e3 or k7e6se"
            )
        return cls(int(match.group(1)), int(match.group(2)), match.group(3) is not None)


SKIP = Candidate(0, 0, False)  # the identity block of elastic depth


@dataclass(frozen=True)
class LayerSpec:
    """One searchable layer: channels in and out, and the stride of its depthwise conv."""

    in_channels: int
    out_channels: int
    stride: int

    @property
    def keeps_shape(self) -> bool:
        """Input and output shapes match (stride 1, equal channels): the layer may be skipped."""
        return self.stride == 1 and self.in_channels == self.out_channels


@dataclass(frozen=True)
class SearchSpace:
    name: str
    resolution: int
    num_classes: int
    stem_channels: int
    stem_stride: int
    first_block_channels: int
    layers: tuple[LayerSpec, ...]
    head_channels: int
    dropout: float
    kernels: tuple[int, ...] = (3, 5, 7)
    expansions: tuple[int, ...] = (3, 6)
    se_options: tuple[bool, ...] = (False, True)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    class_names: tuple[str, ...] | None = None
    width_multiplier: float = 1.0
    base_space: str | None = None  # name of the full-size space this proxy was derived from
    skip: bool = False  # elastic depth: an identity candidate on layers that keep their shape
    padding: str = "symmetric"  # conv zero padding: symmetric (k // 2 each side) or same (TensorFlow's 'SAME')
    # how training treats batch norm (BATCH_NORMS). Not part of the fingerprint: the deployed network folds batch
    # norm into its convolutions either way, so profiles and costs are the same network's
    batch_norm: str = "batch"

    # -- candidates ------------------------------------------------------------------------
    @property
    def candidates(self) -> tuple[Candidate, ...]:
        blocks = tuple(Candidate(k, e, s) for k in self.kernels for e in self.expansions for s in self.se_options)
        return blocks + ((SKIP,) if self.skip else ())

    @property
    def candidate_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.candidates)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_candidates(self) -> int:
        return len(self.candidates)

    @property
    def largest(self) -> Candidate:
        return Candidate(max(self.kernels), max(self.expansions), any(self.se_options))

    def candidate_index(self, name: str) -> int:
        try:
            return self.candidate_names.index(Candidate.parse(name).name)
        except ValueError:
            raise SpecializeError(
                f"unknown candidate {name!r} in space {self.name!r}; valid: {', '.join(self.candidate_names)}"
            ) from None

    @property
    def skip_index(self) -> int | None:
        """Index of the `skip` candidate, or None in a space without elastic depth."""
        return self.num_candidates - 1 if self.skip else None

    def allows(self, layer: int, candidate: int) -> bool:
        """Whether `candidate` may sit at `layer`: every block may; `skip` only where the shape is kept."""
        return candidate != self.skip_index or self.layers[layer].keeps_shape

    def allowed_mask(self) -> tuple[tuple[bool, ...], ...]:
        """[layers][candidates]: which candidate each layer may take (all True without elastic depth)."""
        return tuple(tuple(self.allows(l, c) for c in range(self.num_candidates)) for l in range(self.num_layers))

    def allowed_indices(self, layer: int) -> tuple[int, ...]:
        return tuple(c for c in range(self.num_candidates) if self.allows(layer, c))

    def skippable_layers(self) -> tuple[int, ...]:
        """Layers (from 0) where `skip` is allowed; empty without elastic depth."""
        return tuple(l for l in range(self.num_layers) if self.skip and self.layers[l].keeps_shape)

    # -- geometry ---------------------------------------------------------------------------
    def conv_pads(self, size: int, kernel: int, stride: int = 1) -> tuple[int, int]:
        """Zero padding (before, after) of a kernel x kernel conv on a size x size input. `symmetric`: kernel // 2
        each side. `same` (TensorFlow, the padding EfficientNet-Lite's weights were trained with): the total that
        makes the output ceil(size / stride), the odd pixel after. Both give `conv_out_size` outputs."""
        if self.padding == "symmetric":
            return kernel // 2, kernel // 2
        total = max((conv_out_size(size, stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    @property
    def stem_out_size(self) -> int:
        return conv_out_size(self.resolution, self.stem_stride)

    def layer_in_sizes(self) -> list[int]:
        """Spatial size (H = W) of the input of each searchable layer."""
        sizes, size = [], self.stem_out_size
        for layer in self.layers:
            sizes.append(size)
            size = conv_out_size(size, layer.stride)
        return sizes

    @property
    def final_size(self) -> int:
        sizes = self.layer_in_sizes()
        return conv_out_size(sizes[-1], self.layers[-1].stride)

    # -- identity ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = asdict(self)
        data["layers"] = [asdict(layer) for layer in self.layers]
        if not self.skip:
            data.pop("skip")  # spaces without elastic depth keep the files and fingerprints they always had
        if self.padding == "symmetric":
            data.pop("padding")  # likewise for the padding every space had before `same`
        if self.batch_norm == "batch":
            data.pop("batch_norm")  # and for batch norm as every space trained it before `frozen`
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "SearchSpace":
        """The one reader of a space inside a file; anything malformed raises ValueError saying what."""
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        try:
            data = dict(data)
            data["layers"] = tuple(LayerSpec(**layer) for layer in data["layers"])
            for key in ("kernels", "expansions", "se_options", "mean", "std"):
                data[key] = tuple(data[key])
            if data.get("class_names") is not None:
                data["class_names"] = tuple(data["class_names"])
            space = cls(**data)
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{type(exc).__name__}: {exc}") from None
        space._check()
        return space

    def _check(self) -> None:
        counts = [
            self.resolution,
            self.num_classes,
            self.stem_channels,
            self.stem_stride,
            self.first_block_channels,
            self.head_channels,
            *self.kernels,
            *self.expansions,
        ]
        counts += [v for layer in self.layers for v in (layer.in_channels, layer.out_channels, layer.stride)]
        if not all(type(v) is int and 0 < v <= 100_000 for v in counts):
            raise ValueError("sizes, channels, strides, kernels and expansions must be integers in 1..100000")
        if (
            not isinstance(self.name, str)
            or not 0 < len(self.layers) <= 1000
            or not self.kernels
            or not self.expansions
        ):
            raise ValueError("needs a name and 1..1000 layers, kernels and expansions")
        numbers = [self.dropout, self.width_multiplier, *self.mean, *self.std]
        if not all(type(v) in (int, float) and -1e6 <= v <= 1e6 for v in numbers) or not 0 <= self.dropout < 1:
            raise ValueError("dropout, width, mean and std must be numbers in [-1e6, 1e6] (dropout in [0, 1))")
        if not all(type(v) is bool for v in self.se_options) or len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("se_options must be booleans; mean and std three numbers each")
        if type(self.skip) is not bool:
            raise ValueError("skip must be a boolean")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}")
        if self.batch_norm not in BATCH_NORMS:
            raise ValueError(f"batch_norm must be one of {', '.join(BATCH_NORMS)}")
        if not self.width_multiplier > 0 or not all(v > 0 for v in self.std):
            raise ValueError("width_multiplier and std must be positive")
        if self.class_names is not None and not all(isinstance(c, str) for c in self.class_names):
            raise ValueError("class_names must be strings")
        if any(has_control_characters(t) for t in (self.name, self.base_space or "", *(self.class_names or ()))):
            raise ValueError("name, base_space and class_names must be printable text (no control characters)")
        self._check_shape()

    def _check_shape(self) -> None:
        """A network that can be built: odd kernels and no repeated option, each layer taking the channels the one
        before gives, one name per class; and sizes a small file cannot turn into gigabytes (LIMITS)."""
        sizes = {
            "channels": max(
                self.stem_channels,
                self.first_block_channels,
                self.head_channels,
                *(x.out_channels for x in self.layers),
            ),
            "layers": len(self.layers),
            # counted, not built: 2,000 x 2,000 options would make 4 million Candidate objects (800 MB) first
            "candidates": len(self.kernels) * len(self.expansions) * len(self.se_options) + int(self.skip is True),
            "resolution": self.resolution,
            "kernels": max(self.kernels),
            "expansions": max(self.expansions),
            "classes": self.num_classes,
        }
        over = [f"{k} {v} (at most {LIMITS[k]})" for k, v in sizes.items() if v > LIMITS[k]]
        if over:
            raise ValueError(f"too large: {', '.join(over)}")
        if any(k % 2 == 0 for k in self.kernels):
            raise ValueError("kernels must be odd (a depthwise kernel has a centre)")
        for key in ("kernels", "expansions", "se_options"):
            if len(set(getattr(self, key))) != len(getattr(self, key)):
                raise ValueError(f"{key} repeat a value")
        chain = [self.first_block_channels] + [layer.out_channels for layer in self.layers[:-1]]
        if any(layer.in_channels != given for layer, given in zip(self.layers, chain)):
            raise ValueError("each layer's in_channels must be the channels the layer before it gives out")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names holds {len(self.class_names)} names for {self.num_classes} classes")

    @property
    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of everything that shapes the network (not the class names)."""
        return self._digest("class_names")

    @property
    def body_fingerprint(self) -> str:
        """The fingerprint of everything but the classifier (name, class count and names left out): two spaces
        with the same body differ only in their last fully connected layer."""
        return self._digest("name", "num_classes", "class_names", "base_space")

    def _digest(self, *left_out: str) -> str:
        data = {k: v for k, v in self.to_dict().items() if k not in (*left_out, "batch_norm")}
        return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]

    @property
    def preset_name(self) -> str | None:
        """The preset this space is (same name and fingerprint), else None: a dataset's own space."""
        preset = SPACES.get(self.name)
        return self.name if preset is not None and preset().fingerprint == self.fingerprint else None

    def scaled(self, width: float = 1.0, resolution: int | None = None) -> "SearchSpace":
        """An EcoNAS proxy of this space: channels times `width`, input at `resolution`."""
        if width == 1.0 and resolution in (None, self.resolution):
            return self

        def ch(c: int) -> int:
            return make_divisible(c * width)

        layers = tuple(LayerSpec(ch(l.in_channels), ch(l.out_channels), l.stride) for l in self.layers)
        return replace(
            self,
            name=f"{self.name}@c{width:g}r{resolution or self.resolution}",
            layers=layers,
            resolution=resolution or self.resolution,
            stem_channels=ch(self.stem_channels),
            first_block_channels=ch(self.first_block_channels),
            head_channels=ch(self.head_channels),
            width_multiplier=width,
            base_space=self.base_space or self.name,
        )

    def with_classes(self, class_names: tuple[str, ...]) -> "SearchSpace":
        """This space sized for a dataset's classes. Another class count is another network (the classifier
        changes, and with it the fingerprint), so it gets its own name: `cifar10-2class`."""
        class_names = tuple(class_names)
        if len(class_names) == self.num_classes:
            return replace(self, class_names=class_names)
        base = self.base_space or self.name
        return replace(
            self, name=f"{base}-{len(class_names)}class", num_classes=len(class_names), class_names=class_names
        )

    def with_resolution(self, resolution: int | None) -> "SearchSpace":
        """This space deployed at another input resolution (a dataset's own: `efficientnet-lite0-10class-64px`).
        Unlike `scaled`, this is the network that ships, not a proxy of it."""
        if resolution in (None, self.resolution):
            return self
        return replace(self, name=f"{self.name}-{resolution}px", resolution=resolution)

    # -- architectures ----------------------------------------------------------------------
    def parse_arch(self, text: str) -> "Architecture":
        names = [part.strip() for part in text.split(",")] if text.strip() else []
        if len(names) != self.num_layers:
            raise SpecializeError(
                f"architecture has {len(names)} blocks but space {self.name!r} has {self.num_layers} searchable "
                "layers; "
                f"give one of {', '.join(self.candidate_names)} per layer, comma-separated"
            )
        indices = tuple(self.candidate_index(n) for n in names)
        self._check_allowed(indices)
        return Architecture(self, indices)

    def arch_from_indices(self, indices) -> "Architecture":
        indices = tuple(int(i) for i in indices)
        if len(indices) != self.num_layers or not all(0 <= i < self.num_candidates for i in indices):
            raise SpecializeError(f"invalid candidate indices {indices} for space {self.name!r}")
        self._check_allowed(indices)
        return Architecture(self, indices)

    def _check_allowed(self, indices: tuple[int, ...]) -> None:
        bad = next((l for l, i in enumerate(indices) if not self.allows(l, i)), None)
        if bad is not None:
            spec = self.layers[bad]
            raise SpecializeError(
                f"layer {bad + 1} of space {self.name!r} ({spec.in_channels} -> {spec.out_channels} channels, stride "
                f"{spec.stride}) cannot be skipped: skip needs stride 1 and equal input and output channels"
            )

    def largest_arch(self) -> "Architecture":
        return self.arch_from_indices([self.candidates.index(self.largest)] * self.num_layers)

    def smallest_arch(self) -> "Architecture":
        """The smallest block everywhere, `skip` where it is allowed."""
        smallest = self.candidates.index(
            Candidate(min(self.kernels), min(self.expansions), False not in self.se_options)
        )
        skip = self.skip_index
        return self.arch_from_indices(
            [skip if skip is not None and self.allows(l, skip) else smallest for l in range(self.num_layers)]
        )


@dataclass(frozen=True)
class Architecture:
    space: SearchSpace = field(repr=False, compare=False)
    indices: tuple[int, ...]

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        cands = self.space.candidates
        return tuple(cands[i] for i in self.indices)

    def __str__(self) -> str:
        names = self.space.candidate_names
        return ",".join(names[i] for i in self.indices)


def conv_out_size(size: int, stride: int) -> int:
    """Output size of a 'same'-padded conv (padding k // 2, odd k)."""
    return (size - 1) // stride + 1


def make_divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# -- presets ----------------------------------------------------------------------------------
SPACES: Registry[Callable[[], SearchSpace]] = Registry("space")


def register_space(fn: Callable[[], SearchSpace]) -> Callable[[], SearchSpace]:
    """Register a preset; the same space again (a module imported twice) is no conflict, another one is."""
    space = fn()
    if space.name in SPACES and SPACES[space.name]().fingerprint == space.fingerprint:
        return SPACES[space.name]
    return SPACES.add(space.name, fn)


def get_space(name: str) -> SearchSpace:
    return SPACES.lookup(name)()


def _plan(stem_channels: int, groups: list[tuple[int, int, int]]) -> tuple[LayerSpec, ...]:
    """Layers from (out_channels, repeat, first_stride) groups, like MobileNet's tables."""
    layers, channels = [], stem_channels
    for out, repeat, stride in groups:
        for i in range(repeat):
            layers.append(LayerSpec(channels, out, stride if i == 0 else 1))
            channels = out
    return tuple(layers)


@register_space
def ponas_imagenet() -> SearchSpace:
    """Layer plan of the released PONAS-A/B/C models (ImageNet, 224x224)."""
    return SearchSpace(
        name="ponas-imagenet",
        resolution=224,
        num_classes=1000,
        stem_channels=32,
        stem_stride=2,
        first_block_channels=16,
        layers=_plan(16, [(32, 2, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1)]),
        head_channels=1280,
        dropout=0.2,
    )


@register_space
def ponas_table1() -> SearchSpace:
    """The variant printed as Table 1 of the PONAS paper."""
    return SearchSpace(
        name="ponas-table1",
        resolution=224,
        num_classes=1000,
        stem_channels=32,
        stem_stride=2,
        first_block_channels=16,
        layers=_plan(16, [(32, 2, 2), (40, 4, 2), (80, 1, 2), (96, 7, 1), (192, 1, 2), (320, 4, 1)]),
        head_channels=1280,
        dropout=0.2,
    )


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@register_space
def cifar10() -> SearchSpace:
    """PONAS-style plan for 32x32 inputs: stride-1 stem, three downsamplings, 12 searchable layers."""
    return SearchSpace(
        name="cifar10",
        resolution=32,
        num_classes=10,
        stem_channels=32,
        stem_stride=1,
        first_block_channels=16,
        layers=_plan(16, [(24, 2, 2), (40, 3, 2), (80, 3, 1), (96, 2, 1), (192, 1, 2), (320, 1, 1)]),
        head_channels=1280,
        dropout=0.2,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        class_names=CIFAR10_CLASSES,
    )


@register_space
def cifar10_depth() -> SearchSpace:
    """`cifar10` with elastic depth: `skip` on the 6 layers that keep their shape (2, 4, 5, 7, 8, 10, from 1)."""
    return replace(cifar10(), name="cifar10-depth", skip=True)


# EfficientNet-Lite's family as data (TensorFlow's efficientnet/lite/efficientnet_lite_builder.py): each variant's
# (width coefficient, depth coefficient, resolution, dropout), and the stages after the fixed e1 block as
# (output channels, repeats, first stride, kernel) at width and depth 1, every block expansion 6. The Lite variants
# keep the stem (32), the first block (to 16) and the head (1280) fixed, and the first and last stages' repeats.
LITE_VARIANTS = {
    "efficientnet-lite0": (1.0, 1.0, 224, 0.2),
    "efficientnet-lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet-lite2": (1.1, 1.2, 260, 0.3),
}
LITE_STAGES = ((24, 2, 2, 3), (40, 2, 2, 5), (80, 3, 2, 3), (112, 3, 1, 5), (192, 4, 2, 5), (320, 1, 1, 3))


def _lite_stages(variant: str) -> list[tuple[int, int, int, int]]:
    """A variant's stages, channels and repeats scaled as the builder does (the last stage's repeats kept)."""
    width, depth = LITE_VARIANTS[variant][:2]
    return [
        (make_divisible(out * width), repeats if i == len(LITE_STAGES) - 1 else math.ceil(depth * repeats), s, k)
        for i, (out, repeats, s, k) in enumerate(LITE_STAGES)
    ]


def lite_architecture(variant: str) -> str:
    """The variant's own network as an architecture of its space (what its ImageNet weights hold)."""
    return ",".join(f"k{kernel}e6" for _, repeats, _, kernel in _lite_stages(variant) for _ in range(repeats))


LITE0_ARCH = lite_architecture("efficientnet-lite0")


def _lite_space(variant: str) -> SearchSpace:
    """EfficientNet-Lite's plan (Tan & Le 2019, the Lite variants of TensorFlow's efficientnet/lite): stem 32
    stride 2, the fixed e1 k3 block to 16, the variant's searchable layers, head 1280, ReLU6, no squeeze-excite,
    TensorFlow 'SAME' padding and its input scaling ((x * 255 - 127) / 128). Candidates k3/5/7 x e3/4/6, and
    `skip` on the layers that keep their shape. `lite_architecture(variant)` is the variant itself (its ImageNet
    weights import with `--init <variant>`)."""
    resolution, dropout = LITE_VARIANTS[variant][2:]
    return SearchSpace(
        name=variant,
        resolution=resolution,
        num_classes=1000,
        stem_channels=32,
        stem_stride=2,
        first_block_channels=16,
        layers=_plan(16, [(out, repeats, stride) for out, repeats, stride, _ in _lite_stages(variant)]),
        head_channels=1280,
        dropout=dropout,
        expansions=(3, 4, 6),
        se_options=(False,),
        mean=(127 / 255,) * 3,
        std=(128 / 255,) * 3,
        skip=True,
        padding="same",
    )


@register_space
def efficientnet_lite0() -> SearchSpace:
    """EfficientNet-Lite0: 15 searchable layers, 224x224, skip on 9 of them (`LITE0_ARCH` is Lite0 itself)."""
    return _lite_space("efficientnet-lite0")


@register_space
def efficientnet_lite1() -> SearchSpace:
    """EfficientNet-Lite1: Lite0's widths, 20 searchable layers (depth 1.1), 240x240."""
    return _lite_space("efficientnet-lite1")


@register_space
def efficientnet_lite2() -> SearchSpace:
    """EfficientNet-Lite2: widths x1.1 (24, 48, 88, 120, 208, 352), 20 searchable layers (depth 1.2), 260x260,
    dropout 0.3."""
    return _lite_space("efficientnet-lite2")

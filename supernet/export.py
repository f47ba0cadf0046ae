"""ONNX export of torch modules (sub-networks, single blocks)."""
from __future__ import annotations

import io
import warnings

import torch
from torch import nn

OPSET = 17


def module_to_onnx_bytes(module: nn.Module, example: torch.Tensor, dynamic_batch: bool = True) -> bytes:
    """Serialized ONNX (opset 17, TorchScript-based exporter) of `module` in eval mode.

    Input is named `input`, output `output`; the batch dimension is dynamic unless told otherwise.
    """
    module = module.eval()
    buffer = io.BytesIO()
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=OPSET, input_names=["input"],
                          output_names=["output"], dynamic_axes=axes, do_constant_folding=True)
    return buffer.getvalue()

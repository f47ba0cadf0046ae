"""Supernet weights on disk: a dict of tensors plus the space it was built from.

Read with `torch.load(..., weights_only=True)`: no pickled code ever runs from a user file.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch

from specialize.errors import SpecializeError
from specialize.fileio import atomic_write_bytes
from specialize.space import SearchSpace
from supernet.elastic import Supernet

WEIGHTS_FORMAT = "specialize-supernet-weights"
WEIGHTS_SCHEMA_VERSION = 1


def save_supernet_weights(path: str | Path, net: Supernet, dtype: torch.dtype = torch.float32, extra: dict | None = None) -> None:
    state = {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().clone() for k, v in net.state_dict().items()}
    payload = {"format": WEIGHTS_FORMAT, "schema_version": WEIGHTS_SCHEMA_VERSION, "space": net.space.to_dict(),
               "fingerprint": net.space.fingerprint, "state_dict": state, "extra": extra or {}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_supernet(path: str | Path) -> Supernet:
    """Rebuild a supernet from a weights file alone (its space travels inside it)."""
    path = Path(path)
    if not path.is_file():
        raise SpecializeError(f"weights file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for corrupt or pickled-code files
        raise SpecializeError(f"weights file {path} cannot be read as a weights-only checkpoint: {str(exc).splitlines()[0]}") from None
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        raise SpecializeError(f"weights file {path}: field 'format' is not {WEIGHTS_FORMAT!r}")
    try:
        space = SearchSpace.from_dict(payload["space"])
        net = Supernet(space)
        state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        net.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise SpecializeError(f"weights file {path}: field 'state_dict' does not fit field 'space': {str(exc).splitlines()[0]}") from None
    return net.eval()

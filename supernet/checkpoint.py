"""Supernet weights on disk: a dict of tensors plus the space it was built from.

Read with `torch.load(..., weights_only=True)`: no pickled code ever runs from a user file.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch

from specialize.cost import arch_cost
from specialize.errors import SpecializeError
from specialize.fileio import atomic_write_bytes
from specialize.space import SearchSpace
from supernet.elastic import Supernet

WEIGHTS_FORMAT = "specialize-supernet-weights"
WEIGHTS_SCHEMA_VERSION = 1


def save_supernet_weights(
    path: str | Path, net: Supernet, dtype: torch.dtype = torch.float32, extra: dict | None = None
) -> None:
    state = {
        k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().clone() for k, v in net.state_dict().items()
    }
    payload = {
        "format": WEIGHTS_FORMAT,
        "schema_version": WEIGHTS_SCHEMA_VERSION,
        "space": net.space.to_dict(),
        "fingerprint": net.space.fingerprint,
        "state_dict": state,
        "extra": extra or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type when the message is empty."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def read_torch_file(path: str | Path, kind: str) -> object:
    """torch.load(weights_only=True) of a user file: a missing, unreadable, truncated, text or code-carrying
    file raises one SpecializeError naming it, and torch's warnings about the file (a corrupt one can make its
    unpickler warn of a pickle protocol before it fails) are not printed: the error is the one line said."""
    path = Path(path)
    if not path.is_file():
        raise SpecializeError(f"{kind} file {path} does not exist" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for corrupt or pickled-code files
        raise SpecializeError(
            f"{kind} file {path} cannot be read as a weights-only checkpoint: {first_line(exc)}"
        ) from None


def check_state_dict(state: object, path: Path, kind: str, field: str) -> dict:
    """A dict of finite tensors: NaN or infinite weights would export a network that outputs NaN."""
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise SpecializeError(f"{kind} file {path}: field {field!r} is not a dict of named tensors")
    bad = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise SpecializeError(f"{kind} file {path}: field {field!r} holds NaN or infinite values (tensor {bad!r})")
    return state


def load_supernet(path: str | Path) -> Supernet:
    """Rebuild a supernet from a weights file alone (its space travels inside it)."""
    path = Path(path)
    payload = read_torch_file(path, "weights")
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        raise SpecializeError(f"weights file {path}: field 'format' is not {WEIGHTS_FORMAT!r}")
    try:
        space = SearchSpace.from_dict(payload.get("space"))
    except ValueError as exc:
        raise SpecializeError(f"weights file {path}: field 'space' is not a valid space: {exc}") from None
    state = check_state_dict(payload.get("state_dict"), path, "weights", "state_dict")
    held, needed = sum(v.numel() for v in state.values()), arch_cost(space.largest_arch())["params"]
    if held < needed:  # refused before building: a few-KB file declaring a huge space would allocate gigabytes
        raise SpecializeError(
            f"weights file {path}: field 'state_dict' holds {held:,} numbers, and field 'space' needs at least "
            f"{needed:,} (its largest network's parameters)"
        )
    try:
        net = Supernet(space)
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise SpecializeError(
            f"weights file {path}: field 'state_dict' does not fit field 'space': {first_line(exc)}"
        ) from None
    return net.eval()


CHECKPOINT_STATE_KEYS = ("stage", "epoch", "layer", "chosen", "accuracy", "wall", "history")


def read_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """A training checkpoint's payload and its decoded state, checked for shape: config, state, net, optimizer."""
    path = Path(path)
    payload = read_torch_file(path, "checkpoint")
    if not isinstance(payload, dict):
        raise SpecializeError(f"checkpoint file {path}: expected a dict of config, state_json, net and optimizer")
    for key, kind in (("config", dict), ("state_json", str), ("optimizer", dict)):
        if not isinstance(payload.get(key), kind):
            raise SpecializeError(f"checkpoint file {path}: field {key!r} is missing or not a {kind.__name__}")
    check_state_dict(payload.get("net"), path, "checkpoint", "net")
    try:
        state = json.loads(payload["state_json"])
    except (ValueError, RecursionError):
        state = None
    if (
        not isinstance(state, dict)
        or not all(k in state for k in CHECKPOINT_STATE_KEYS)
        or state["stage"] not in ("meta", "finetune", "spread")
        or not isinstance(state["chosen"], list)
    ):
        raise SpecializeError(f"checkpoint file {path}: field 'state_json' is not a training state")
    problem = state_problem(state)
    if problem:
        raise SpecializeError(f"checkpoint file {path}: field 'state_json.{problem}")
    state["wall"] = {"meta": 0.0, "finetune": 0.0, **state["wall"]}  # a stage not timed yet counts from zero
    return payload, state


def _count(value) -> bool:
    return type(value) is int and 0 <= value <= 1_000_000


def _share(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def state_problem(state: dict) -> str | None:
    """What is wrong with a training state's fields, as "<field>' <why>", or None: epoch and layer counts, one chosen
    block name and one row of accuracies in [0, 1] per finished layer, wall seconds, the history a list of records."""
    if not _count(state["epoch"]) or not _count(state["layer"]):
        return "epoch' and 'layer' must be whole numbers >= 0"
    chosen, accuracy = state["chosen"], state["accuracy"]
    if len(chosen) != state["layer"] or not all(isinstance(c, str) for c in chosen):
        return f"chosen' must name one block per finished layer ({state['layer']})"
    if not isinstance(accuracy, list) or len(accuracy) != state["layer"]:
        return f"accuracy' must hold one row per finished layer ({state['layer']})"
    if not all(isinstance(row, list) and row and all(_share(a) for a in row) for row in accuracy):
        return "accuracy' rows must be lists of accuracies in [0, 1]"
    wall = state["wall"]
    if not isinstance(wall, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e9 for v in wall.values()
    ):
        return "wall' must map stages to seconds"
    if not isinstance(state["history"], list) or not all(isinstance(h, dict) for h in state["history"]):
        return "history' must be a list of records"
    if "meta_test_accuracy" in state and not _share(state["meta_test_accuracy"]):
        return "meta_test_accuracy' must be an accuracy in [0, 1]"
    return None

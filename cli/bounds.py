"""The bound options (--max-latency, --min-flops, ...), generated for any command from the one metric
registry (`specialize.search.constraints.BOUND_OPTIONS`).

A command declares a parameter `bounds: dict` where the options belong and is decorated with
`@bound_options`: Typer then sees one Option per entry, in that place, and the command receives them
collected as `bounds={"max_flops": "300M", "min_flops": None, ...}`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional

import typer

from specialize.search.constraints import BOUND_OPTIONS, SIDES


def _option(name: str) -> inspect.Parameter:
    side, metric = BOUND_OPTIONS[name]
    info = typer.Option(
        None,
        f"--{name.replace('_', '-')}",
        help=f"{SIDES[side]} bound on {metric.help}",
        rich_help_panel="Bounds",
        show_default=False,
    )
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=info, annotation=Optional[str])


def bound_options(fn: Callable) -> Callable:
    """Replace `fn`'s `bounds` parameter by one Typer option per bound; pass them back as `bounds`."""
    signature = inspect.signature(fn, eval_str=True)  # annotations resolved where fn was written
    params = []
    for p in signature.parameters.values():
        params += [_option(name) for name in BOUND_OPTIONS] if p.name == "bounds" else [p]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bounds = {name: kwargs.pop(name, None) for name in BOUND_OPTIONS}
        return fn(*args, bounds=bounds, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)
    return wrapper

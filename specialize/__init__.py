"""specialize: train once, specialize in seconds, deploy anywhere.

`from specialize import specialize, pareto` gives the online search API (see `specialize.api`);
it is loaded on first use, so importing a submodule such as `specialize.space` stays light.
"""

from __future__ import annotations

__all__ = ["specialize", "pareto", "SpecializeResult"]


def __getattr__(name: str):
    if name in __all__:
        from specialize import api

        return getattr(api, name)
    raise AttributeError(f"module 'specialize' has no attribute {name!r}")

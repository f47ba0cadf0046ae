"""One generic registry for every pluggable thing: spaces, devices, runtimes, search strategies, penalties,
rerankers and bound metrics (timm's `_registry.py` in spirit).

A registry is a name -> item mapping with one way to add (the same name twice with another item is an error)
and one way to look up: an unknown name raises a single line that lists the known ones.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from specialize.errors import SpecializeError

T = TypeVar("T")


class Registry(dict, Generic[T]):
    def __init__(self, kind: str, plural: str | None = None, items: dict[str, T] | None = None):
        super().__init__()
        self.kind, self.plural = kind, plural or f"{kind}s"
        for name, item in (items or {}).items():
            self.add(name, item)

    def add(self, name: str, item: T) -> T:
        """Register `item` as `name`; registering another item under a taken name raises ValueError."""
        if name in self and self[name] is not item:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = item
        return item

    def lookup(self, name: str, hint: str = "") -> T:
        """The item called `name`; an unknown name raises one line listing the known ones (then `hint`)."""
        if name not in self:
            raise SpecializeError(f"unknown {self.kind} {name!r}; known {self.plural}: {', '.join(sorted(self))}{hint}")
        return self[name]

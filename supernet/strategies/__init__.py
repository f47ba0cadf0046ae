"""Offline search strategies that need torch; importing this package registers them in
`specialize.search.registry` (whose TORCH_STRATEGY_NAMES lists their names for the online command)."""
from supernet.strategies import epnas  # noqa: F401  (registers "epnas")

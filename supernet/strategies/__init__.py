"""Offline search strategies that need torch. The composition root (`specialize.api`) registers them lazily in
`specialize.search.registry`, so the online command knows their names without importing torch."""

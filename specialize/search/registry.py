"""One registry of search strategies and one factory (`get_strategy`), as timm does for models.

A strategy is a function `(problem, evaluation, budget, seed) -> SearchResult`: it picks one
candidate per layer of a compiled `Problem`, scoring chromosomes through `evaluation` (the hard
bounds or a penalty wrapped around the score, see `penalty.py`), within `budget`, deterministic for
a seed, and returns data: the answer, its status and its history. Register one with

    @register_strategy("name", exact=False, summary="one line for --help")
    def my_strategy(problem, evaluation, budget, seed) -> SearchResult: ...

Every registered strategy is tested for free (tests/test_strategies.py): feasibility on random
bounds and quality against brute force on a tiny space. The built-in strategies live in the modules
named in BUILTIN and register themselves when imported (`load_builtins`).

Offline strategies (`offline=True`: EPNAS, PNAS, EcoNAS, random search) score architectures with an
expensive evaluator, supernet accuracy after batch-norm recalibration, so their budget is a number of
distinct architectures scored (`Budget.evaluations`), spent through `specialize.search.offline.Evaluations`.
Given the table's score as their evaluation instead, they run (and are tested) like any other strategy.
Those that need torch (EPNAS's policy) live in `supernet/strategies/`; the composition root (`specialize.api`)
registers them with `register_lazy`, so their names are known without importing torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from specialize.registry import Registry

if TYPE_CHECKING:
    import numpy as np

    from specialize.search.constraints import Problem
    from specialize.search.penalty import Evaluation

BUILTIN = (
    "specialize.search.ga",
    "specialize.search.exact",
    "specialize.search.random_search",
    "specialize.search.pnas",
    "specialize.search.econas",
)
STATUSES = (
    "optimal",
    "not proven",
    "heuristic",
    "infeasible",
    "not found",
)  # not found: budget spent, no answer met every bound


@dataclass(frozen=True)
class Budget:
    generations: int = 1000  # for population searches
    time_limit_s: float = 30.0  # for solvers that stop on time (HiGHS)
    evaluations: int = 300  # for offline strategies: distinct architectures they may score


@dataclass(frozen=True)
class SearchResult:
    genes: np.ndarray | None  # [L] candidate per layer; None: no architecture meets every bound
    value: float | None  # Σ T_d of the answer
    seconds: float
    status: str  # one of STATUSES: "optimal" only when proven
    bound: float | None = None  # proven upper bound on the optimum Σ T_d (exact strategies)
    history: list[dict] = field(default_factory=list, repr=False)  # [{"generation", "best"}, ...]
    details: dict = field(default_factory=dict)  # strategy-specific figures


StrategyFn = Callable[["Problem", "Evaluation", Budget, int], SearchResult]


@dataclass(frozen=True)
class Strategy:
    name: str
    run: StrategyFn
    exact: bool  # proves its answer optimal (status "optimal") unless it runs out of time
    summary: str
    offline: bool = False  # spends `Budget.evaluations` of an expensive evaluator; the online command refuses it


STRATEGIES: Registry[Strategy] = Registry("strategy", "strategies")


def register_strategy(
    name: str, *, exact: bool = False, offline: bool = False, summary: str = ""
) -> Callable[[StrategyFn], StrategyFn]:
    def add(fn: StrategyFn) -> StrategyFn:
        if name in STRATEGIES and STRATEGIES[name].run is fn:
            return fn
        STRATEGIES.add(name, Strategy(name, fn, exact, summary or (fn.__doc__ or "").strip().splitlines()[0], offline))
        return fn

    return add


def register_lazy(
    name: str, load: Callable[[], StrategyFn], *, exact: bool = False, offline: bool = False, summary: str
) -> None:
    """Register a strategy whose code is imported only when it first runs (`load` returns the function)."""

    def run(problem: "Problem", evaluation: "Evaluation", budget: Budget, seed: int) -> SearchResult:
        return load()(problem, evaluation, budget, seed)

    register_strategy(name, exact=exact, offline=offline, summary=summary)(run)


def load_builtins() -> dict[str, Strategy]:
    for module in BUILTIN:
        importlib.import_module(module)
    return STRATEGIES


def strategy_names() -> list[str]:
    """Registered names in alphabetical order (registration order depends on import order)."""
    return sorted(load_builtins())


def is_offline(name: str) -> bool:
    """True for a strategy that spends an expensive evaluator's budget (without importing torch)."""
    strategies = load_builtins()
    return name in strategies and strategies[name].offline


def get_strategy(name: str) -> Strategy:
    """The registered strategy called `name`; an unknown name raises a one-line error listing the known ones."""
    return load_builtins().lookup(name)

"""Python API of the online path: `specialize(device="jetson", max_flops="300M")` and `pareto(...)`.

Numpy, highspy and deap only (no torch, no onnx); `search_offline`, the offline strategies' entry, imports
torch (supernet.fitness, supernet.strategies) when called. Predicted accuracy follows PONAS's accuracy-loss
domain: the best network's validation accuracy (the largest entry of the table's last row: by then
every earlier layer holds its best block) plus Σ_l T_d[l, g_l] of the chosen blocks.
`strategy` picks a search from the registry (`specialize.search.registry`); the exact ILP always runs
as the reference, so every answer carries the optimum (or HiGHS's proven bound) and its gap.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from specialize.cost import cost_arrays, masked_extremes
from specialize.errors import InfeasibleError, SpecializeError, option
from specialize.search.constraints import METRICS, Bound, Problem, bounds_from_options, build_problem, takes_bounds
from specialize.search.registry import Budget, SearchResult, Strategy, register_lazy
from specialize.search.rerank import MIN_MEASURED
from specialize.table import AccuracyTable, load_table


LAYERS_NUMBERED_FROM = 1  # layers in results, JSON and tables count from 1
TIME_LIMIT = 2.0  # seconds for the whole online search (reference ILP, then the strategy): a safety net
MIN_STRATEGY_SECONDS = 0.1  # the strategy's share when the reference used the whole limit


def _epnas():
    from supernet.strategies.epnas import epnas_strategy

    return epnas_strategy


# Strategies that need torch: known by name from here on, imported when they first run.
register_lazy(
    "epnas",
    _epnas,
    offline=True,
    summary="EPNAS: REINFORCE policy (embedding LSTM, scale and insert LSTMs) editing 8 branches, soft-penalty reward",
)


@dataclass(frozen=True)
class BlockChoice:
    layer: int  # 1-based
    block: str
    in_channels: int
    out_channels: int
    stride: int
    accuracy_loss: float  # T_d[l, g_l] (<= 0)
    macs: int
    latency_ms: float | None


@dataclass(frozen=True)
class SpecializeResult:
    arch: str
    space: str
    device: str | None
    device_kind: str | None  # "measured" | "estimated" (from the profile)
    latency_expected_error: float | None  # relative error band of the latency model (e.g. 0.08 = ±8%), if known
    batch: int | None  # batch size the latency is for (the profile's); None without a device
    threads: int | None  # intra-op threads of a measured profile (None: estimated, or no device)
    blocks: list[BlockChoice]
    macs: int
    params: int
    bytes: int
    intensity: float  # FLOPs (2 x MACs) per byte
    peak_activation_bytes: int
    latency_ms: float | None
    predicted_accuracy: float  # from the table's measured score -> accuracy fit (or PONAS's sum without one)
    predicted_accuracy_band: float | None  # ± this (twice the fit's residual spread); None: no fit, no band
    accuracy_basis: str  # what the prediction rests on: "validation split, 2500 images, fit over 31 ..."
    accuracy_loss: float  # Σ T_d, predicted loss against the best network (<= 0)
    best_accuracy: float
    best_arch: str
    bounds: list[dict]  # {metric, label, lower, upper, tolerance, value, ok}
    strategy: str  # the search strategy asked for (a name in the strategy registry)
    answer_from: str  # whose architecture is returned: the strategy, or "exact" if it found none
    status: str  # of the returned answer: "optimal" | "not proven" | "heuristic"
    penalty: str
    seed: int
    strategy_value: float | None  # Σ T_d of the strategy's answer (None: it found none meeting every bound)
    optimum_value: float  # Σ T_d of the exact solver's answer: the optimum when optimum_status is "optimal"
    optimum_status: str  # "optimal" | "not proven" (HiGHS reached its time limit first)
    optimum_bound: float  # HiGHS's proven upper bound on the optimum Σ T_d
    optimality_gap: float  # optimum_bound - value of the returned architecture (accuracy points, >= 0)
    strategy_gap: float | None  # optimum_value - strategy_value
    loss_range: float  # optimum of the unconstrained space minus its worst: scales the gap
    search_seconds: float
    strategy_seconds: float
    exact_seconds: float
    strategy_details: dict  # strategy-specific figures (GA: generations, failed children, value before polish)
    history: list[dict]  # the strategy's best value as it ran ([{"generation", "best"}, ...])
    table: str | None = field(default=None)
    layers_numbered_from: int = LAYERS_NUMBERED_FROM
    export: dict | None = None  # what --export wrote: the file's own figures, measured beside predicted
    device_note: str | None = None  # a measured profile from another host: where it was timed, how to profile here
    rerank: dict | None = None  # --rerank: the k candidates, their table score and reranked prediction, changed or not
    precision: str | None = None  # the latency profile's precision, which an export ships (None without a device)
    precision_choice: list[dict] | None = None  # precision="auto": every precision tried, its answer, which won
    resolution: int | None = None  # the input size the network ships at (the table's)
    resolution_choice: list[dict] | None = None  # elastic resolution: every size searched, its answer, which won
    profile_file: str | None = None  # the profile file the search read, if it read one: export_result's default

    def to_dict(self) -> dict:
        return asdict(self)


@takes_bounds
def specialize(
    device: str | None = None,
    *,
    table: str | Path | AccuracyTable | None = None,
    profile=None,
    seed: int = 0,
    strategy: str = "ga",
    penalty: str = "hard",
    generations: int = 1000,
    solver: str | None = None,
    time_limit: float = TIME_LIMIT,
    batch: int | None = None,
    threads: int | None = None,
    rerank: str | None = None,
    rerank_k: int = 10,
    precision: str | None = None,
    resolution: int | None = None,
    **bounds: str | float | None,
) -> SpecializeResult:
    """Best sub-network for a device under bounds (max_latency=, min_flops=, ...: one pair per metric of
    `specialize.search.constraints.METRICS`). Bounds take text with units ("20ms", "300M") or numbers
    (latency in ms, counts, intensity in FLOPs/byte, memory in bytes). MACs are what MobileNet papers call FLOPs.
    `strategy` names a registered search ("ga", "exact", ...); `solver` is its older name. `time_limit` caps
    the whole search in seconds: HiGHS then answers "not proven" with its bound, the GA stops early and says so.
    `batch` picks the device's latency profile at that batch size (default 1): a shipped measured profile at that
    batch, or the device's estimate built at that batch; `threads` picks among a device's measured profiles.
    `precision` ("fp32", "fp16", "int8") picks the device's latency profile at that precision (default: fp32
    where measured, else the estimate's own); `--export` then ships that precision.
    `rerank="surrogate"` re-ranks the `rerank_k` best architectures by the table with PNAS's surrogate fit on
    the table's measured sub-networks and returns its top one (`result.rerank` says whether that changed it).
    A table trained with elastic resolution has a table per input size: every size is searched and the answer
    with the highest predicted accuracy wins (`resolution_choice` lists them), unless `resolution` pins one;
    `profile` may then be a list, one measured profile per size (a size without one is not searched)."""
    from specialize.search.penalty import get_penalty
    from specialize.search.registry import get_strategy
    from specialize.search.rerank import get_reranker

    search_at = lambda t, size, p: specialize(  # noqa: E731
        device, table=t, profile=p, seed=seed, strategy=strategy, penalty=penalty, generations=generations,
        solver=solver, time_limit=time_limit, batch=batch, threads=threads, rerank=rerank, rerank_k=rerank_k,
        precision=precision, resolution=size, **bounds,
    )  # fmt: skip
    tbl = table if isinstance(table, AccuracyTable) else load_table(table)
    if tbl.sizes() and resolution is None:
        return _best_resolution(search_at, tbl, profile)
    if resolution is not None or isinstance(profile, (list, tuple)):
        tbl, profile = _at_size(tbl, tbl.space.resolution if resolution is None else resolution, profile)
    table = tbl
    if precision == "auto":
        return _best_precision(
            lambda p: specialize(
                device, table=table, profile=profile, seed=seed, strategy=strategy, penalty=penalty,
                generations=generations, solver=solver, time_limit=time_limit, batch=batch, threads=threads,
                rerank=rerank, rerank_k=rerank_k, precision=p, **bounds,
            ),
            device, table, profile, batch, threads,
        )  # fmt: skip
    refuse_offline(solver or strategy)
    if not (isinstance(time_limit, (int, float)) and math.isfinite(time_limit) and 0 < time_limit <= 86_400):
        raise SpecializeError(f"time limit {time_limit!r} is out of range: a number of seconds in (0, 86400]")
    chosen, evaluate_with = get_strategy(solver or strategy), get_penalty(penalty)
    reranker = None if rerank is None else get_reranker(rerank)
    tbl, prof, problem = prepare(table, device, profile, bounds_from_options(**bounds), batch, threads, precision)
    measured = None if reranker is None else tbl.measured(MIN_MEASURED)
    budget = Budget(generations=generations, time_limit_s=time_limit)
    outcome = search(problem, chosen, evaluate_with(problem, best_accuracy(tbl)), budget, seed)
    if reranker is None:
        return _result(tbl, prof, problem, outcome, penalty, seed)
    return rerank_result(tbl, prof, problem, outcome, penalty, seed, (rerank, reranker, rerank_k, measured), time_limit)


def _at_size(tbl: AccuracyTable, size: int, profile):
    """The table of input `size` in `tbl`'s family (tbl itself at its own size), and the one profile for it."""
    sizes = tbl.sizes() or {tbl.space.resolution: tbl.path}
    if not (type(size) is int and size in sizes):
        raise SpecializeError(
            f"{option('resolution', size)}: table {tbl.path} has input sizes "
            f"{', '.join(map(str, sizes))} (train with --resolutions for more)"
        )
    at = tbl if size == tbl.space.resolution else load_table(sizes[size])
    if isinstance(profile, (list, tuple)):
        fitting = [p for p in _profiles(profile) if p.space.body_fingerprint == at.space.body_fingerprint]
        if not fitting:
            raise SpecializeError(f"none of the {len(profile)} profiles given is for input size {size}")
        profile = fitting[0]
    return at, profile


def _profiles(profiles) -> list:
    from hw_profiles.profile import DeviceProfile, load_profile

    return [p if isinstance(p, DeviceProfile) else load_profile(p) for p in profiles]


def _best_resolution(search_at, tbl: AccuracyTable, profile) -> SpecializeResult:
    """Elastic resolution: the search at every input size of the table's family; the answer with the highest
    predicted accuracy wins, ties to the faster, then the smaller. With profiles given, only the sizes one fits
    are searched (a measured profile is of one size); the others are listed as not searched."""
    given = None if profile is None else _profiles(profile if isinstance(profile, (list, tuple)) else [profile])
    results, skipped = {}, {}
    for size, path in tbl.sizes().items():
        at = tbl if size == tbl.space.resolution else load_table(path)
        fitting = None if given is None else [p for p in given if p.space.body_fingerprint == at.space.body_fingerprint]
        if fitting == []:
            skipped[size] = "no profile given at this input size"
            continue
        try:
            results[size] = search_at(at, size, None if fitting is None else fitting[0])
        except InfeasibleError as exc:
            skipped[size] = str(exc)
    if not results:
        said = "; ".join(f"{size} px: {why}" for size, why in skipped.items())
        raise InfeasibleError(f"no input size meets the bounds: {said}")
    best = max(results.items(), key=lambda kv: (round(kv[1].predicted_accuracy, 6), -(kv[1].latency_ms or 0), -kv[0]))
    choice = [
        {
            "resolution": size,
            "chosen": size == best[0],
            "arch": r.arch,
            "predicted_accuracy": r.predicted_accuracy,
            "predicted_accuracy_band": r.predicted_accuracy_band,
            "latency_ms": r.latency_ms,
            "macs": r.macs,
        }
        for size, r in results.items()
    ] + [{"resolution": size, "chosen": False, "not_searched": why} for size, why in skipped.items()]
    return replace(best[1], resolution_choice=sorted(choice, key=lambda c: c["resolution"]))


def _best_precision(run, device, tbl: AccuracyTable, profile, batch, threads) -> SpecializeResult:
    """precision="auto": the search at every precision the device has a profile at; the answer with the highest
    predicted accuracy at its precision (INT8's measured drop subtracted) wins, ties to the faster; every one tried
    is kept in `precision_choice`."""
    from hw_profiles.registry import precisions_for

    if profile is not None:
        raise SpecializeError(
            f"{option('precision', 'auto')} compares a device's profiles; a profile file has one precision: "
            f"leave {option('precision')} out, or give {option('device')} instead"
        )
    candidates = precisions_for(device, tbl.space, batch, threads)
    if not candidates:
        raise SpecializeError(
            f"{option('precision', 'auto')} needs a device with latency profiles of space {tbl.space.name} at "
            f"{option('batch', batch or 1)} and {option('threads', threads or 1)}: {device!r} has none"
        )
    results, refused = {}, {}
    for precision in candidates:
        try:
            results[precision] = run(precision)
        except InfeasibleError as exc:
            refused[precision] = str(exc)
    if not results:
        said = "; ".join(f"{p}: {m}" for p, m in refused.items())
        raise InfeasibleError(f"no precision meets the bounds: {said}")
    best = max(results.values(), key=lambda r: (round(r.predicted_accuracy, 6), -(r.latency_ms or 0.0)))
    choice = [
        {
            "precision": p,
            "chosen": r is best,
            "arch": r.arch,
            "predicted_accuracy": r.predicted_accuracy,
            "predicted_accuracy_band": r.predicted_accuracy_band,
            "latency_ms": r.latency_ms,
            "macs": r.macs,
            "device_note": r.device_note,  # a profile timed on another machine says so: then auto compares machines
        }
        for p, r in results.items()
    ] + [{"precision": p, "chosen": False, "infeasible": m} for p, m in refused.items()]
    from dataclasses import replace

    return replace(best, precision_choice=choice)


def rerank_result(
    tbl, prof, problem: Problem, outcome: Outcome, penalty: str, seed: int, rerank: tuple, time_limit: float
) -> SpecializeResult:
    """The result with its architecture re-ranked: the k best by the table (exact.top_k), ordered by the
    reranker's prediction of measured accuracy; the top one is returned, and `rerank` reports all k."""
    from specialize.search.exact import top_k

    name, reranker, k, (genes, accuracy) = rerank
    start = time.perf_counter()
    found = top_k(problem, k, time_limit=time_limit)
    candidates = np.stack([r.genes for r in found])
    ranked = reranker(candidates, genes, accuracy, tbl.space.num_candidates, seed=seed)
    before = _result(tbl, prof, problem, outcome, penalty, seed)
    chosen = candidates[ranked.order[0]]
    after = str(tbl.space.arch_from_indices(chosen))
    report = {
        "method": name,
        "k": len(found),
        "asked": k,
        "samples": len(accuracy),
        "cv_error": ranked.cv_error,
        "changed": after != before.arch,
        "before": before.arch,
        "after": after,
        "candidates": _rerank_rows(tbl, candidates, [r.value for r in found], ranked, before.arch),
        "seconds": time.perf_counter() - start,
    }
    seconds = before.search_seconds + report["seconds"]
    if not report["changed"]:
        return replace(before, rerank=report, search_seconds=seconds)
    value = float(problem.scores(chosen[None])[0])
    moved = replace(outcome, answer=SearchResult(chosen, value, report["seconds"], "heuristic"))
    return replace(
        _result(tbl, prof, problem, moved, penalty, seed, best_of_both=False),
        answer_from=f"rerank {name}",
        rerank=report,
        strategy_value=before.strategy_value,
        strategy_gap=before.strategy_gap,
        search_seconds=seconds,
        strategy_details=before.strategy_details,
        history=before.history,
    )


def _rerank_rows(tbl, candidates: np.ndarray, scores: list[float], ranked, answer: str) -> list[dict]:
    """One row per candidate in the table's order (best Σ T_d first)."""
    position = {int(i): p for p, i in enumerate(ranked.order)}
    return [
        {
            "arch": str(tbl.space.arch_from_indices(g)),
            "table_score": float(score),
            "table_predicted_accuracy": tbl.predict(float(score))[0],
            "predicted_accuracy": float(ranked.predicted[i]),
            "prediction_spread": float(ranked.spread[i]),
            "rerank_position": position[i] + 1,
            "was_answer": str(tbl.space.arch_from_indices(g)) == answer,
        }
        for i, (g, score) in enumerate(zip(candidates, scores))
    ]


def refuse_offline(name: str) -> None:
    """The online command searches the table; a strategy that scores sub-networks with the supernet is refused."""
    from specialize.search.registry import is_offline

    if is_offline(name):
        raise SpecializeError(
            f"strategy {name!r} scores sub-networks with the supernet: run it with "
            f"`specialize search --strategy {name} --table T --data D [bounds] --budget N`"
        )


@dataclass(frozen=True)
class OfflineResult:
    """What an offline strategy returns: its pick, measured on the table's validation split, with its costs."""

    arch: str | None  # the strategy's pick: the best scored meeting every bound, else the fittest scored
    space: str
    strategy: str
    penalty: str
    seed: int
    status: str  # "heuristic" (an answer meets every bound) | "not found"
    meets_bounds: bool  # whether `arch` meets every bound
    validation_accuracy: float | None  # top-1 on the table's validation split (all --val-images), BN recalibrated
    validation_images: int
    macs: int | None
    params: int | None
    bytes: int | None
    intensity: float | None
    peak_activation_bytes: int | None
    latency_ms: float | None
    device: str | None
    bounds: list[dict]  # as in SpecializeResult (values those of `arch`)
    budget: int  # distinct architectures the strategy could score
    evaluations: int  # distinct architectures it scored
    evaluations_per_second: float  # over the whole search
    evaluator_seconds: float  # of which measuring sub-networks
    wall_seconds: float
    history: list[dict]  # [{"evaluations", "best"}, ...]
    details: dict  # strategy-specific figures
    table: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


OFFLINE_BUDGET = Budget().evaluations  # distinct architectures an offline strategy may score by default


def offline_strategy_names() -> list[str]:
    """Strategies that score sub-networks of the supernet (`specialize search --strategy`)."""
    from specialize.search.registry import is_offline, strategy_names

    return [name for name in strategy_names() if is_offline(name)]


@takes_bounds
def search_offline(
    table: str | Path | AccuracyTable | None = "default",
    data: str | Path | None = None,
    *,
    strategy: str = "epnas",
    penalty: str = "soft",
    budget: int = 300,
    seed: int = 0,
    device: str | None = None,
    profile=None,
    val_images: int | None = None,
    fitness=None,
    **bounds: str | float | None,
) -> OfflineResult:
    """Run an offline strategy (`epnas`, `random`, ...) scoring sub-networks of the table's supernet on the
    table's validation split of `data` (the dataset it was trained on; `val_images` caps the images used),
    within `budget` distinct architectures. Bounds as in `specialize`. `fitness` reuses an evaluator built by
    `supernet.fitness.supernet_fitness` (its cache then carries over between calls)."""
    from specialize.search.penalty import get_penalty
    from specialize.search.registry import get_strategy

    if not 1 <= budget <= 10_000_000:
        raise SpecializeError(f"{option('budget')} must be 1..10000000 architectures, got {budget}")
    evaluate_with = get_penalty(penalty)
    from supernet.fitness import supernet_fitness

    chosen = get_strategy(strategy)
    if not chosen.offline:
        raise SpecializeError(
            f"strategy {strategy!r} searches the table, not the supernet: run `specialize --strategy {strategy} ...`"
        )
    tbl, prof, problem = prepare(table, device, profile, bounds_from_options(**bounds))
    refuse_infeasible(problem)
    fitness = supernet_fitness(tbl, _training_data(tbl, data), val_images) if fitness is None else fitness
    spent = fitness.seconds
    start = time.perf_counter()
    answer = chosen.run(
        problem, evaluate_with(problem, best_accuracy(tbl), accuracy=fitness), Budget(evaluations=budget), seed
    )
    return _offline_result(
        tbl,
        prof,
        problem,
        answer,
        fitness,
        strategy,
        penalty,
        seed,
        budget,
        time.perf_counter() - start,
        fitness.seconds - spent,
    )


def refuse_infeasible(problem: Problem) -> None:
    """Before any supernet evaluation: bounds no architecture meets are reported (the exact solver, numpy)."""
    from specialize.search.exact import solve_exact
    from specialize.search.reach import explain_infeasible

    if solve_exact(problem, time_limit=TIME_LIMIT).status == "infeasible":
        raise explain_infeasible(problem)


def _training_data(tbl: AccuracyTable, data: str | Path | None) -> str | Path:
    found = data if data is not None else tbl.training_data()
    if found is None:
        recorded = ((tbl.provenance or {}).get("settings") or {}).get("data")
        raise SpecializeError(
            f"give {option('data')}: the dataset accuracy table {tbl.path} was trained on "
            f"({recorded or 'not recorded'}) is not on this machine"
        )
    return found


def measured_values(problem: Problem, genes: np.ndarray) -> dict[str, float]:
    """Every metric of one architecture (latency only with a device profile)."""
    return {k: float(v[0]) for k, v in problem.measure(genes[None]).items()}


def _offline_result(
    tbl,
    prof,
    problem: Problem,
    answer: SearchResult,
    fitness,
    strategy: str,
    penalty: str,
    seed: int,
    budget: int,
    seconds: float,
    evaluator_seconds: float,
) -> OfflineResult:
    found = answer.genes is not None
    pick = answer.genes if found else answer.details.get("best_scored")
    genes = None if pick is None else np.asarray(pick, dtype=np.int64)
    values = {} if genes is None else measured_values(problem, genes)

    def count(key: str) -> int | None:
        return int(values[key]) if key in values else None

    evaluations = int(answer.details.get("evaluations", 0))
    return OfflineResult(
        arch=None if genes is None else str(tbl.space.arch_from_indices(genes)),
        space=tbl.space.name,
        strategy=strategy,
        penalty=penalty,
        seed=seed,
        status=answer.status,
        meets_bounds=found,
        validation_accuracy=None if genes is None else float(fitness(genes[None])[0]),
        validation_images=fitness.images,
        macs=count("macs"),
        params=count("params"),
        bytes=count("bytes"),
        intensity=values.get("intensity"),
        peak_activation_bytes=count("peak_activation_bytes"),
        latency_ms=values.get("latency_ms"),
        device=prof.name if prof else None,
        bounds=bound_report(problem, values) if values else [],
        budget=budget,
        evaluations=evaluations,
        evaluations_per_second=evaluations / max(seconds, 1e-9),
        evaluator_seconds=evaluator_seconds,
        wall_seconds=seconds,
        history=answer.history,
        details=answer.details,
        table=str(tbl.path) if tbl.path else None,
    )


@dataclass(frozen=True)
class Outcome:
    strategy: str
    reference: SearchResult  # the exact solver's answer
    answer: SearchResult | None  # the strategy's answer; None when it did not run (`skipped` says why)
    seconds: float
    skipped: str | None = None


def search(problem: Problem, chosen: Strategy, evaluation, budget: Budget, seed: int) -> Outcome:
    """The exact reference (raises when no architecture meets the bounds), then the chosen strategy in
    the time left. When no bound binds, every layer's best block meets them all: that is the proven
    optimum and the strategy does not run."""
    from specialize.search.exact import exact_strategy
    from specialize.search.reach import explain_infeasible

    start = time.perf_counter()
    reference = exact_strategy(problem, evaluation, budget, seed)
    if reference.genes is None:
        raise explain_infeasible(problem)
    if chosen.run is exact_strategy:
        return Outcome(chosen.name, reference, reference, time.perf_counter() - start)
    if reference.details["method"] == "per-layer best":
        return Outcome(
            chosen.name,
            reference,
            None,
            time.perf_counter() - start,
            "no bound binds: every layer's best block meets them all (the proven optimum)",
        )
    left = max(budget.time_limit_s - (time.perf_counter() - start), MIN_STRATEGY_SECONDS)
    answer = chosen.run(problem, evaluation, replace(budget, time_limit_s=left), seed)
    return Outcome(chosen.name, reference, answer, time.perf_counter() - start)


def prepare(
    table,
    device: str | None,
    profile,
    bounds: tuple[Bound, ...],
    batch: int | None = None,
    threads: int | None = None,
    precision: str | None = None,
):
    """Load the table, resolve the device profile and compile the bounds into a Problem."""
    from specialize.search.reach import with_tolerance

    tbl = table if isinstance(table, AccuracyTable) else load_table(table)
    prof = resolve_device(device, tbl.space, profile, batch, threads, precision)
    if device is not None and profile is not None and prof is not None and not _names_device(prof, device):
        raise SpecializeError(
            f"{option('device', device)} and {option('profile', getattr(profile, 'path', None) or profile)} "
            f"(device {prof.name!r}) "
            "disagree: give one, or a profile of that device"
        )
    latency = prof.latency_terms() if prof is not None else None

    def build(bounds: tuple[Bound, ...]) -> Problem:
        return build_problem(
            tbl.loss,
            cost_arrays(tbl.space),
            bounds,
            tbl.space.name,
            latency=latency,
            device=prof.name if prof is not None else None,
            candidates=tbl.space.candidate_names,
        )

    return tbl, prof, build(with_tolerance(build(()), bounds))


def _names_device(prof, device: str) -> bool:
    """Whether `device` (a name or alias) names the profile's device."""
    from hw_profiles.devices import canonical_name

    return canonical_name(device) == canonical_name(prof.name)


def resolve_device(
    device: str | None,
    space,
    profile=None,
    batch: int | None = None,
    threads: int | None = None,
    precision: str | None = None,
):
    """A DeviceProfile for `device` (a name) or `profile` (a file or a DeviceProfile), at `batch`, `threads` and
    `precision` when given; None when neither device nor profile is given."""
    from hw_profiles.profile import DeviceProfile

    if device is None and profile is None:
        if batch is not None or threads is not None or precision is not None:
            raise SpecializeError(
                f"{option('batch')}, {option('threads')} and {option('precision')} choose a device's latency "
                f"profile: give {option('device')} or {option('profile')} too"
            )
        return None
    import hw_profiles

    if isinstance(profile, DeviceProfile):
        from hw_profiles.registry import check_profile_settings

        return check_profile_settings(profile.for_space(space), batch, threads, precision)
    path = None if profile is None else str(profile)
    return hw_profiles.resolve_profile(device, space, path, batch=batch, threads=threads, precision=precision)


def best_accuracy(table: AccuracyTable) -> float:
    """PONAS's validation accuracy of the best network (the largest entry of the table's last row): the base of
    the search's own reward. Reported accuracies use the table's fitted map instead (`AccuracyTable.predict`)."""
    return float(table.accuracy[-1].max())


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise SpecializeError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


def _result(
    tbl, prof, problem: Problem, outcome: Outcome, penalty: str, seed: int, best_of_both: bool = True
) -> SpecializeResult:
    """The result of `outcome`: the best feasible answer any solver found (with `best_of_both`; a re-ranked
    answer, which trades table score for measured accuracy on purpose, is kept as it is)."""
    space, reference, own = tbl.space, outcome.reference, outcome.answer
    found = own is not None and own.genes is not None
    # the best feasible answer any solver found: the strategy's, unless the exact reference scores higher
    exact_better = (
        best_of_both and found and own.value is not None and reference.value is not None and reference.value > own.value
    )
    answer = own if found and not exact_better else reference
    values = measured_values(problem, answer.genes)
    value = float(problem.scores(answer.genes[None])[0])
    precision = prof.precision if prof else None
    predicted, band = tbl.predict(value, precision)
    details = own.details if own is not None else {"skipped": outcome.skipped}
    return SpecializeResult(
        arch=str(space.arch_from_indices(answer.genes)),
        space=space.name,
        device=prof.name if prof else None,
        device_kind=prof.kind if prof else None,
        latency_expected_error=getattr(prof, "expected_error", None) if prof else None,
        device_note=_device_note(prof),
        batch=prof.batch if prof else None,
        threads=prof.threads if prof and prof.kind == "measured" else None,
        blocks=_blocks(tbl, prof, answer.genes),
        macs=int(values["macs"]),
        params=int(values["params"]),
        bytes=int(values["bytes"]),
        intensity=values["intensity"],
        peak_activation_bytes=int(values["peak_activation_bytes"]),
        latency_ms=values.get("latency_ms"),
        predicted_accuracy=predicted,
        predicted_accuracy_band=band,
        accuracy_basis=accuracy_basis(tbl, precision),
        accuracy_loss=value,
        best_accuracy=tbl.predict(0.0, precision)[0],
        best_arch=tbl.best_arch,
        bounds=bound_report(problem, values),
        strategy=outcome.strategy,
        answer_from=outcome.strategy if answer is own else "exact",
        status=answer.status,
        penalty=penalty,
        seed=seed,
        strategy_value=own.value if own is not None else None,
        optimum_value=reference.value,
        optimum_status=reference.status,
        optimum_bound=reference.bound,
        optimality_gap=max(reference.bound - value, 0.0),
        strategy_gap=None if own is None or own.value is None else max(reference.value - own.value, 0.0),
        loss_range=float(-masked_extremes(problem.score, problem.structural)[0].sum()),
        search_seconds=outcome.seconds,
        strategy_seconds=own.seconds if own is not None else 0.0,
        exact_seconds=reference.seconds,
        strategy_details=details,
        history=own.history if own is not None else [],
        table=str(tbl.path) if tbl.path else None,
        precision=prof.precision if prof else None,
        profile_file=str(prof.path) if prof and prof.path else None,
        resolution=space.resolution,
    )


def _device_note(prof) -> str | None:
    """Where a measured profile from another host was timed, and the one command that profiles this machine."""
    where = getattr(prof, "elsewhere", None) if prof else None
    if not where:
        return None
    return (
        f"profile {prof.name} was measured on {where}, not here: its latency predicts that machine, and its "
        f"error on this one is unknown; profile this machine with `{prof.profile_here_command()}`"
    )


def _blocks(tbl: AccuracyTable, prof, genes: np.ndarray) -> list[BlockChoice]:
    space, costs = tbl.space, cost_arrays(tbl.space)
    latency = prof.latency_terms()[0] if prof is not None else None
    return [
        BlockChoice(
            l + LAYERS_NUMBERED_FROM,
            space.candidate_names[g],
            spec.in_channels,
            spec.out_channels,
            spec.stride,
            float(tbl.loss[l, g]),
            int(costs.macs[l, g]),
            None if latency is None else float(latency[l, g]),
        )
        for l, (g, spec) in enumerate(zip(genes, space.layers))
    ]


def accuracy_basis(table: AccuracyTable, precision: str | None = None) -> str:
    fit = table.prediction_fit
    if not fit:
        basis = "PONAS table sum (this table has no measured fit: no error band)"
    else:
        split = (
            "held-out split (images neither training nor the table saw)"
            if fit["split"] == "fit"
            else "validation split"
        )
        where = " at spread bounds" if table.pick_fit else ""
        basis = f"{split}, {fit['images']} images, fit over {fit['samples']} measured {table.fitted_on}{where}"
    if precision != "int8":
        return basis
    int8 = table.int8
    if not int8:
        return basis + "; int8: FP32 figure, the INT8 drop never measured (`specialize table int8-check`): no band"
    return (
        basis + f"; int8: less the median INT8 drop {100 * int8['median_drop']:.2f} points over "
        f"{len(int8.get('networks') or [])} networks"
    )


def bound_report(problem: Problem, values: dict[str, float]) -> list[dict]:
    """Each bound with the answer's value; `binding` false (with a `note`) when the whole space meets it."""
    from specialize.search.reach import reachable

    report = []
    for b in problem.bounds:
        low, high = reachable(problem, b.metric)
        m = METRICS[b.metric]
        notes = []
        if b.upper is not None and high <= b.upper:
            notes.append(f"not binding: the largest network in {problem.space_name} has {m.label} {m.format(high, 4)}")
        if b.lower is not None and low >= b.lower:
            notes.append(f"not binding: the smallest network in {problem.space_name} has {m.label} {m.format(low, 4)}")
        report.append(
            {
                "metric": b.metric,
                "label": m.label,
                "lower": b.lower,
                "upper": b.upper,
                "tolerance": b.tolerance,
                "value": values[b.metric],
                "ok": b.holds(values[b.metric]),
                "binding": len(notes) < (b.lower is not None) + (b.upper is not None),
                "note": "; ".join(notes),
            }
        )
    return report


def export_result(
    result: SpecializeResult,
    output: str | Path,
    *,
    data: str | Path | None = None,
    recalibrate: bool = True,
    fmt: str = "onnx",
    profile=None,
    pick_finetune_epochs: float = 0.0,
    pick_finetune_lr: float | None = None,
    pick_finetune_distill: float = 0.0,
    progress=lambda text: None,
) -> SpecializeResult:
    """Write the chosen sub-network through the one deploy path (supernet.export.export_subnet: extract,
    recalibrate batch norm, ONNX, check, measure) and return the result with `export` filled in: the file's
    own MACs, parameters, bytes and peak memory (equal to the reported ones, or this raises), its measured
    accuracy, and its latency timed as deployed when the device profile was measured on this machine.
    `pick_finetune_epochs` > 0 first trains the pick alone on the data's training images; the printed band is then
    checked against the pick as extracted, measured before that training."""
    from specialize.api.offline import pick_finetune_recipe

    recipe = pick_finetune_recipe(pick_finetune_epochs, pick_finetune_lr, pick_finetune_distill)
    tbl = load_table(result.table)
    refuse_proxy_export(tbl)
    from specialize.fileio import check_not_input

    profile = profile or result.profile_file
    check_not_input(output, tbl.path, tbl.weights_path(), tbl.calibration_path(), data, profile)
    from specialize.api.offline import check_companions

    check_companions(Path(output), fmt)
    try:
        from supernet.export import export_subnet
    except ImportError as exc:
        raise SpecializeError(
            f"exporting needs torch and onnx (supernet.export), which this install lacks ({exc})"
        ) from None
    extra = {
        "specialize.predicted_accuracy": f"{result.predicted_accuracy:.6f}",
        "specialize.predicted_accuracy_band": ""
        if result.predicted_accuracy_band is None
        else f"{result.predicted_accuracy_band:.6f}",
        "specialize.accuracy_basis": result.accuracy_basis,
        "specialize.device": result.device or "",
        "specialize.predicted_latency_ms": "" if result.latency_ms is None else f"{result.latency_ms:.6g}",
        "specialize.bounds": " ".join(_bound_flags(result)),
    }
    done = export_subnet(
        tbl.space.name,
        result.arch,
        output,
        weights=str(tbl.path),
        data=data,
        fmt=fmt,
        precision=shipped_precision(result.precision),
        recalibrate_bn=recalibrate,
        extra_metadata=extra,
        finetune=recipe,
        progress=progress,
    )
    reported = {k: getattr(result, k) for k in ("macs", "params", "bytes", "peak_activation_bytes")}
    written = {k: getattr(done, k) for k in reported}
    if written != reported:
        raise SpecializeError(
            f"internal error: the exported network's figures {written} differ from the reported {reported}"
        )
    prof = (
        resolve_device(result.device, tbl.space, profile, result.batch, result.threads, result.precision)
        if (result.device or profile)
        else None
    )
    latency, latency_note = _deployed_latency(done.onnx_path, prof)
    export = {
        "file": str(done.output),
        "onnx": str(done.onnx_path),
        **written,
        "intensity": done.intensity,
        "architecture": done.arch,
        "bn_statistics": done.bn_statistics,
        "predicted_accuracy": result.predicted_accuracy,
        "predicted_accuracy_band": result.predicted_accuracy_band,
        "measured_accuracy": done.measured_accuracy,
        "measured_on": done.measured_on,
        "precision": done.precision,
        "fp32_accuracy": done.fp32_accuracy,
        "predicted_latency_ms": result.latency_ms,
        "measured_latency_ms": latency,
        "latency_note": latency_note,
        "finetuned": done.finetuned,
        "misses": _misses(result, done.measured_accuracy, latency, done.finetuned),
        "max_abs_diff": done.max_abs_diff,
        "build_script": str(done.build_script) if done.build_script else None,
        "warnings": done.warnings,
        "notes": done.notes,
    }
    from dataclasses import replace

    return replace(result, export=export)


def shipped_precision(profile_precision: str | None) -> str:
    """The precision an export ships for a profile's: int8 as a QDQ file; fp16 as a half-precision ONNX file (weights,
    activations, input and output), or for --format tensorrt as an fp16 engine build from the fp32 ONNX; else fp32."""
    return profile_precision if profile_precision in ("int8", "fp16") else "fp32"


def _misses(
    result: SpecializeResult, accuracy: float | None, latency: float | None, finetuned: dict | None = None
) -> list[str]:
    """What the shipped file measured outside the band printed for it (said, never passed over). The band predicts
    the pick as the supernet holds it: after a fine-tune of the pick alone, the measurement before it is checked."""
    out = []
    band = result.predicted_accuracy_band
    what = "measured accuracy"
    if finetuned is not None:
        accuracy, what = finetuned["accuracy_before"], "accuracy measured before the pick's fine-tuning"
    if accuracy is not None and band is not None and abs(accuracy - result.predicted_accuracy) > band:
        out.append(
            f"{what} {100 * accuracy:.2f}% is outside the printed band "
            f"({100 * result.predicted_accuracy:.2f}% ± {100 * band:.1f})"
        )
    error = result.latency_expected_error
    if latency is not None and result.latency_ms and error is not None and abs(latency / result.latency_ms - 1) > error:
        out.append(
            f"measured latency {latency:.4g} ms is outside the printed band ({result.latency_ms:.4g} ms "
            f"± {100 * error:.0f}%)"
        )
    return out


def refuse_proxy_export(tbl: AccuracyTable) -> None:
    """A table trained at a width or resolution proxy has weights for a different network than the one the
    search reported; exporting it would ship other MACs, parameters and latency. Refuse, and say what to do."""
    trained = tbl.trained_space
    if trained is None or (trained.width_multiplier == 1 and trained.resolution == tbl.space.resolution):
        return
    raise SpecializeError(
        f"accuracy table {tbl.path} was trained at an EcoNAS proxy (width {trained.width_multiplier:g}, resolution "
        f"{trained.resolution}), so its weights are not the network this search reported; train full-width weights "
        f"with `specialize train --space {tbl.space.name} --width 1 ...` and pass --table RUN/table.json, or "
        "export the "
        f"proxy knowingly with `specialize export --arch ... --weights {tbl.path}`"
    )


def _bound_flags(result: SpecializeResult) -> list[str]:
    from specialize.search.constraints import Bound

    return [f for b in result.bounds for f in Bound(b["metric"], b["lower"], b["upper"]).flags()]


def _deployed_latency(onnx_path: Path, prof) -> tuple[float | None, str]:
    """Latency of the written file timed as a deployment would, when the profile was measured on this machine
    with the same runtime; otherwise None and why not."""
    if prof is None:
        return None, "not measured: no device given"
    from hw_profiles.deployed import deployed_latency_ms, not_measured_here

    why_not = not_measured_here(prof)
    if why_not:
        return None, f"not measured: {why_not}"
    return deployed_latency_ms(onnx_path, prof)


@dataclass(frozen=True)
class FrontPoint:
    arch: str
    accuracy_loss: float  # Σ T_d
    predicted_accuracy: float  # by the table's fitted score -> accuracy map, as every prediction
    predicted_accuracy_band: float | None  # its half-width (None: the table has no fit)
    cost: float  # the objective: latency_ms or macs
    macs: int
    params: int
    latency_ms: float | None
    label: str | None  # "most accurate" | "knee" | "cheapest" | None
    optimum_loss: float | None  # labelled points: exact optimum Σ T_d at this cost


@dataclass(frozen=True)
class ParetoFront:
    space: str
    device: str | None
    device_kind: str | None
    batch: int | None  # batch size the latencies are for (the profile's)
    objective: str  # "latency" | "macs"
    cost_key: str  # "latency_ms" | "macs"
    points: list[FrontPoint]
    bounds: list[dict]
    seed: int
    search_seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@takes_bounds
def pareto(
    device: str | None = None,
    *,
    objective: str = "latency",
    table=None,
    profile=None,
    seed: int = 0,
    population: int = 48,
    generations: int = 200,
    batch: int | None = None,
    threads: int | None = None,
    **bounds,
) -> ParetoFront:
    """The accuracy-loss versus `objective` front (NSGA-II); other bounds, `batch` and `threads` as in `specialize`."""
    from specialize.search.pareto import OBJECTIVES, nsga2

    _check_choice("objective", objective, tuple(OBJECTIVES))
    tbl, prof, problem = prepare(table, device, profile, bounds_from_options(**bounds), batch, threads)
    if objective == "latency" and prof is None:
        raise SpecializeError(
            "--objective latency needs a device: give --device or --profile (or use --objective macs)"
        )
    from specialize.search.exact import solve_exact
    from specialize.search.reach import explain_infeasible

    if solve_exact(problem).genes is None:
        raise explain_infeasible(problem)
    raw = nsga2(problem, OBJECTIVES[objective], seed=seed, population=population, generations=generations)
    values = problem.measure(raw.genes)
    points = [
        FrontPoint(
            str(tbl.space.arch_from_indices(g)),
            float(raw.scores[i]),
            tbl.predict(float(raw.scores[i]))[0],
            tbl.predict(float(raw.scores[i]))[1],
            float(raw.costs[i]),
            int(values["macs"][i]),
            int(values["params"][i]),
            float(values["latency_ms"][i]) if prof is not None else None,
            raw.labels.get(i),
            raw.optimum.get(i),
        )
        for i, g in enumerate(raw.genes)
    ]
    return ParetoFront(
        tbl.space.name,
        prof.name if prof else None,
        prof.kind if prof else None,
        prof.batch if prof else None,
        objective,
        OBJECTIVES[objective],
        points,
        [asdict(b) for b in problem.bounds],
        seed,
        raw.seconds,
    )

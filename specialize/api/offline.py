"""The composition root's torch side: training, table validation, the EcoNAS proxy check, export and the
decoded-dataset cache. `cli/` calls these; torch is imported inside them, so `specialize --help` stays light.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from specialize.errors import SpecializeError, option
from specialize.fileio import check_not_input, check_writable
from specialize.space import LITE_VARIANTS, SPACES, SearchSpace, get_space
from specialize.table import is_table_reference
from supernet.train_config import PICK_FINETUNE_LRS, FinetuneRecipe


# search answers `train` measures after training to fit its predictions on (`table refit --picks`): the CLI's default
PICKS = 24
# `export --pick-finetune-epochs`: the learning rate the pick trains alone at unless told, by how its batch norm trains
PICK_FINETUNE_LR_HELP = (
    f"default {PICK_FINETUNE_LRS['batch']:g}, or {PICK_FINETUNE_LRS['frozen']:g} for a --batch-norm frozen run"
)


def train_config_type():
    """The training settings dataclass (torch-free), whose defaults the CLI shows."""
    from supernet.train_config import TrainConfig

    return TrainConfig


def train(cfg, output: Path, resume: bool, report: Callable[[dict], None], picks: int = 0):
    """Check the settings and the pretrained source, then run (or resume) PONAS training; returns the table. With
    `picks`, the main process then fits the table's predictions on the search's answers (`calibrate_on_picks`),
    for each input size's table, and returns the table as refitted."""
    get_space(cfg.space)
    if picks and not 3 <= picks <= 200:
        raise SpecializeError(f"{option('picks')} must be 0 (none) or 3..200, got {picks}")
    if cfg.init is not None:
        from supernet.pretrained import PRETRAINED, resolve_source

        resolve_source(cfg.init)  # a missing package or file fails before any directory is made or data read
        known = PRETRAINED.get(cfg.init)
        if known is not None and get_space(known.space).layers != get_space(cfg.space).layers:
            raise SpecializeError(
                f"{option('init')} {cfg.init} holds {known.space}'s layer plan, not {cfg.space}'s: "
                f"train it with {option('space')} {known.space}"
            )
    cfg.check()
    from supernet.train import train as run_training

    table = run_training(cfg, output, resume=resume, report=report)
    if not picks or int(os.environ.get("RANK", "0")) != 0:
        return table
    from specialize.table import load_table

    written = load_table(output / "table.json")
    note = lambda text: report({"event": "note", "text": text})  # noqa: E731
    for path in sorted({Path(p).resolve() for p in [written.path, *written.sizes().values()]}):
        try:
            calibrate_on_picks(str(path), Path(cfg.data), picks, cfg.seed, note)
        except TooFewAnswers as exc:  # the table is written and sound: keep its fit on random sub-networks
            note(f"{path.name}: predictions keep the fit on random sub-networks: {exc}")
    return load_table(output / "table.json")


def validate_table(
    table: str, data: Path, samples: int, seed: int, plot: Path | None, progress: Callable[[int, int], None]
):
    """Measured accuracy of `samples` sub-networks against the table's predicted scores (and a scatter plot)."""
    from specialize.table import load_table
    from supernet.data import load_dataset
    from supernet.validate import scatter_plot, validate_table as measure

    t = load_table(table)
    if plot:
        check_writable(plot)
    fidelity = measure(t, load_dataset(data), samples, seed, progress=progress)
    if plot:
        scatter_plot(fidelity, plot, f"accuracy table fidelity: {t.space.name}, {len(fidelity.samples)} sub-networks")
    return fidelity


def check_rewritable(table: str, path: Path, what: str) -> None:
    """A command that rewrites a table in place: an embedded table's name (`default`, `cifar10`: a table inside the
    installed package) is refused, so that no mistyped or scripted `--table default` edits the package; naming its
    file is consent."""
    from specialize.table import is_embedded_name

    if is_embedded_name(table):
        raise SpecializeError(
            f"{what} rewrites the table, and `--table {table}` is the one inside the package; copy it and give the "
            f"copy, or name its file to rewrite it: --table {path}"
        )
    check_writable(path)


def int8_check(
    table: str, data: Path | None, networks: int, seed: int, record: bool, progress: Callable[[str], None]
) -> dict:
    """INT8's accuracy drop over `networks` spread sub-networks of the table (supernet.quantize.int8_drop), on the
    test split of `data` (default: the data the table was trained on); with `record`, kept in the table, where
    predictions at int8 read it."""
    from specialize.fileio import provenance
    from specialize.sampling import check_seed
    from specialize.table import load_table
    from supernet.quantize import int8_drop

    if not 2 <= networks <= 1000:
        raise SpecializeError(f"{option('networks')} must be 2..1000, got {networks}")
    check_seed(seed)
    t = load_table(table)
    source = data if data is not None else t.training_data()
    if source is None:
        raise SpecializeError(
            f"give {option('data')}: the data accuracy table {t.path} was trained on is not on this machine"
        )
    if record:
        check_rewritable(table, t.path, "--record")
    from supernet.export import check_data_classes

    check_data_classes(t.space, source, t.space.resolution)
    result = int8_drop(t, source, networks, seed, progress)
    result["provenance"] = provenance(command="table int8-check", networks=networks, seed=seed, data=str(source))
    if record:
        t.results = {**t.results, "int8": result}
        t.save(t.path)
    return result


def refit_accuracy(table: str) -> tuple[dict | None, dict]:
    """Refit the table's score -> accuracy map from the sub-networks training measured (`results.spread`) with
    this version's method, and keep it in the table: (the fit it had, the new one)."""
    from specialize.fileio import provenance
    from specialize.table import fit_accuracy, load_table

    t = load_table(table)
    t.measured(at_least=3)  # refuses a table without enough measured sub-networks, naming the field
    check_rewritable(table, t.path, "table refit")
    old = t.accuracy_fit
    images = (old or {}).get("images") or t.results.get("validation_images") or 0
    split = (old or {}).get("split") or "validation"
    new = {**fit_accuracy(t.results["spread"], images, split), "provenance": provenance(command="table refit")}
    t.results = {**t.results, "accuracy_fit": new}
    t.save(t.path)
    return old, new


class TooFewAnswers(SpecializeError):
    """The search gave fewer than 3 distinct answers over the ceilings: no curve can be fitted on them."""


def calibrate_on_picks(
    table: str, data: Path | None, picks: int, seed: int, progress: Callable[[str], None]
) -> tuple[dict | None, dict]:
    """Fit the table's score -> accuracy map on what the search itself answers: `picks` MACs ceilings spread
    evenly over the space's range (the smallest network's MACs to the largest's), the search's answer at each
    (seed `seed`), each answer measured with its inherited weights after batch-norm recalibration on the run's
    fit split (its validation split in runs made without one), and the curve and band refitted on them; kept in
    the table as `results.pick_fit`, which predictions then read. Returns (the fit predictions read before, the
    new one)."""
    import numpy as np

    from specialize.api import specialize
    from specialize.cost import space_ranges
    from specialize.fileio import provenance
    from specialize.sampling import check_seed
    from specialize.table import fit_accuracy, load_table
    from supernet.fitness import supernet_fitness

    if not 3 <= picks <= 200:
        raise SpecializeError(f"{option('picks')} must be 3..200, got {picks}")
    check_seed(seed)
    t = load_table(table)
    check_rewritable(table, t.path, "table refit --picks")
    source = data if data is not None else t.training_data()
    if source is None:
        raise SpecializeError(
            f"give {option('data')}: the data accuracy table {t.path} was trained on is not on this machine"
        )
    low, high = space_ranges(t.space)["macs"]
    size = t.space.resolution if t.sizes() else None  # elastic resolution: this table's own size
    answers = {}
    for ceiling in np.linspace(low, high, picks):  # from the smallest network, which only the lowest meets
        answer = specialize(None, table=t, max_flops=int(ceiling), seed=seed, resolution=size)
        answers.setdefault(answer.arch, (answer, int(ceiling)))
    fitness = supernet_fitness(t, source, split="fit")
    samples = []
    for n, (arch, (answer, ceiling)) in enumerate(answers.items(), 1):
        measured = fitness.accuracy(tuple(t.space.parse_arch(arch).indices), fitness.images)
        spread_fit = t.predict(answer.accuracy_loss, fit=t.accuracy_fit)[0] if t.accuracy_fit else None
        samples.append(
            {"arch": arch, "score": answer.accuracy_loss, "accuracy": measured, "macs": answer.macs,
             "max_flops": ceiling, "spread_fit": spread_fit}
        )  # fmt: skip
        progress(f"pick {n}/{len(answers)}: {answer.macs / 1e6:.1f}M MACs, measured {100 * measured:.2f}%")
    fit = fit_accuracy(samples, fitness.images, fitness.split.name, spans_answers=True)
    if fit is None:
        raise TooFewAnswers(
            f"the search gave {len(samples)} distinct answers over {picks} ceilings; a fit needs 3: give more "
            f"{option('picks')}"
        )
    old = t.prediction_fit
    made = provenance(command="table refit --picks", picks=picks, seed=seed, data=str(source))
    new = {**fit, "picks": samples, "bound": "max_flops", "seed": seed, "provenance": made}
    t.results = {**t.results, "pick_fit": new}
    t.save(t.path)
    return old, new


def proxy_check(
    space: str,
    data: Path,
    zoo: int,
    reference: str,
    settings: str,
    val_per_class: int,
    seed: int,
    threads: int | None,
    plot: Path | None,
    checkpoint: Path | None,
    progress: Callable[[str], None],
):
    """EcoNAS's rank-consistency check of reduced settings against a reference, over a zoo of architectures."""
    search_space = get_space(space)
    if not 3 <= zoo <= 10_000:
        raise SpecializeError(f"{option('zoo')} must be 3..10000, got {zoo}")
    from supernet.proxy_check import Setting, plot_proxy_check, proxy_check as run_check, read_checkpoint

    ref = Setting.parse(reference)
    reduced = [Setting.parse(s) for s in settings.split(",") if s.strip()]
    for path in (plot, checkpoint):
        if path is not None:
            check_writable(path)
    if checkpoint is not None:
        read_checkpoint(checkpoint)
    import torch

    from supernet.data import load_dataset

    if threads:
        torch.set_num_threads(threads)
    dataset = load_dataset(data, image_size=search_space.resolution)
    results = run_check(
        search_space.with_classes(dataset.classes),
        dataset,
        zoo,
        ref,
        reduced,
        seed=seed,
        val_per_class=val_per_class,
        progress=progress,
        checkpoint=checkpoint,
    )
    if plot is not None:
        plot_proxy_check(results, plot, f"{space}: rank consistency over {zoo} architectures")
    return results


def proxy_check_json(results) -> dict:
    from supernet.proxy_check import to_dict

    return to_dict(results)


def export(
    space: str | None,
    arch: str,
    output: Path,
    *,
    weights: str | None,
    data: Path | None,
    fmt: str,
    precision: str,
    recalibrate: bool,
    untrained: bool = False,
    pick_finetune_epochs: float = 0.0,
    pick_finetune_lr: float | None = None,
    pick_finetune_distill: float = 0.0,
    progress: Callable[[str], None] = lambda text: None,
):
    """Check the request (architecture, output, TensorRT companions), then export; returns the ExportResult.
    `space`: see `export_space`. Without `weights`, those of the embedded table whose space it is; elsewhere a
    refusal, unless `untrained` asks for random weights (never shipped by default). `pick_finetune_epochs` > 0 trains
    the architecture alone first (see `pick_finetune_recipe`)."""
    recipe = pick_finetune_recipe(pick_finetune_epochs, pick_finetune_lr, pick_finetune_distill)
    network_space = export_space(space, weights)
    network_space.parse_arch(arch)  # bad input fails here, before torch is even imported
    weights = export_weights(network_space, weights, untrained)
    check_writable(output)
    check_not_input(output, *_weights_files(weights), data)
    from supernet.export import export_subnet

    check_companions(output, fmt)
    return export_subnet(
        network_space,
        arch,
        output,
        weights=weights,
        data=data,
        fmt=fmt,
        precision=precision,
        recalibrate_bn=recalibrate,
        finetune=recipe,
        progress=progress,
    )


def pick_finetune_recipe(epochs: float, lr: float | None = None, distill: float = 0.0):
    """The recipe that trains a picked sub-network alone on every training image of the data (supernet.finetune),
    checked; None for `epochs` 0 (export the sub-network as the supernet holds it)."""
    if epochs == 0:
        return None
    return FinetuneRecipe(epochs=epochs, lr=lr, distill=distill).check()


def export_space(space: str | None, weights: str | None) -> SearchSpace:
    """The space an architecture is exported from: `space` as a preset, an embedded table's name or a table .json
    (the space it carries), or the name of the space `weights` carry (a dataset's own space lives only in its table
    and weights); without `space`, the space of `weights` (a table or supernet weights file), else of the embedded
    default table, whose search printed the architecture."""
    from specialize.api.hardware import space_of

    carries = weights is not None and (weights in SPACES or weights.endswith(".pt") or is_table_reference(weights))
    if space is None:
        return space_of(weights if carries else "default")
    try:
        return space_of(space)
    except SpecializeError:
        carried = space_of(weights) if carries else None
        if carried is None or carried.name != space:
            raise
        return carried


def _weights_files(weights: str | None) -> list[Path]:
    """The files an export reads for `weights`: the file itself; for a table, its weights and calibration too."""
    from specialize.table import is_embedded_name

    if weights is None or is_embedded_name(weights):
        return []
    files = [Path(weights)]
    if weights.endswith(".json") and Path(weights).is_file():
        from specialize.table import load_table

        table = load_table(weights)
        files += [p for p in (table.weights_path(), table.calibration_path()) if p is not None]
    return files


def export_weights(space: SearchSpace, weights: str | None, untrained: bool) -> str | None:
    """The weights an export uses: those given; else those of the embedded table whose space `space` is."""
    if untrained:
        if weights is not None:
            raise SpecializeError(f"{option('untrained')} and {option('weights')} contradict each other: give one")
        return None
    if weights is not None:
        return weights
    from specialize.table import EMBEDDED_TABLES, embedded_table_for

    embedded = embedded_table_for(space)
    if embedded is not None:
        return embedded
    raise SpecializeError(
        f"no {option('weights')} for space {space.name!r}: give {option('weights')} (a weights file, a table .json, "
        f"an embedded table: {', '.join(EMBEDDED_TABLES)}, or "
        f"{', '.join(LITE_VARIANTS)}), or {option('untrained')} for a random-weight model (latency work only)"
    )


def check_companions(output: Path, fmt: str) -> None:
    """`--format tensorrt -o d/x.engine` also writes d/x.onnx and its build script: refuse to replace them silently."""
    from supernet.export import build_script_path, output_paths

    if fmt != "tensorrt":
        return
    onnx_path, engine_path = output_paths(output, fmt)
    companions = [p for p in (onnx_path, engine_path, build_script_path(onnx_path)) if p != Path(output)]
    existing = [str(p) for p in companions if p.exists() or p.is_symlink()]
    if existing:
        raise SpecializeError(
            f"{option('format', 'tensorrt')} would overwrite {', '.join(existing)}; move them or pick another "
            f"{option('output')}"
        )


def cache_summary() -> tuple[Path, int, int]:
    """(cache directory, bytes used, entries) of the decoded-dataset cache."""
    from supernet.data import cache_root, directory_bytes

    root = cache_root() / "datasets"
    entries = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return root, directory_bytes(root), len(entries)


def clear_cache() -> tuple[Path, int]:
    """Empty the decoded-dataset cache; (directory, bytes freed)."""
    from supernet.data import cache_root, clear_cache as clear

    return cache_root() / "datasets", clear()

"""Accuracy tables (PONAS §3.3): validation accuracy T[l, i] of candidate i at layer l, and T_d = T - max_i T[l, i].

The file is JSON, schema-versioned, with the space it applies to (and its fingerprint), the proxy
settings it was trained at, the weights file and its sha256, and provenance. Pure numpy.

Elastic depth: a space with `skip` has a `skip` column. Where a layer changes shape, skip is not a
candidate; training stores 0.0 in that cell (a valid accuracy, so the reader's rules stay one: every
entry a number in [0, 1]) and never evaluates it. Nothing reads such a cell: `loss` takes each row's
best over the allowed cells only, and every solver masks it through `SearchSpace.allowed_mask`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from specialize.errors import SpecializeError
from specialize.fileio import atomic_write_json, read_json, require
from specialize.space import SearchSpace

TABLE_SCHEMA_VERSION = 1
KIND = "accuracy table"
DEFAULTS_DIR = Path(__file__).parent / "defaults"
EMBEDDED_TABLES = {  # name -> table shipped inside the package (weights and calibration images beside it)
    "lite0-cifar10-96": DEFAULTS_DIR / "lite0-cifar10-96.table.json",  # EfficientNet-Lite0 space from ImageNet, 96 px
    "cifar10": DEFAULTS_DIR / "cifar10.table.json",  # the 32x32 plan trained from scratch
}
DEFAULT_NAME = "lite0-cifar10-96"
DEFAULT_TABLE = EMBEDDED_TABLES[DEFAULT_NAME]


def accuracy_loss(accuracy: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Accuracy-loss table T_d = T - max_i T[l, i], the max over allowed candidates (<= 0 wherever allowed)."""
    return accuracy - np.where(allowed, accuracy, -np.inf).max(axis=1, keepdims=True)


@dataclass
class AccuracyTable:
    space: SearchSpace  # the full-size space the table applies to
    accuracy: np.ndarray  # [layers, candidates], validation accuracy in [0, 1]
    best_arch: str
    trained_space: SearchSpace | None = None  # the proxy space the supernet was trained at
    proxy: dict = field(default_factory=dict)
    weights: dict | None = None  # {"file": relative path, "sha256": ..., "dtype": ...}
    calibration: dict | None = None  # {"file": relative path, "sha256": ..., "images": n}: BN recalibration images
    results: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def allowed(self) -> np.ndarray:
        """[layers, candidates] the space's mask: False only for `skip` where a layer changes shape."""
        return np.array(self.space.allowed_mask(), dtype=bool).reshape(self.accuracy.shape)

    @property
    def loss(self) -> np.ndarray:
        return accuracy_loss(self.accuracy, self.allowed)

    @property
    def fingerprint(self) -> str:
        return self.space.fingerprint

    def weights_path(self) -> Path | None:
        return self._beside(self.weights)

    def calibration_path(self) -> Path | None:
        return self._beside(self.calibration)

    def training_data(self) -> str | None:
        """The dataset this table was trained on, when that path exists on this machine: the absolute path training
        recorded (`data_path`), or the path as given when that was absolute. A relative path as given is never
        taken from the current directory, where an unrelated folder of that name may stand."""
        settings = (self.provenance or {}).get("settings") or {}
        for data in (settings.get("data_path"), settings.get("data")):
            if isinstance(data, str) and Path(data).is_absolute() and Path(data).exists():
                return data
        return None

    def _beside(self, entry: dict | None) -> Path | None:
        if not entry:
            return None
        base = self.path.parent if self.path else Path(".")
        return base / entry["file"]

    def sizes(self) -> dict[int, Path]:
        """Elastic resolution's tables, by input size (`results.resolutions`, files beside this one; this table at
        its own size); {} for a table of one size."""
        family = self.results.get("resolutions") or {}
        if not family:
            return {}
        base = self.path.parent if self.path else Path(".")
        return {int(size): (self.path if int(size) == self.space.resolution and self.path else base / name)
                for size, name in sorted(family.items(), key=lambda item: int(item[0]))}  # fmt: skip

    @property
    def accuracy_fit(self) -> dict | None:
        """Map from table score (sum of T_d) to validation accuracy, fitted on measured sub-networks."""
        return self.results.get("accuracy_fit")

    @property
    def pick_fit(self) -> dict | None:
        """The same map fitted on the search's own answers (`specialize table refit --picks`), measured on held-out
        images. The search maximizes the table's score, so its answers are the networks the table overrates most
        (skips whose losses do not add up): at one score they measure below random sub-networks."""
        return self.results.get("pick_fit")

    @property
    def prediction_fit(self) -> dict | None:
        """The fit predictions read: the one made on search answers where the table has it, else the spread one."""
        return self.pick_fit or self.accuracy_fit

    @property
    def fitted_on(self) -> str:
        """What the networks `prediction_fit` was made on are, in words."""
        return "search answers" if self.pick_fit else "random sub-networks"

    @property
    def int8(self) -> dict | None:
        """What INT8 costs this table's networks (`specialize table int8-check`): median drop and its band."""
        return self.results.get("int8")

    def predict(
        self, score: float, precision: str | None = None, fit: dict | None = None
    ) -> tuple[float, float | None]:
        """(predicted accuracy, half-width of its band) for a table score, from `fit` (default `prediction_fit`).
        Without a fit: PONAS's best-network accuracy plus the score, and no band. At int8: the FP32 prediction
        less the measured median INT8 drop, the two bands combined; no band where the drop was never measured."""
        fit = fit or self.prediction_fit
        if not fit:
            predicted, band = float(self.accuracy[-1].max()) + score, None
        elif fit.get("knots"):
            knots = fit["knots"]
            predicted, band = float(np.interp(score, knots["score"], knots["accuracy"])), fit["band"]
        else:
            predicted, band = fit["intercept"] + fit["slope"] * score, fit["band"]
        if precision != "int8":
            return predicted, band
        if not self.int8:
            return predicted, None
        drop_band = self.int8.get("band") or 0.0
        return predicted - self.int8["median_drop"], None if band is None else float(np.hypot(band, drop_band))

    def measured(self, at_least: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """The sub-networks training measured (`results.spread`): genes [n, L] and validation accuracy [n].
        Fewer than `at_least`, or a malformed entry, raise a one-line error."""
        spread = self.results.get("spread") or []
        where = f"accuracy table {self.path or '(in memory)'}"
        if not isinstance(spread, list) or len(spread) < at_least:
            count = len(spread) if isinstance(spread, list) else 0
            raise SpecializeError(
                f"{where} has {count} measured sub-networks (results.spread); this needs at least "
                f"{at_least}: tables written by `specialize train` measure 30"
            )
        genes, accuracy = [], []
        for i, entry in enumerate(spread):
            ok = isinstance(entry, dict) and isinstance(entry.get("arch"), str) and _is_number(entry.get("accuracy"))
            if not ok or not 0 <= entry["accuracy"] <= 1:
                raise SpecializeError(
                    f"{where}: results.spread[{i}] needs an 'arch' string and an 'accuracy' in [0, 1]"
                )
            genes.append(self.space.parse_arch(entry["arch"]).indices)
            accuracy.append(float(entry["accuracy"]))
        return np.asarray(genes, dtype=np.int64), np.asarray(accuracy)

    def check_space(self, space: SearchSpace) -> None:
        if space.fingerprint != self.fingerprint:
            raise SpecializeError(
                f"accuracy table {self.path or ''} is for space {self.space.name!r} (fingerprint {self.fingerprint}) "
                f"but space {space.name!r} (fingerprint {space.fingerprint}) was asked for"
            )

    def to_dict(self) -> dict:
        return {
            "schema_version": TABLE_SCHEMA_VERSION,
            "kind": "accuracy_table",
            "space": self.space.to_dict(),
            "space_name": self.space.name,
            "fingerprint": self.fingerprint,
            "trained_space": self.trained_space.to_dict() if self.trained_space else None,
            "trained_fingerprint": self.trained_space.fingerprint if self.trained_space else None,
            "proxy": self.proxy,
            "candidates": list(self.space.candidate_names),
            "accuracy": self.accuracy.round(6).tolist(),
            "loss": self.loss.round(6).tolist(),
            "best_arch": self.best_arch,
            "weights": self.weights,
            "calibration": self.calibration,
            "results": self.results,
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())
        self.path = Path(path)


def _space_field(data: dict, key: str, path: Path) -> SearchSpace:
    try:
        return SearchSpace.from_dict(require(data, key, path, KIND))
    except (TypeError, KeyError, ValueError) as exc:
        raise SpecializeError(f"{KIND} file {path}: field {key!r} is not a valid space: {exc}") from None


def _is_number(value) -> bool:
    """A plain JSON number: an int (not a bool) or a finite float; huge ints are numbers too (range checks
    refuse them)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value)
    )


def _accuracy_field(value, space: SearchSpace, path: Path) -> np.ndarray:
    """[layers][candidates] of plain JSON numbers in [0, 1]: no strings, booleans, NaN or percentages."""
    shape = (space.num_layers, space.num_candidates)
    rows_ok = (
        isinstance(value, list)
        and len(value) == shape[0]
        and all(isinstance(row, list) and len(row) == shape[1] for row in value)
    )
    if not rows_ok:
        raise SpecializeError(f"{KIND} file {path}: field 'accuracy' is not a [{shape[0]}][{shape[1]}] array")
    cells = [v for row in value for v in row]
    if not all(_is_number(v) and 0 <= v <= 1 for v in cells):
        bad = next(v for v in cells if not (_is_number(v) and 0 <= v <= 1))
        raise SpecializeError(
            f"{KIND} file {path}: field 'accuracy' holds {bad!r}; every entry must be a number in [0, 1]"
        )
    return np.asarray(value, dtype=float)


def _check_fields(data: dict, space: SearchSpace, path: Path) -> None:
    """The fields other than 'accuracy' that commands read: types, and an accuracy fit of finite numbers."""
    best = require(data, "best_arch", path, KIND)
    if not isinstance(best, str):
        raise SpecializeError(f"{KIND} file {path}: field 'best_arch' is not a string")
    try:
        space.parse_arch(best)
    except SpecializeError as exc:
        raise SpecializeError(f"{KIND} file {path}: field 'best_arch': {exc}") from None
    for key in ("proxy", "results", "provenance", "weights", "calibration"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise SpecializeError(f"{KIND} file {path}: field {key!r} is not an object")
    for key in ("weights", "calibration"):
        if data.get(key) and not isinstance(data[key].get("file"), str):
            raise SpecializeError(f"{KIND} file {path}: field '{key}.file' is not a file name")
    int8 = (data.get("results") or {}).get("int8")
    if int8 is not None and not (
        isinstance(int8, dict)
        and _is_number(int8.get("median_drop"))
        and -1 <= int8["median_drop"] <= 1
        and (int8.get("band") is None or (_is_number(int8["band"]) and 0 <= int8["band"] <= 1))
    ):
        raise SpecializeError(
            f"{KIND} file {path}: field 'results.int8' needs a 'median_drop' in [-1, 1] and a 'band' in [0, 1]"
        )
    _check_sizes((data.get("results") or {}).get("resolutions"), space, path)
    for key in ("accuracy_fit", "pick_fit"):
        _check_fit((data.get("results") or {}).get(key), f"results.{key}", path)


def _check_fit(fit, field_name: str, path: Path) -> None:
    if fit is not None and not (
        isinstance(fit, dict) and all(_is_number(fit.get(k)) for k in ("intercept", "slope", "band"))
    ):
        raise SpecializeError(f"{KIND} file {path}: field '{field_name}' needs numbers intercept, slope and band")
    if fit is not None and fit.get("knots") is not None and not _monotone_knots(fit["knots"]):
        raise SpecializeError(
            f"{KIND} file {path}: field '{field_name}.knots' needs lists 'score' (increasing) and "
            "'accuracy' (non-decreasing, in [0, 1]) of one length, 1 to 10000 long"
        )


def _check_sizes(family, space: SearchSpace, path: Path) -> None:
    """results.resolutions: {"<size>": "<file name beside this one>"}, listing this table's own size."""
    ok = (
        isinstance(family, dict)
        and 0 < len(family) <= 16
        and all(
            isinstance(k, str) and k.isdigit() and len(k) <= 5 and isinstance(v, str) and _plain_file_name(v)
            for k, v in family.items()
        )
        and str(space.resolution) in family
    )
    if family is not None and not ok:
        raise SpecializeError(
            f"{KIND} file {path}: field 'results.resolutions' needs input sizes mapped to table file names beside "
            f'it (e.g. {{"64": "table-64px.json"}}), its own size {space.resolution} among them'
        )


def _plain_file_name(name: str) -> bool:
    return (
        0 < len(name) <= 255 and name not in (".", "..") and "/" not in name and "\\" not in name and name.isprintable()
    )


def _monotone_knots(knots) -> bool:
    if not isinstance(knots, dict):
        return False
    score, accuracy = knots.get("score"), knots.get("accuracy")
    if not (isinstance(score, list) and isinstance(accuracy, list) and 1 <= len(score) == len(accuracy) <= 10_000):
        return False
    if not all(_is_number(v) and abs(v) <= 1e6 for v in score + accuracy):
        return False
    return bool(
        np.all(np.diff(score) > 0) and np.all(np.diff(accuracy) >= 0) and 0 <= min(accuracy) <= max(accuracy) <= 1
    )


def load_table(path: str | Path | None = None, space: SearchSpace | None = None) -> AccuracyTable:
    """Load a table; None or 'default' means the embedded default. Checks shape and space."""
    path = resolve_table_path(path)
    if not path.exists():
        raise SpecializeError(f"{KIND} file {path} does not exist (embedded tables: {', '.join(EMBEDDED_TABLES)})")
    data = read_json(path, KIND, TABLE_SCHEMA_VERSION)
    table_space = _space_field(data, "space", path)
    if data.get("fingerprint") != table_space.fingerprint:
        raise SpecializeError(f"{KIND} file {path}: field 'fingerprint' does not match its 'space'")
    accuracy = _accuracy_field(require(data, "accuracy", path, KIND), table_space, path)
    _check_fields(data, table_space, path)
    table = AccuracyTable(
        space=table_space,
        accuracy=accuracy,
        best_arch=require(data, "best_arch", path, KIND),
        trained_space=_space_field(data, "trained_space", path) if data.get("trained_space") else None,
        proxy=data.get("proxy") or {},
        weights=data.get("weights"),
        calibration=data.get("calibration"),
        results=data.get("results") or {},
        provenance=data.get("provenance") or {},
        path=path,
    )
    if space is not None:
        table.check_space(space)
    return table


def fit_accuracy(
    samples: list[dict], images: int, split: str = "validation", spans_answers: bool = False
) -> dict | None:
    """Table score -> accuracy over measured sub-networks: a monotone curve (isotonic regression, the pooled
    points as `knots`, interpolated linearly between them and held flat beyond them), beside the least-squares
    line older readers use. Accuracy saturates towards the best networks, so a line overshoots exactly where
    the search picks (the Lite0 default's line predicted 93.8% for a best network measured at 88.0%).
    `band` is twice the standard deviation of the curve's leave-one-out residuals: each network predicted by a
    curve fitted without it, so the band is an out-of-sample one. None with fewer than 3 samples.
    `spans_answers`: the samples are the search's answers from the smallest network to the best one, so no answer
    scores outside them and the band is taken over the interior samples (leaving out an end one tests a flat
    extrapolation no prediction makes)."""
    if len(samples) < 3:
        return None
    score = np.asarray([s["score"] for s in samples], dtype=float)
    accuracy = np.asarray([s["accuracy"] for s in samples], dtype=float)
    if np.ptp(score) > 0:
        slope, intercept = np.polyfit(score, accuracy, 1)
    else:
        slope, intercept = 1.0, float(accuracy.mean() - score.mean())
    knots = isotonic_knots(score, accuracy)
    keep = np.ones(len(score), dtype=bool)
    residual = []
    for i in range(len(score)):
        keep[i] = False
        residual.append(accuracy[i] - np.interp(score[i], *isotonic_knots(score[keep], accuracy[keep])))
        keep[i] = True
    if spans_answers and len(score) > 3:
        residual = [r for i, r in enumerate(residual) if i not in (np.argmin(score), np.argmax(score))]
    std = float(np.sqrt(np.mean(np.square(residual))))
    return {
        "method": "isotonic",
        "knots": {"score": knots[0].tolist(), "accuracy": knots[1].tolist()},
        "intercept": float(intercept),
        "slope": float(slope),
        "residual_std": std,
        "band": 2 * std,
        "samples": len(samples),
        "split": split,
        "images": int(images),
    }


def isotonic_knots(score: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators: the non-decreasing fit of accuracy on score, as (score, accuracy) knots, one per
    pooled block at its mean score: strictly increasing scores, non-decreasing accuracies."""
    blocks: list[list[float]] = []  # [mean accuracy, weight, mean score]
    for i in np.argsort(score, kind="stable"):
        blocks.append([accuracy[i], 1.0, score[i]])
        while len(blocks) > 1 and (blocks[-2][0] >= blocks[-1][0] or blocks[-2][2] >= blocks[-1][2]):
            (a2, w2, s2), (a1, w1, s1) = blocks.pop(), blocks.pop()
            blocks.append([(a1 * w1 + a2 * w2) / (w1 + w2), w1 + w2, (s1 * w1 + s2 * w2) / (w1 + w2)])
    return np.array([b[2] for b in blocks]), np.array([b[0] for b in blocks])


def space_option(space: SearchSpace) -> str:
    """What `--space` takes for this space: its preset name, the embedded table it lives in, or the table file a
    dataset's own space lives in."""
    return space.preset_name or embedded_table_for(space) or "TABLE.json"


def embedded_table_for(space: SearchSpace) -> str | None:
    """The name of the embedded table whose space is `space` (same fingerprint), the default first; else None."""
    for name in sorted(EMBEDDED_TABLES, key=lambda n: n != DEFAULT_NAME):
        path = EMBEDDED_TABLES[name]
        if path.is_file() and read_json(path, KIND, TABLE_SCHEMA_VERSION).get("fingerprint") == space.fingerprint:
            return name
    return None


def is_embedded_name(reference: str | Path | None) -> bool:
    """'default' or an embedded table's name that is not also a path here."""
    return str(reference) == "default" or (str(reference) in EMBEDDED_TABLES and not Path(str(reference)).exists())


def is_table_reference(reference: str | Path) -> bool:
    """Does this --weights value name an accuracy table (a .json, 'default', an embedded table's name)?"""
    return str(reference).endswith(".json") or is_embedded_name(reference)


def resolve_table_path(path: str | Path | None) -> Path:
    """None or 'default': the embedded default; an embedded table's name (`cifar10`) where no such file exists
    here; otherwise the path as given."""
    if path is not None and not is_embedded_name(path):
        return Path(path)
    embedded = EMBEDDED_TABLES[DEFAULT_NAME if path is None or str(path) == "default" else str(path)]
    if not embedded.is_file():
        raise SpecializeError(f"the embedded table {embedded} is missing from this install")
    return embedded

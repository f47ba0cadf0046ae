"""Make a training run's table and weights an embedded table that the CLI finds by name (the default without
--table).

    python -m supernet.publish RUN --name lite0-cifar10-96 [--data ../shared/data/cifar10-jpg.tar.gz]

`--data` re-packs the run's calibration images from the data set at the images' own size (CIFAR-10's 32x32), the
same images by index, for runs whose calibration file predates that (300 images at 96 px are 8 MB; a shipped
table may carry about 2 MB). An export resizes them to its input as training did.
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

import numpy as np

from specialize.fileio import atomic_write_bytes, sha256_file
from specialize.table import DEFAULTS_DIR, AccuracyTable, load_table

MAX_CALIBRATION_BYTES = 2_200_000


def publish(run_dir: str | Path, name: str = "cifar10", data: str | Path | None = None) -> Path:
    table = load_table(Path(run_dir) / "table.json")
    weights = table.weights_path()
    assert weights is not None and sha256_file(weights) == table.weights["sha256"], "weights do not match the table"
    target = DEFAULTS_DIR / f"{name}.weights.pt"
    shutil.copyfile(weights, target)
    table.weights = dict(table.weights, file=target.name)
    shipped = DEFAULTS_DIR / f"{name}.calibration.npz"
    if data is not None:
        table.calibration = repack_calibration(table, data, shipped)
    elif table.calibration_path() is not None:  # the BN recalibration images travel with the weights
        calibration = table.calibration_path()
        assert sha256_file(calibration) == table.calibration["sha256"], "calibration images do not match the table"
        shutil.copyfile(calibration, shipped)
        table.calibration = dict(table.calibration, file=shipped.name)
    if table.calibration:
        size = (DEFAULTS_DIR / table.calibration["file"]).stat().st_size
        assert size <= MAX_CALIBRATION_BYTES, f"{shipped} is {size} bytes, over ~2 MB: give --data or fewer images"
    table.provenance["published_from"] = str(run_dir)
    out = DEFAULTS_DIR / f"{name}.table.json"
    table.save(out)
    return out


def repack_calibration(table: AccuracyTable, data: str | Path, out: Path) -> dict:
    """The run's calibration images (same indices into the training split) read again at the files' own size."""
    from supernet.data import load_dataset
    from supernet.fitness import check_same_data, training_config
    from supernet.train import held_out_split

    native = load_dataset(data)  # no image size: the files' own
    check_same_data(table, native)
    assert native.source_size is not None, f"images of {data} differ in size: nothing smaller to store"
    _, _, calib, _ = held_out_split(native.train_labels, training_config(table))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=native.train_images[calib], labels=native.train_labels[calib])
    atomic_write_bytes(out, buffer.getvalue())
    return {
        "file": out.name,
        "sha256": sha256_file(out),
        "images": int(len(calib)),
        "source": f"training split of {Path(data).name}, re-packed at its own size by supernet.publish",
        "resolution": int(native.source_size),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--name", default="cifar10")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    print(publish(args.run_dir, args.name, args.data))

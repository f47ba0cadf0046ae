"""Make a training run's table and weights the embedded default that the CLI uses without --table.

python -m supernet.publish runs/cifar10-default
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from specialize.fileio import sha256_file
from specialize.table import DEFAULTS_DIR, load_table


def publish(run_dir: str | Path, name: str = "cifar10") -> Path:
    table = load_table(Path(run_dir) / "table.json")
    weights = table.weights_path()
    assert weights is not None and sha256_file(weights) == table.weights["sha256"], "weights do not match the table"
    target = DEFAULTS_DIR / f"{name}.weights.pt"
    shutil.copyfile(weights, target)
    table.weights = dict(table.weights, file=target.name)
    calibration = table.calibration_path()
    if calibration is not None:  # the BN recalibration images travel with the weights (at most ~2 MB)
        assert sha256_file(calibration) == table.calibration["sha256"], "calibration images do not match the table"
        assert calibration.stat().st_size <= 2_200_000, f"{calibration} is over ~2 MB: lower --calib-images"
        shipped = DEFAULTS_DIR / f"{name}.calibration.npz"
        shutil.copyfile(calibration, shipped)
        table.calibration = dict(table.calibration, file=shipped.name)
    table.provenance["published_from"] = str(run_dir)
    out = DEFAULTS_DIR / f"{name}.table.json"
    table.save(out)
    return out


if __name__ == "__main__":
    print(publish(sys.argv[1]))

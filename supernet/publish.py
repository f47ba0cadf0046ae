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
    table.provenance["published_from"] = str(run_dir)
    out = DEFAULTS_DIR / f"{name}.table.json"
    table.save(out)
    return out


if __name__ == "__main__":
    print(publish(sys.argv[1]))

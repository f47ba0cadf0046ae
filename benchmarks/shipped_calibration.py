"""Do the calibration images shipped beside a table's weights recalibrate an export as well as the data set does?

    python benchmarks/shipped_calibration.py --data ../shared/data/cifar10-jpg.tar.gz [--table default] \\
        [--device jetson] [--max-flops 40M]

The pick of `specialize --device D --max-flops B` on the table is exported twice through the one deploy path:
batch norm recalibrated on the images shipped in the table's calibration file (what a clone without the data set
gets), and on 500 training images of --data (what `--export --data` does). Both files are measured on the test
split of --data in onnxruntime. Prints one line, beside the accuracy the search predicted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from specialize.api import specialize  # noqa: E402
from specialize.table import load_table  # noqa: E402
from supernet.export import calibration_file_batches, export_subnet, shipped_calibration  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--table", default="default")
    parser.add_argument("--device", default="jetson")
    parser.add_argument("--max-flops", default="40M")
    args = parser.parse_args()
    table = load_table(args.table)
    pick = specialize(args.device, table=table, max_flops=args.max_flops)
    shipped = shipped_calibration(table)
    batches = calibration_file_batches(shipped, table.space.resolution)
    with tempfile.TemporaryDirectory() as tmp:
        # given batches come first for batch norm; --data then only measures
        alone = export_subnet(
            table.space, pick.arch, Path(tmp) / "a.onnx", weights=args.table, data=args.data, calibration=batches
        )
        with_data = export_subnet(table.space, pick.arch, Path(tmp) / "b.onnx", weights=args.table, data=args.data)
    print(
        f"{table.space.name} --max-flops {args.max_flops} pick ({pick.macs / 1e6:.1f}M MACs): predicted "
        f"{100 * pick.predicted_accuracy:.2f}% ± {100 * pick.predicted_accuracy_band:.2f}; measured on the test split "
        f"{100 * alone.measured_accuracy:.2f}% recalibrated on the {alone.recalibrated_images} images shipped in "
        f"{shipped.name}, {100 * with_data.measured_accuracy:.2f}% on {with_data.recalibrated_images} training "
        f"images of {args.data.name}"
    )


if __name__ == "__main__":
    main()

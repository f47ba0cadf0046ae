"""Estimated devices: each published anchor beside the estimate, and the expected error band. No timing.

    .venv/bin/python benchmarks/anchors.py

One line per anchor of every registered device (hw_profiles/devices/*.json), at the device's default
precision and then at each other precision it publishes: the published latency, the anchored op-type
estimate of the same reference network (`hw_profiles.roofline.anchoring`), its residual, and the role
("fit" sets the device's scale and is reproduced by construction; "check" measures the error;
"other-family", a network unlike the spaces' blocks, is shown and used for neither). Devices without an
anchor say so. How the estimate ranks networks timed on this CPU, beside MACs alone, is
`benchmarks/fewshot.py`'s k = 0 line.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw_profiles.devices import Device, devices  # noqa: E402
from hw_profiles.roofline import anchoring  # noqa: E402


def device_lines(device: Device) -> list[str]:
    """The device's anchoring at its default precision, then at each other precision it has anchors at."""
    published = {a["precision"] for a in device.anchors} - {device.default_precision}
    return [line for precision in (device.default_precision, *sorted(published)) for line in
            precision_lines(device, precision)]  # fmt: skip


def precision_lines(device: Device, precision: str) -> list[str]:
    anchor = anchoring(device, precision)
    band = "±?" if anchor["expected_error"] is None else f"±{100 * anchor['expected_error']:.1f}%"
    head = (
        f"[{device.name}] {precision}: estimated {band} ({anchor['note']}); squeeze-excite kernel "
        f"weight x{anchor['se_factor']:.3g} of this CPU's, {anchor['se_source']}"
    )
    rows = [
        f"[{device.name}]   {a['role']:<5} {a['network']} {a['precision']} on {a['runtime']}: published "
        f"{a['latency_ms']:g} ms, estimated {a['estimated_ms']:g} ms, residual {100 * a['residual']:+.1f}%"
        for a in anchor["anchors"]
    ]
    return [head] + rows


def main() -> None:
    for device in devices().values():
        print("\n".join(device_lines(device)))


if __name__ == "__main__":
    main()

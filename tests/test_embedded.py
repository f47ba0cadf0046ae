"""The tables shipped inside the package: the default (EfficientNet-Lite0 space from ImageNet, CIFAR-10 at 96 px) and
`cifar10` (the 32x32 plan from scratch), found by name, each with its weights and calibration images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from specialize.api.hardware import space_of
from specialize.api.offline import export_space, export_weights
from specialize.errors import SpecializeError
from specialize.fileio import sha256_file
from specialize.space import get_space
from specialize.table import DEFAULT_TABLE, EMBEDDED_TABLES, load_table, resolve_table_path

ARCH_40M = "k5e6,skip,k5e6,skip,k7e6,skip,k3e4,k5e6,skip,k5e3,k5e6,k3e3,skip,skip,k5e6"  # the default's 40M pick


@pytest.mark.parametrize("name", sorted(EMBEDDED_TABLES))
def test_each_embedded_table_ships_its_weights_and_small_calibration_images(name):
    """What an export of the table reads without the data set: weights and calibration images that match the sha256
    the table records, the images at most ~2 MB (stored at the data's own size) and from its training split."""
    table = load_table(name)
    assert table.path == EMBEDDED_TABLES[name]
    assert sha256_file(table.weights_path()) == table.weights["sha256"]
    calibration = table.calibration_path()
    assert sha256_file(calibration) == table.calibration["sha256"] and calibration.stat().st_size <= 2_200_000
    with np.load(calibration, allow_pickle=False) as archive:
        assert archive["images"].shape[1:] == (table.calibration["resolution"],) * 2 + (3,)
    assert table.calibration["resolution"] <= table.space.resolution


def test_the_default_is_the_imagenet_started_table_and_cifar10_is_found_by_name(tmp_path, monkeypatch):
    default = load_table()
    assert default.path == DEFAULT_TABLE == EMBEDDED_TABLES["lite0-cifar10-96"]
    assert default.space.resolution == 96 and default.provenance["settings"]["init"] == "efficientnet-lite0"
    assert load_table("cifar10").space.fingerprint == get_space("cifar10").fingerprint
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cifar10").write_text("{}")  # a file of that name here is the user's, not the embedded table
    assert resolve_table_path("cifar10") == Path("cifar10")
    with pytest.raises(SpecializeError, match="cifar10"):
        load_table("cifar10")


def test_export_without_space_or_weights_takes_the_default_tables_space_and_weights():
    """The architecture the main command prints (copy-paste) exports with `specialize export --arch A -o m.onnx`."""
    space = export_space(None, None)
    assert space.fingerprint == load_table().space.fingerprint
    space.parse_arch(ARCH_40M)
    assert export_weights(space, None, untrained=False) == "lite0-cifar10-96"
    assert export_space("cifar10", None).fingerprint == get_space("cifar10").fingerprint
    assert export_weights(get_space("cifar10"), None, untrained=False) == "cifar10"
    assert export_space(None, "cifar10").fingerprint == get_space("cifar10").fingerprint  # the weights' own space
    assert export_space(default_space_name(), "default").fingerprint == space.fingerprint  # its name, with weights
    assert space_of("lite0-cifar10-96").fingerprint == space.fingerprint
    with pytest.raises(SpecializeError, match="unknown space 'nope'"):
        export_space("nope", "default")


def default_space_name() -> str:
    return load_table().space.name


def test_calibration_images_stored_small_are_resized_as_the_reader_resizes_files(tmp_path):
    """Batch norm recalibrates on the shipped 32x32 images resized to the export's input exactly as training's
    reader resized the files (Pillow bilinear, uint8), not by another filter."""
    from supernet.data import load_dataset, make_synthetic_folder, resized_as_read

    folder = make_synthetic_folder(tmp_path / "d", classes=2, train_per_class=4, test_per_class=1, size=32)
    native = load_dataset(folder, cache=False)
    read_at_96 = load_dataset(folder, image_size=96, cache=False)
    assert np.array_equal(resized_as_read(native.train_images, 96), read_at_96.train_images)
    assert resized_as_read(native.train_images, 32) is native.train_images


def test_spaces_lists_the_embedded_tables_and_their_spaces():
    """`specialize spaces` shows the default's space, which lives in its table and is no preset."""
    import json

    from typer.testing import CliRunner

    from cli.main import app

    listed = json.loads(CliRunner().invoke(app, ["spaces", "--json"]).stdout)["embedded_tables"]
    assert [(e["table"], e["default"]) for e in listed] == [("lite0-cifar10-96", True), ("cifar10", False)]
    assert listed[0]["space"] == load_table().space.name and listed[0]["resolution"] == 96
    assert listed[0]["macs_range"][1] == pytest.approx(82.0e6, rel=1e-3)
    text = CliRunner().invoke(app, ["spaces"]).stdout
    assert "embedded table lite0-cifar10-96 (the default)" in " ".join(text.split())


def test_publish_repacks_the_runs_own_calibration_images(deploy_run, synthetic_data, tmp_path):
    """`supernet.publish --data` re-reads the run's calibration images by index: the same images and labels as the
    calibration file training wrote, and the record names their stored size."""
    from supernet.publish import repack_calibration

    table = load_table(deploy_run / "table.json")
    record = repack_calibration(table, synthetic_data, tmp_path / "c.npz")
    with np.load(deploy_run / "calibration.npz") as written, np.load(tmp_path / "c.npz") as repacked:
        assert np.array_equal(written["images"], repacked["images"])
        assert np.array_equal(written["labels"], repacked["labels"])
    assert record["images"] == table.calibration["images"] and record["resolution"] == 16
    assert record["sha256"] == sha256_file(tmp_path / "c.npz")


def test_cost_takes_an_embedded_tables_name_as_its_space():
    """The default's printed architecture is priced with `cost --space lite0-cifar10-96` (presets only, before)."""
    import json

    from typer.testing import CliRunner

    from cli.main import app
    from specialize.cost import arch_cost

    result = CliRunner().invoke(app, ["cost", "--space", "lite0-cifar10-96", "--arch", ARCH_40M, "--json"])
    assert result.exit_code == 0, result.output
    expected = arch_cost(load_table().space.parse_arch(ARCH_40M))
    assert json.loads(result.stdout)["macs"] == expected["macs"] == pytest.approx(39.95e6, rel=1e-3)

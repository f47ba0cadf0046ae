"""Training on a user's own images: classes from the data, other sizes resized, grayscale converted, and one
clear line for data that cannot train (issue 9, item 4). Also the table's tie-break towards cheaper blocks."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from PIL import Image

from specialize.cost import cost_arrays
from specialize.errors import SpecializeError
from specialize.space import get_space
from specialize.table import load_table, space_option
from supernet.data import load_dataset, make_synthetic_folder
from supernet.export import export_subnet
from supernet.onnx_graph import read_metadata
from supernet.train import TrainConfig, pick_best, train, validation_per_class

TINY = dict(
    width=0.25,
    resolution=16,
    epochs=1,
    val_per_class=2,
    finetune_epochs=0.2,
    batch_size=8,
    calib_images=8,
    spread_samples=3,
    seed=0,
)


def test_two_class_folder_trains_a_two_class_space(tmp_path):
    data = make_synthetic_folder(tmp_path / "two", classes=2, train_per_class=10, test_per_class=3, size=16)
    for split in ("train", "test"):
        for i, name in enumerate(("cats", "dogs")):
            (data / split / f"class{i}").rename(data / split / name)
    table = train(TrainConfig(space="cifar10", data=str(data), **TINY), tmp_path / "run")
    assert table.space.num_classes == 2 and table.space.class_names == ("cats", "dogs")
    assert table.space.name == "cifar10-2class" and table.fingerprint != get_space("cifar10").fingerprint
    out = export_subnet(
        table.space.name, table.best_arch, tmp_path / "m.onnx", weights=str(tmp_path / "run" / "table.json")
    )
    meta = read_metadata(onnx.load(str(out.onnx_path)))
    assert json.loads(meta["specialize.class_names"]) == ["cats", "dogs"]
    assert out.measured_accuracy is not None  # the table's training data exists here, so its test split is measured
    # the space exists only in its table: `profile --space TABLE.json` profiles it, and refusals name the table;
    # the shipped cifar10 profile serves it, its head priced for 2 classes (the body is the same network)
    from specialize.api.hardware import resolve_profile, space_of

    assert space_of(str(tmp_path / "run" / "table.json")).fingerprint == table.fingerprint
    assert space_option(table.space) == "TABLE.json" and space_option(get_space("cifar10")) == "cifar10"
    assert space_option(load_table("default").space) == "lite0-cifar10-96"  # an embedded table's own space
    served = resolve_profile("this-cpu", table.space)
    assert (
        served.space.fingerprint == table.fingerprint
        and "head priced for 2 classes" in served.measurement["head_repriced"]
    )


def test_one_class_folder_is_one_clear_error(tmp_path):
    data = make_synthetic_folder(tmp_path / "one", classes=1, train_per_class=4, test_per_class=2, size=16)
    with pytest.raises(SpecializeError, match="at least 2 classes"):
        load_dataset(data)


def test_grayscale_and_other_sizes_are_converted_and_said(tmp_path):
    data = make_synthetic_folder(tmp_path / "mixed", classes=2, train_per_class=4, test_per_class=2, size=16)
    Image.fromarray(np.full((24, 24), 128, np.uint8), mode="L").save(data / "train" / "class0" / "gray.png")
    dataset = load_dataset(data, image_size=16)
    assert dataset.train_images.shape[1:] == (16, 16, 3)
    notes = " ".join(dataset.notes)
    assert "converted from L to RGB" in notes and "resized to 16x16" in notes


def test_corrupt_image_names_the_file(tmp_path):
    data = make_synthetic_folder(tmp_path / "bad", classes=2, train_per_class=4, test_per_class=2, size=16)
    (data / "train" / "class1" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SpecializeError, match="broken.png"):
        load_dataset(data)


def test_ties_go_to_the_cheaper_candidate():
    macs = cost_arrays(get_space("cifar10")).macs[0]
    row = [0.5] * len(macs)
    assert pick_best(row, macs) == int(np.argmin(macs))
    row[int(np.argmax(macs))] = 0.6
    assert pick_best(row, macs) == int(np.argmax(macs))


def test_validation_split_defaults_to_2500_images():
    labels = np.repeat(np.arange(10), 5000)
    assert validation_per_class(labels, None) * 10 == 2500
    assert validation_per_class(np.repeat(np.arange(2), 20), None) == 4  # a fifth of the smallest class

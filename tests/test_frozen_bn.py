"""`batch_norm = "frozen"`: pretrained statistics kept through training and every recalibration, except in the last
searchable layer and the head (supernet/bn.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from specialize.errors import SpecializeError
from specialize.space import SearchSpace, get_space
from supernet.bn import FrozenBatchNorm2d, adapted_norms, recalibrate_bn
from supernet.elastic import Supernet


def _space(batch_norm: str = "frozen") -> SearchSpace:
    return replace(get_space("cifar10").scaled(0.25, 16), batch_norm=batch_norm)


def _norms(net: torch.nn.Module) -> tuple[list, list]:
    """(frozen, adapted) batch norm layers of `net`."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    return [m for m in norms if isinstance(m, FrozenBatchNorm2d)], [
        m for m in norms if not isinstance(m, FrozenBatchNorm2d)
    ]


def _stats(norms: list) -> list[torch.Tensor]:
    return [t.clone() for m in norms for t in (m.running_mean, m.running_var)]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_all_but_the_last_layer_and_the_head_are_frozen_in_the_supernet_and_its_extracts() -> None:
    net = Supernet(_space())
    frozen, adapted = _norms(net)
    assert adapted == adapted_norms(net) and len(adapted) == 4  # the last layer's expand, depthwise, project; head
    assert len(frozen) > 10
    static = net.extract(net.space.largest_arch())
    assert len(_norms(static)[0]) == len(frozen) and len(_norms(static)[1]) == 4
    assert _norms(Supernet(_space("batch")))[0] == []


def test_training_leaves_frozen_statistics_alone_and_trains_their_scale() -> None:
    torch.manual_seed(0)
    net = Supernet(_space()).train()
    frozen, adapted = _norms(net)
    frozen_before, adapted_before = _stats(frozen), _stats(adapted)
    scale_before = [m.weight.detach().clone() for m in frozen]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    torch.nn.functional.cross_entropy(net(x, net.space.largest_arch()), y).backward()
    opt.step()
    assert _same(_stats(frozen), frozen_before)
    assert not _same(_stats(adapted), adapted_before)
    assert not all(torch.equal(m.weight, s) for m, s in zip(frozen, scale_before))


def test_recalibration_re_estimates_only_the_adapted_layers() -> None:
    static = Supernet(_space()).extract(_space().largest_arch())
    frozen, adapted = _norms(static)
    frozen_before, adapted_before = _stats(frozen), _stats(adapted)
    recalibrate_bn(static, [torch.rand(4, 3, 16, 16)])
    assert _same(_stats(frozen), frozen_before) and not _same(_stats(adapted), adapted_before)
    assert not static.training


def test_the_setting_travels_in_the_space_and_leaves_the_fingerprint() -> None:
    frozen, batch = _space(), _space("batch")
    assert SearchSpace.from_dict(frozen.to_dict()).batch_norm == "frozen"
    assert "batch_norm" not in batch.to_dict()  # older files and fingerprints stay as they were
    assert frozen.fingerprint == batch.fingerprint  # deployed, batch norm folds either way: same profiles
    with pytest.raises(ValueError, match="batch_norm must be one of batch, frozen"):
        SearchSpace.from_dict({**batch.to_dict(), "batch_norm": "sometimes"})


def test_frozen_needs_a_pretrained_start(tmp_path) -> None:
    from supernet.train_config import TrainConfig

    with pytest.raises(SpecializeError, match="--batch-norm 'frozen' is out of range: .*needs --init"):
        TrainConfig(space="cifar10", data="d", batch_norm="frozen").check()
    with pytest.raises(SpecializeError, match="--batch-norm 'sometimes' is out of range: batch or frozen"):
        TrainConfig(space="cifar10", data="d", init="efficientnet-lite0", batch_norm="sometimes").check()
    result = CliRunner().invoke(
        app,
        ["train", "--space", "cifar10", "--data", str(tmp_path), "-o", str(tmp_path / "o"), "--batch-norm", "frozen"],
    )
    assert result.exit_code == 2 and "needs --init" in result.output


def test_table_show_says_batch_norm_was_frozen(tiny_table, tmp_path) -> None:
    import json

    data = json.loads(tiny_table.read_text())
    data["space"]["batch_norm"] = "frozen"  # not in the fingerprint, so the table still reads as the same space
    path = tmp_path / "table.json"
    path.write_text(json.dumps(data))
    shown = CliRunner().invoke(app, ["table", "show", "--table", str(path)], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "batch norm frozen" in " ".join(shown.output.split())
    plain = CliRunner().invoke(app, ["table", "show", "--table", str(tiny_table)], env={"COLUMNS": "250"})
    assert "batch norm frozen" not in " ".join(plain.output.split())


def test_a_checkpoint_from_before_the_setting_resumes_with_batch_statistics() -> None:
    """Its weights were trained under batch statistics: resuming it frozen would mix two trainings in one table."""
    from supernet.train_config import TrainConfig

    asked = TrainConfig(space="cifar10", data="d", init="efficientnet-lite0", batch_norm="frozen")
    assert asked.as_checkpointed({"space": "cifar10", "data": "d"}).batch_norm == "batch"
    assert asked.as_checkpointed({"space": "cifar10", "batch_norm": "frozen"}).batch_norm == "frozen"

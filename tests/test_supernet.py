"""Supernet: extract equals the supernet's own forward, any architecture trains without reallocation,
BN recalibration, and the weights checkpoint round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from specialize.cost import arch_cost
from specialize.errors import SpecializeError
from specialize.sampling import uniform_architectures
from specialize.space import Architecture, SearchSpace, get_space
from supernet.bn import recalibrate_bn
from supernet.checkpoint import load_supernet, save_supernet_weights
from supernet.elastic import Supernet
from supernet.static import build_static


def random_arch(space: SearchSpace, rng: random.Random) -> Architecture:
    [arch] = uniform_architectures(space, np.random.default_rng(rng.randrange(2**32)), 1)
    return arch


@torch.no_grad()
def randomize_bn(net: Supernet, seed: int = 0) -> Supernet:
    """Realistic, then randomly perturbed, BN statistics and affine parameters (slicing mistakes would show).

    Statistics come from one train-mode batch of the largest architecture (momentum 1), so
    activations stay in range and the outputs depend on the input.
    """
    generator = torch.Generator().manual_seed(seed)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = 1.0
    space = net.space
    net.train()(torch.rand(16, 3, space.resolution, space.resolution, generator=generator), space.largest_arch())
    for m in bns:
        n = m.num_features
        m.momentum = 0.1
        m.running_mean.mul_(torch.rand(n, generator=generator) * 0.4 + 0.8)
        m.running_var.mul_(torch.rand(n, generator=generator) * 0.4 + 0.8)
        m.weight.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
        m.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def cifar_net() -> Supernet:
    torch.manual_seed(0)
    return randomize_bn(Supernet(get_space("cifar10"))).eval()


def test_extract_parity_cifar10(cifar_net):
    space, rng = cifar_net.space, random.Random(0)
    archs = [space.largest_arch(), space.smallest_arch()] + [random_arch(space, rng) for _ in range(8)]
    x = torch.rand(2, 3, space.resolution, space.resolution)
    for arch in archs:
        with torch.no_grad():
            expected, got = cifar_net(x, arch), cifar_net.extract(arch).eval()(x)
        assert (expected - got).abs().max().item() <= 1e-5, str(arch)
        assert expected.std(0).max() > 1e-3  # outputs depend on the input: the check is not vacuous


def test_extract_parity_ponas():
    space = get_space("ponas-imagenet")
    torch.manual_seed(1)
    net = randomize_bn(Supernet(space)).eval()
    arch = random_arch(space, random.Random(3))
    x = torch.rand(2, 3, space.resolution, space.resolution)
    with torch.no_grad():
        expected = net(x, arch)
        assert (expected - net.extract(arch).eval()(x)).abs().max().item() <= 1e-5
    assert expected.std(0).max() > 1e-3


def test_extract_is_a_copy_with_the_static_shapes(cifar_net):
    arch = cifar_net.space.smallest_arch()
    static = cifar_net.extract(arch)
    fresh = build_static(cifar_net.space, arch)
    assert [p.shape for p in static.parameters()] == [p.shape for p in fresh.parameters()]
    assert sum(p.numel() for p in static.parameters()) == arch_cost(arch)["params"]
    before = cifar_net.blocks[0].expand_conv.detach().clone()
    with torch.no_grad():
        for p in static.parameters():
            p.add_(1.0)
    assert torch.equal(cifar_net.blocks[0].expand_conv, before)
    assert static.arch_string == str(arch)


def test_any_arch_trains_without_reallocating_parameters():
    space = get_space("cifar10")
    torch.manual_seed(0)
    net = Supernet(space).train()
    pointers = {name: p.data_ptr() for name, p in net.named_parameters()}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    rng = random.Random(1)
    x, y = torch.rand(4, 3, space.resolution, space.resolution), torch.randint(0, space.num_classes, (4,))
    for arch in [space.smallest_arch(), space.largest_arch()] + [random_arch(space, rng) for _ in range(3)]:
        optimizer.zero_grad(set_to_none=False)
        loss = nn.functional.cross_entropy(net(x, arch), y)
        loss.backward()
        assert torch.isfinite(loss)
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters())
        optimizer.step()
    assert pointers == {name: p.data_ptr() for name, p in net.named_parameters()}


def test_unused_slices_get_no_gradient():
    space = get_space("cifar10")
    net = Supernet(space).train()
    small = space.smallest_arch()  # kernel 3, expansion 3, no SE
    x = torch.rand(2, 3, space.resolution, space.resolution)
    net(x, small).sum().backward()
    block = net.blocks[0]
    mid, off = block.spec.in_channels * 3, (block.max_kernel - 3) // 2
    assert block.expand_conv.grad[mid:].abs().sum() == 0
    assert block.expand_conv.grad[:mid].abs().sum() > 0
    dw = block.dw_conv.grad[:mid].clone()
    dw[:, :, off : off + 3, off : off + 3] = 0
    assert dw.abs().sum() == 0
    assert block.se_reduce.weight.grad is None or block.se_reduce.weight.grad.abs().sum() == 0


def test_wrong_length_arch_is_rejected(cifar_net):
    with pytest.raises(ValueError):
        cifar_net(torch.rand(1, 3, 32, 32), cifar_net.space.largest_arch().candidates[:3])


def test_recalibrate_bn_on_tensor_list(cifar_net):
    static = cifar_net.extract(cifar_net.space.smallest_arch())
    generator = torch.Generator().manual_seed(0)
    batches = [torch.rand(10, 3, 32, 32, generator=generator) for _ in range(3)]
    recalibrate_bn(static, batches)
    assert not static.training
    first_conv, first_bn = static.stem[0][0], static.stem[0][1]
    with torch.no_grad():
        h = first_conv(static.normalize(torch.cat(batches)))
    assert torch.allclose(first_bn.running_mean, h.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(first_bn.running_var, h.var((0, 2, 3)), rtol=1e-3)  # unbiased per batch, averaged
    assert first_bn.momentum == 0.1  # restored
    before = [b.running_mean.clone() for b in static.modules() if isinstance(b, nn.BatchNorm2d)]
    recalibrate_bn(static, batches)
    after = [b.running_mean for b in static.modules() if isinstance(b, nn.BatchNorm2d)]
    assert all(torch.allclose(a, b) for a, b in zip(before, after))  # deterministic: reset, then re-estimated


def test_checkpoint_round_trip(tmp_path, cifar_net):
    path = tmp_path / "w.pt"
    save_supernet_weights(path, cifar_net)
    loaded = load_supernet(path)
    assert loaded.space == cifar_net.space
    arch = cifar_net.space.largest_arch()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x, arch), cifar_net(x, arch))
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]


def test_checkpoint_bad_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SpecializeError, match="bad.pt"):
        load_supernet(bad)
    with pytest.raises(SpecializeError, match="does not exist"):
        load_supernet(tmp_path / "missing.pt")

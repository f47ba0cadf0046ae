"""The declared search space: candidates, architecture strings, fingerprints, and clear errors on bad input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specialize.errors import SpecializeError
from specialize.space import SPACES, Candidate, SearchSpace, get_space

PRESETS = ("cifar10", "ponas-imagenet", "ponas-table1")
CANDIDATES = (
    "k3e3",
    "k3e3se",
    "k3e6",
    "k3e6se",
    "k5e3",
    "k5e3se",
    "k5e6",
    "k5e6se",
    "k7e3",
    "k7e3se",
    "k7e6",
    "k7e6se",
)
PONAS_A = (
    "k5e6,k5e3,k7e3se,k5e3se,k5e3,k7e3,k7e6se,k5e3se,k5e3se,k5e3se,"
    "k5e3,k7e3,k7e3,k7e3se,k7e6se,k7e3se,k5e3,k7e3se,k5e6se"
)


def test_presets_are_registered():
    assert set(PRESETS) <= set(SPACES)


@pytest.mark.parametrize("name", PRESETS)
def test_candidate_names(name):
    space = get_space(name)
    assert space.candidate_names == CANDIDATES
    assert space.num_candidates == 12
    assert space.largest.name == "k7e6se"
    assert all(Candidate.parse(n).name == n for n in CANDIDATES)


def test_layer_counts_and_geometry():
    assert get_space("cifar10").num_layers == 12
    assert get_space("ponas-imagenet").num_layers == 19
    assert get_space("ponas-table1").num_layers == 19
    assert get_space("ponas-imagenet").final_size == 7
    assert get_space("cifar10").final_size == 4


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(PRESETS), st.data())
def test_arch_string_round_trip(name, data):
    space = get_space(name)
    indices = data.draw(
        st.lists(st.integers(0, space.num_candidates - 1), min_size=space.num_layers, max_size=space.num_layers)
    )
    arch = space.arch_from_indices(indices)
    text = str(arch)
    assert space.parse_arch(text) == arch
    assert space.parse_arch(text.replace(",", " , ")).indices == tuple(indices)
    assert len(text.split(",")) == space.num_layers


def test_ponas_a_parses():
    assert str(get_space("ponas-imagenet").parse_arch(PONAS_A)) == PONAS_A


def test_fingerprints_differ_between_presets_and_are_stable():
    prints = {name: get_space(name).fingerprint for name in PRESETS}
    assert len(set(prints.values())) == len(PRESETS)
    assert all(get_space(name).fingerprint == fp for name, fp in prints.items())


def test_proxy_space_differs_and_records_its_base():
    space = get_space("cifar10")
    proxy = space.scaled(0.5)
    assert proxy.fingerprint != space.fingerprint
    assert proxy.base_space == "cifar10" and proxy.width_multiplier == 0.5
    assert proxy.layers[-1].out_channels < space.layers[-1].out_channels
    assert space.scaled(1.0) is space


def test_dict_round_trip_keeps_fingerprint():
    for name in PRESETS:
        space = get_space(name)
        assert SearchSpace.from_dict(space.to_dict()) == space


def _assert_names_valid_choices(message: str) -> None:
    assert "k3e3" in message and "k7e6se" in message


@pytest.mark.parametrize("text", ["k3e3,k3e3", "", ",".join(["k3e3"] * 13)])
def test_wrong_length_names_layers_and_choices(text):
    with pytest.raises(SpecializeError) as err:
        get_space("cifar10").parse_arch(text)
    assert "12 searchable layers" in str(err.value)
    _assert_names_valid_choices(str(err.value))


def test_unknown_candidate_names_valid_choices():
    with pytest.raises(SpecializeError) as err:
        get_space("cifar10").parse_arch(",".join(["k3e3"] * 11 + ["k9e3"]))
    assert "k9e3" in str(err.value)
    _assert_names_valid_choices(str(err.value))


@pytest.mark.parametrize("bad", ["k3x3", "e3k3", "k3e3SE!", "3x3"])
def test_malformed_candidate_is_clear(bad):
    with pytest.raises(SpecializeError) as err:
        get_space("cifar10").parse_arch(",".join(["k3e3"] * 11 + [bad]))
    assert bad in str(err.value) and "k<kernel>e<expansion>" in str(err.value)


def test_unknown_space_names_known_ones():
    with pytest.raises(SpecializeError) as err:
        get_space("imagenet")
    assert all(name in str(err.value) for name in PRESETS)


@pytest.mark.parametrize("indices", [[0] * 11, [0] * 11 + [12], [-1] + [0] * 11])
def test_bad_indices(indices):
    with pytest.raises(SpecializeError):
        get_space("cifar10").arch_from_indices(indices)


def test_every_registry_adds_once_and_refuses_unknown_names_in_one_line():
    """The one generic registry behind spaces, devices, runtimes, strategies, penalties, rerankers and metrics."""
    from hw_profiles.devices import devices
    from hw_profiles.runtime import RUNTIMES
    from specialize.registry import Registry
    from specialize.search.constraints import METRICS
    from specialize.search.penalty import PENALTIES
    from specialize.search.registry import load_builtins
    from specialize.search.rerank import RERANKERS
    from specialize.space import SPACES

    for registry in (SPACES, devices(), RUNTIMES, load_builtins(), PENALTIES, RERANKERS, METRICS):
        assert isinstance(registry, Registry) and len(registry) > 0
        with pytest.raises(SpecializeError, match=rf"^unknown {registry.kind} 'nope'; known {registry.plural}: "):
            registry.lookup("nope")
        name = next(iter(registry))
        with pytest.raises(ValueError, match="registered twice"):
            registry.add(name, object())


@pytest.mark.parametrize(
    "edit,said",
    [
        (lambda d: d.update(kernels=[3, 4]), "kernels must be odd"),
        (lambda d: d.update(kernels=[3, 3, 5]), "kernels repeat a value"),
        (lambda d: d.update(expansions=[3, 6, 3]), "expansions repeat a value"),
        (lambda d: d["layers"][2].update(in_channels=d["layers"][2]["in_channels"] + 1), "in_channels must be"),
        (lambda d: d.update(class_names=["a", "b"]), "class_names holds 2 names for 10 classes"),
        (lambda d: d.update(kernels=list(range(1, 4001, 2))), "too large: candidates 8000 (at most 256)"),
        (lambda d: d.update(head_channels=100_000), "too large: channels 100000 (at most 8192)"),
        (lambda d: d.update(resolution=4096), "too large: resolution 4096 (at most 1024)"),
    ],
)
def test_a_space_from_a_file_must_be_buildable_and_bounded(edit, said):
    import copy

    from specialize.space import SearchSpace

    data = copy.deepcopy(get_space("cifar10").to_dict())
    edit(data)
    with pytest.raises(ValueError, match=re.escape(said)):
        SearchSpace.from_dict(data)

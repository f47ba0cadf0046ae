"""EcoNAS reduced settings: notation, Table 1's values, and a zoo ranked under each (issue 10)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specialize.errors import SpecializeError
from specialize.space import get_space
from supernet.data import load_dataset
from supernet.proxy_check import Setting, proxy_check, rho_interval


def test_resolutions_follow_econas_table_1():
    assert [Setting(0, r, 0, 1).resolution(32) for r in range(5)] == [32, 24, 16, 12, 8]
    assert Setting(2, 0, 0, 1).width() == pytest.approx(0.5) and Setting(0, 0, 3, 1).sample_ratio() == 0.125


@given(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4), st.integers(1, 999))
def test_setting_names_round_trip(c, r, s, e):
    setting = Setting(c, r, s, e)
    assert Setting.parse(setting.name) == setting


@pytest.mark.parametrize("text", ["c5r0s0e1", "c0r0s0e0", "c0r0s0", "x", "c0r0s0e1 extra"])
def test_malformed_settings_are_refused(text):
    with pytest.raises(SpecializeError, match="EcoNAS notation"):
        Setting.parse(text)


def test_rho_interval_is_tight_for_a_clear_ranking_and_wide_for_a_small_noisy_one():
    ranks = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert rho_interval(ranks, ranks) == pytest.approx((1.0, 1.0))
    assert rho_interval(ranks, ranks[::-1]) == pytest.approx((-1.0, -1.0))
    low, high = rho_interval(ranks, [0.3, 0.1, 0.4, 0.2, 0.7, 0.5, 0.8, 0.6])  # rho 0.76 over 8
    assert low < 0.5 < 0.76 < high <= 1.0
    assert rho_interval([0.5] * 8, ranks) is None


def test_reduced_settings_cost_less_and_are_ranked(synthetic_data):
    data = load_dataset(synthetic_data, image_size=16)
    space = get_space("cifar10").scaled(0.25, 16)
    results = proxy_check(space, data, 3, Setting.parse("c0r0s0e1"), [Setting.parse("c2r2s1e1")], val_per_class=2)
    reference, reduced = results
    assert reference.cost_ratio == 1 and reference.spearman_rho is None and len(reference.accuracies) == 3
    assert reduced.cost_ratio < 0.25 and reduced.resolution == 8


def test_a_killed_run_resumes_from_its_checkpoint(synthetic_data, tmp_path, monkeypatch):
    """The resumed run trains only the architectures the killed one had not finished, and ends where an
    uninterrupted run does."""
    import supernet.proxy_check as pc

    data = load_dataset(synthetic_data, image_size=16)
    space = get_space("cifar10").scaled(0.25, 16)
    ref, reduced = Setting.parse("c0r0s0e1"), [Setting.parse("c2r2s1e1")]
    whole = proxy_check(space, data, 3, ref, reduced, val_per_class=2)
    checkpoint, trained = tmp_path / "check.json", []

    def kill_after_four(text):
        trained.append(text)
        if len(trained) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        proxy_check(space, data, 3, ref, reduced, val_per_class=2, progress=kill_after_four, checkpoint=checkpoint)
    real_train, calls = pc.train_and_score, []
    monkeypatch.setattr(pc, "train_and_score", lambda *a, **k: calls.append(a[1]) or real_train(*a, **k))
    resumed = proxy_check(space, data, 3, ref, reduced, val_per_class=2, checkpoint=checkpoint)
    assert len(calls) == 2
    assert [r.accuracies for r in resumed] == [r.accuracies for r in whole]
    assert [r.spearman_rho for r in resumed] == [r.spearman_rho for r in whole]


def test_a_checkpoint_of_another_run_is_refused(synthetic_data, tmp_path):
    data = load_dataset(synthetic_data, image_size=16)
    space = get_space("cifar10").scaled(0.25, 16)
    checkpoint = tmp_path / "check.json"
    proxy_check(space, data, 3, Setting.parse("c0r0s0e1"), [], val_per_class=2, checkpoint=checkpoint)
    with pytest.raises(SpecializeError, match=r"check.json was written by a different run \(field 'seed'"):
        proxy_check(space, data, 3, Setting.parse("c0r0s0e1"), [], seed=1, val_per_class=2, checkpoint=checkpoint)
    checkpoint.write_text('{"key": {}, "accuracies": {"c0r0s0e1": ["x"]}}')
    with pytest.raises(SpecializeError, match="'accuracies' missing or malformed"):
        proxy_check(space, data, 3, Setting.parse("c0r0s0e1"), [], val_per_class=2, checkpoint=checkpoint)


@pytest.mark.parametrize(
    "content",
    [
        '{"key": {}, "accuracies": {"c0r0s0e1": [5.0]}}',  # reported as a result once
        '{"key": {}, "accuracies": {"c0r0s0e1": [-3.0]}}',
        '{"key": {}, "accuracies": {"c0r0s0e1": [NaN]}}',
        '{"key": [], "accuracies": {"c0r0s0e1": [0.5]}}',
        '{"accuracies": {"c0r0s0e1": [0.5]}}',
        "[1, 2]",
        '{"key": {}, "accuracies": []}',
    ],
)
def test_an_edited_checkpoint_is_refused_naming_the_field(tmp_path, content):
    from supernet.proxy_check import load_checkpoint

    checkpoint = tmp_path / "check.json"
    checkpoint.write_text(content)
    with pytest.raises(SpecializeError, match="'accuracies' missing or malformed"):
        load_checkpoint(checkpoint, {"zoo": []})

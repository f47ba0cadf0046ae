"""The table score -> accuracy prediction: a monotone curve with an out-of-sample band, because accuracy
saturates towards the best networks and a straight line then predicts too high exactly where the search picks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from cli.main import app
from specialize.errors import SpecializeError
from specialize.table import fit_accuracy, isotonic_knots, load_table

runner = CliRunner()


def saturating(n: int, seed: int = 0) -> list[dict]:
    """Sub-networks whose accuracy rises steeply with the score, then flattens: the shape the Lite0 table has."""
    rng = np.random.default_rng(seed)
    score = np.sort(rng.uniform(-0.3, 0.0, n))
    accuracy = 0.88 - 5.0 * score**2 - 0.3 * np.clip(-score - 0.1, 0, None) + rng.normal(0, 0.005, n)
    return [{"score": float(s), "accuracy": float(np.clip(a, 0, 1))} for s, a in zip(score, accuracy)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-1, 0), st.floats(0, 1)), min_size=1, max_size=40))
def test_knots_are_monotone_and_inside_the_data(points):
    score, accuracy = (np.array(v, dtype=float) for v in zip(*points))
    knot_score, knot_accuracy = isotonic_knots(score, accuracy)
    assert (np.diff(knot_score) > 0).all() and (np.diff(knot_accuracy) >= 0).all()
    assert knot_accuracy.min() >= accuracy.min() - 1e-12 and knot_accuracy.max() <= accuracy.max() + 1e-12
    assert knot_score.min() >= score.min() - 1e-12 and knot_score.max() <= score.max() + 1e-12


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=30, unique=True))
def test_rising_points_are_kept_and_falling_ones_pooled_to_their_mean(values):
    accuracy = np.sort(np.array(values))
    score = np.linspace(-0.3, 0.0, len(accuracy))
    knot_score, knot_accuracy = isotonic_knots(score, accuracy)
    np.testing.assert_allclose(knot_score, score)
    np.testing.assert_allclose(knot_accuracy, accuracy)
    knot_score, knot_accuracy = isotonic_knots(score, accuracy[::-1])
    assert knot_accuracy == pytest.approx([accuracy.mean()]) and knot_score == pytest.approx([score.mean()])


def test_the_curve_is_not_biased_high_at_the_top_where_the_line_is():
    fit = fit_accuracy(saturating(40), images=2500)
    truth_at_top = 0.88
    line_at_top = fit["intercept"]
    curve_at_top = float(np.interp(0.0, fit["knots"]["score"], fit["knots"]["accuracy"]))
    assert line_at_top - truth_at_top > 0.05  # the line overshoots the saturated top
    assert abs(curve_at_top - truth_at_top) <= fit["band"]  # the curve is right within its own band


def test_the_band_is_out_of_sample_and_holds_for_unseen_networks():
    fit = fit_accuracy(saturating(40, seed=1), images=2500)
    unseen = saturating(200, seed=2)
    predicted = np.interp([s["score"] for s in unseen], fit["knots"]["score"], fit["knots"]["accuracy"])
    inside = np.abs(np.array([s["accuracy"] for s in unseen]) - predicted) <= fit["band"]
    assert inside.mean() >= 0.9
    in_sample = np.array([s["accuracy"] for s in saturating(40, seed=1)]) - np.interp(
        [s["score"] for s in saturating(40, seed=1)], fit["knots"]["score"], fit["knots"]["accuracy"]
    )
    assert fit["residual_std"] > np.sqrt(np.mean(in_sample**2))  # leave-one-out is wider than in-sample


def _copy_run(deploy_run, tmp_path):
    for name in ("table.json", "weights.pt", "calibration.npz"):
        if (deploy_run / name).exists():
            shutil.copy(deploy_run / name, tmp_path / name)
    return tmp_path / "table.json"


def test_predictions_read_the_knots(deploy_run, tmp_path):
    path = _copy_run(deploy_run, tmp_path)
    data = json.loads(path.read_text())
    data["results"]["accuracy_fit"] = {
        **data["results"]["accuracy_fit"],
        "knots": {"score": [-0.2, -0.1, 0.0], "accuracy": [0.3, 0.6, 0.7]},
    }
    path.write_text(json.dumps(data))
    table = load_table(path)
    assert table.predict(-0.05)[0] == pytest.approx(0.65)
    assert table.predict(-5.0)[0] == pytest.approx(0.3)  # flat beyond the measured range
    assert table.predict(0.0)[0] == pytest.approx(0.7)


@pytest.mark.parametrize(
    "knots",
    [
        {"score": [0.0, -0.1], "accuracy": [0.5, 0.6]},  # scores not increasing
        {"score": [-0.1, 0.0], "accuracy": [0.6, 0.5]},  # accuracy falling
        {"score": [-0.1, 0.0], "accuracy": [0.6, 1.5]},  # out of [0, 1]
        {"score": [-0.1], "accuracy": [0.6, 0.7]},  # lengths differ
        {"score": [], "accuracy": []},
        {"score": [-0.1, "x"], "accuracy": [0.6, 0.7]},
        {"score": [-(10**400), 0.0], "accuracy": [0.6, 0.7]},
        [1, 2],
    ],
)
def test_a_damaged_fit_is_refused_naming_the_field(deploy_run, tmp_path, knots):
    path = _copy_run(deploy_run, tmp_path)
    data = json.loads(path.read_text())
    data["results"]["accuracy_fit"]["knots"] = knots
    path.write_text(json.dumps(data))
    with pytest.raises(SpecializeError, match="results.accuracy_fit.knots"):
        load_table(path)


def test_table_refit_rewrites_an_old_line_fit(deploy_run, tmp_path):
    path = _copy_run(deploy_run, tmp_path)
    data = json.loads(path.read_text())
    fit = data["results"]["accuracy_fit"]
    data["results"]["accuracy_fit"] = {k: fit[k] for k in ("intercept", "slope", "residual_std", "band", "samples")}
    data["results"]["accuracy_fit"].update(split="validation", images=fit["images"])
    path.write_text(json.dumps(data))
    done = runner.invoke(app, ["table", "refit", "--table", str(path)])
    assert done.exit_code == 0, done.output
    assert "was line" in done.output and "now isotonic" in done.output
    refit = load_table(path).accuracy_fit
    assert refit["method"] == "isotonic" and refit["knots"]["score"] and refit["provenance"]["command"]
    assert refit == {**fit_accuracy(data["results"]["spread"], fit["images"]), "provenance": refit["provenance"]}


def test_table_refit_refuses_a_table_without_measured_networks(deploy_run, tmp_path):
    path = _copy_run(deploy_run, tmp_path)
    data = json.loads(path.read_text())
    data["results"]["spread"] = data["results"]["spread"][:2]
    path.write_text(json.dumps(data))
    done = runner.invoke(app, ["table", "refit", "--table", str(path)])
    assert done.exit_code == 2 and "results.spread" in done.output


def test_pick_calibration_fits_the_search_answers_measured_on_the_fit_split(deploy_run, synthetic_data, tmp_path):
    """`table refit --picks`: each pick is the search's answer at its MACs ceiling, measured as the offline
    evaluator measures on the run's fit split; predictions then read a curve through them."""
    from specialize.api import specialize
    from specialize.cost import space_ranges
    from supernet.fitness import supernet_fitness

    path = _copy_run(deploy_run, tmp_path)
    done = runner.invoke(app, ["table", "refit", "--table", str(path), "--picks", "12", "--data", str(synthetic_data)])
    assert done.exit_code == 0, done.output
    table = load_table(path)
    fit = table.pick_fit
    assert fit["split"] == "fit" and fit["images"] == 10 and fit["samples"] == len(fit["picks"]) >= 3
    assert "search answers at 12 MACs ceilings (fit split, 10 images)" in " ".join(done.output.split())
    fitness = supernet_fitness(table, synthetic_data, split="fit")
    ceilings = [pick["max_flops"] for pick in fit["picks"]]
    assert ceilings == sorted(ceilings) and len(set(ceilings)) == len(ceilings)
    low, high = space_ranges(table.space)["macs"]
    assert ceilings[0] == low and fit["picks"][-1]["arch"] == specialize(None, table=path, max_flops=high).arch
    for pick in fit["picks"]:
        answer = specialize(None, table=path, max_flops=pick["max_flops"])
        assert answer.arch == pick["arch"] and answer.accuracy_loss == pytest.approx(pick["score"])
        genes = tuple(table.space.candidates.index(c) for c in table.space.parse_arch(pick["arch"]).candidates)
        assert pick["accuracy"] == fitness.accuracy(genes, fitness.images)
        assert pick["spread_fit"] == pytest.approx(table.predict(pick["score"], fit=table.accuracy_fit)[0])
    knots = fit["knots"]
    assert table.predict(knots["score"][0])[0] == pytest.approx(knots["accuracy"][0])
    refitted = fit_accuracy(fit["picks"], fit["images"], "fit", spans_answers=True)
    assert {k: fit[k] for k in refitted} == refitted  # the band over the interior answers
    assert table.prediction_fit is table.pick_fit
    shown = " ".join(runner.invoke(app, ["table", "show", "--table", str(path)]).output.split())
    assert f"fit over {fit['samples']} search answers (fit split, 10 images), band ±{100 * fit['band']:.2f}" in shown
    shown_json = json.loads(runner.invoke(app, ["table", "show", "--table", str(path), "--json"]).output)
    assert shown_json["prediction_fit"]["samples"] == fit["samples"] != shown_json["random_subnetwork_fit"]["samples"]


def test_search_answers_are_predicted_from_the_pick_fit_where_the_table_has_one(deploy_run, tmp_path):
    from specialize.api import specialize

    path = _copy_run(deploy_run, tmp_path)
    data = json.loads(path.read_text())
    spread_fit = data["results"]["accuracy_fit"]
    data["results"]["pick_fit"] = {
        **spread_fit,
        "knots": {"score": [-10.0, 0.0], "accuracy": [0.1, 0.2]},
        "samples": 7,
        "picks": [],
    }
    path.write_text(json.dumps(data))
    answer = specialize(None, table=path, max_flops=1e12)
    assert answer.predicted_accuracy == pytest.approx(np.interp(answer.accuracy_loss, [-10.0, 0.0], [0.1, 0.2]))
    assert "fit over 7 measured search answers at spread bounds" in answer.accuracy_basis


def test_a_damaged_pick_fit_is_refused_naming_the_field(deploy_run, tmp_path):
    path = _copy_run(deploy_run, tmp_path)
    data = json.loads(path.read_text())
    falling = {"score": [0.0, -0.1], "accuracy": [0.5, 0.6]}
    data["results"]["pick_fit"] = {**data["results"]["accuracy_fit"], "knots": falling}
    path.write_text(json.dumps(data))
    with pytest.raises(SpecializeError, match=r"results\.pick_fit\.knots"):
        load_table(path)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--table", "default", "--picks", "5"], "--table default"),
        (["--picks", "2"], "--picks must be 3..200"),
        (["--picks", "5", "--seed", "-1"], "seed"),
    ],
)
def test_pick_calibration_refuses_bad_input_before_measuring(deploy_run, tmp_path, args, words):
    path = _copy_run(deploy_run, tmp_path)
    before = path.read_bytes()
    args = args if "--table" in args else ["--table", str(path), *args]
    done = runner.invoke(app, ["table", "refit", *args])
    assert done.exit_code == 2 and words in " ".join(done.output.split()), done.output
    assert path.read_bytes() == before


def test_a_band_over_the_search_answers_leaves_out_only_the_two_end_ones():
    """Answers on a straight rising line: leaving out an interior one, the curve through its neighbours predicts it
    exactly; leaving out an end one tests a flat extrapolation, which `spans_answers` drops (by score, not by
    position in the list)."""
    score = np.linspace(-0.2, 0.0, 9)
    samples = [{"score": float(s), "accuracy": float(0.9 + s)} for s in score[[4, 8, 0, 2, 6, 1, 7, 3, 5]]]
    assert fit_accuracy(samples, 100)["band"] > 0.01
    assert fit_accuracy(samples, 100, spans_answers=True)["band"] == pytest.approx(0.0, abs=1e-12)
    samples[0]["accuracy"] += 0.01  # an interior one off the line: now the band sees it
    assert fit_accuracy(samples, 100, spans_answers=True)["band"] > 0.005


def test_train_ends_by_fitting_its_predictions_on_the_search_answers(synthetic_data, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--space", "test-tiny", "--data", str(synthetic_data), "-o", str(run), "--epochs", "1"]
    args += ["--finetune-epochs", "0.25", "--val-per-class", "2", "--calib-images", "20", "--spread-samples", "4"]
    refused = runner.invoke(app, [*args, "--picks", "2"])
    assert refused.exit_code == 2 and "--picks must be 0 (none) or 3..200" in refused.output and not run.exists()
    done = runner.invoke(app, [*args, "--picks", "8"])
    assert done.exit_code == 0, done.output
    table = load_table(run / "table.json")
    assert table.prediction_fit is table.pick_fit and table.pick_fit["split"] == "fit"
    assert table.pick_fit["provenance"]["settings"]["picks"] == 8 and "picks" not in table.accuracy_fit
    assert f"accuracy fit over {table.pick_fit['samples']} search answers" in " ".join(done.output.split())


def test_too_few_answers_is_a_note_after_training(deploy_run, tmp_path, monkeypatch):
    """Training is done and its table sound: fewer than 3 distinct answers is a note, not a failed run."""
    import supernet.train
    from specialize.api import offline
    from supernet.train_config import TrainConfig

    path = _copy_run(deploy_run, tmp_path)
    before = path.read_bytes()
    monkeypatch.setattr(supernet.train, "train", lambda cfg, output, resume, report: load_table(path))

    def too_few(*args):
        raise offline.TooFewAnswers("the search gave 2 distinct answers over 6 ceilings; a fit needs 3")

    monkeypatch.setattr(offline, "calibrate_on_picks", too_few)
    cfg = TrainConfig(space="test-tiny", data=str(tmp_path / "unused"), seed=0)
    monkeypatch.setattr(cfg, "check", lambda: None)
    events = []
    table = offline.train(cfg, tmp_path, False, events.append, picks=6)
    assert table.pick_fit is None and path.read_bytes() == before
    assert [e["event"] for e in events] == ["note"] and "keep the fit on random sub-networks" in events[0]["text"]

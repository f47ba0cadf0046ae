"""PNAS's surrogate ensemble, EcoNAS's hierarchical evolution and the evaluation budget they share.

Their quality against brute force is checked in test_strategies.py (the registry loop); here: the
surrogate predicts, each member sees a different 4/5, EcoNAS promotes and ages, budgets in evaluation
units are never overspent, fidelity reaches a fitness that takes it, and a seed fixes the answer.
"""

import numpy as np
import pytest

from specialize.search.constraints import Bound
from specialize.search.offline import Evaluations
from specialize.search.penalty import Evaluation, hard_bounds, soft_penalty
from specialize.search.registry import Budget, get_strategy
from specialize.search.surrogate import fit_ensemble, one_hot
from test_search import TINY, problem_for
from test_strategies import SMALL

OFFLINE = ["econas", "pnas"]


def additive(layers: int, cands: int, seed: int):
    table = np.random.default_rng(seed).uniform(-0.05, 0.0, (layers, cands))
    return lambda genes: table[np.arange(layers), genes].sum(axis=-1)


def test_the_surrogate_ensemble_beats_a_mean_predictor_on_held_out_architectures():
    rng, score = np.random.default_rng(0), additive(6, 8, 1)
    train, test = rng.integers(0, 8, (200, 6)), rng.integers(0, 8, (500, 6))
    ensemble = fit_ensemble(one_hot(train, 8), score(train), seed=0)
    predicted = ensemble.predict(one_hot(test, 8))
    mean_error = np.abs(score(train).mean() - score(test)).mean()
    assert np.abs(predicted - score(test)).mean() < 0.5 * mean_error
    assert np.corrcoef(predicted, score(test))[0, 1] > 0.8


def test_each_member_fits_a_different_four_fifths():
    rng, score = np.random.default_rng(1), additive(6, 8, 2)
    genes = np.unique(rng.integers(0, 8, (100, 6)), axis=0)
    target = score(genes)
    ensemble = fit_ensemble(one_hot(genes, 8), target, seed=3)
    folds = ensemble.held_out
    assert len(folds) == 5 and sorted(np.concatenate(folds).tolist()) == list(range(len(genes)))
    assert all(abs(len(f) - len(genes) / 5) <= 1 for f in folds)
    # Each member really leaves its fifth out: it predicts its own fifth worse than the members that saw it.
    predicted = ensemble.predict_members(one_hot(genes, 8))
    for m, fold in enumerate(folds):
        own = np.abs(predicted[m, fold] - target[fold]).mean()
        others = np.abs(np.delete(predicted, m, axis=0)[:, fold] - target[fold]).mean()
        assert own > others


def counting(problem, log: list) -> Evaluation:
    """The hard bounds, with a fitness that takes a fidelity and logs what each call cost."""
    base = hard_bounds(problem)

    def fitness(pop, fidelity=1.0):
        log.append((len(pop), fidelity))
        return base.fitness(pop)

    return Evaluation("hard", fitness, base.accept, base.allowed)


def test_evaluations_pass_fidelity_only_to_a_fitness_that_takes_it_and_charge_it():
    problem = problem_for(TINY, 0, ())
    log: list = []
    evaluations = Evaluations(problem, counting(problem, log), limit=2.0)
    pop = np.array([[0, 1, 2, 3], [1, 1, 1, 1]])
    evaluations(pop, fidelity=1 / 3)
    evaluations(pop, fidelity=1 / 3)  # cached at 1/3: free
    assert log == [(2, 1 / 3)] and evaluations.spent == pytest.approx(2 / 3)
    evaluations(pop[:1])  # the same architecture at full fidelity: a new score
    assert log[-1] == (1, 1.0) and evaluations.spent == pytest.approx(5 / 3)
    assert evaluations.affordable(1.0) == 0 and evaluations.affordable(1 / 3) == 1
    assert np.isneginf(evaluations(pop[1:])).all()  # past the budget
    plain = Evaluations(problem, hard_bounds(problem), limit=1.0)  # a fitness without fidelity works too
    assert np.isfinite(plain(pop, fidelity=0.5)).all() and plain.spent == pytest.approx(1.0)


@pytest.mark.parametrize("name", OFFLINE)
@pytest.mark.parametrize("limit", [7, 40, 101])
def test_budget_in_evaluation_units_is_never_overspent(name, limit):
    problem = problem_for(
        SMALL, 4, [Bound("macs", upper=problem_for(SMALL, 4, ()).measure(np.zeros((1, 6), int))["macs"][0] * 1.6)]
    )
    log: list = []
    result = get_strategy(name).run(problem, counting(problem, log), Budget(evaluations=limit), 0)
    spent = sum(n * f for n, f in log)
    assert spent <= limit + 1e-9 and result.details["evaluations"] == pytest.approx(spent)
    assert spent >= limit - 1.0, "the budget was left unspent"
    assert result.genes is not None and problem.feasible(result.genes[None])[0]


def test_econas_scores_children_cheaply_and_promotes_the_best():
    problem = problem_for(SMALL, 5, ())
    log: list = []
    result = get_strategy("econas").run(problem, counting(problem, log), Budget(evaluations=120), 1)
    units = {round(f, 4): n * f for n, f in log}
    assert set(units) == {0.3333, 0.6667, 1.0}
    children = sum(n for n, f in log if f < 0.5)
    assert children > sum(n for n, f in log if f == 1.0) > 0  # most scored cheaply, some in full
    book = result.details["logbook"]
    assert sum(r["promoted_2E"] for r in book) > 0 and sum(r["promoted_3E"] for r in book) > 0
    assert result.details["answer_fidelity"] == 1.0


def test_econas_ages_out_the_oldest():
    from specialize.search import econas

    problem = problem_for(SMALL, 6, ())
    evaluation = hard_bounds(problem)
    evo = econas.Evolution(problem, evaluation, Evaluations(problem, evaluation, 150), np.random.default_rng(0))
    econas.evolve(evo)
    alive = [ind.born for ind in evo.pops.alive()]
    assert evo.pops.dead and len(alive) <= econas.CAPACITY
    assert max(evo.pops.dead) < min(alive)  # the dead are exactly the oldest births, whatever their fitness


@pytest.mark.parametrize("name", OFFLINE)
@pytest.mark.parametrize("penalty", [hard_bounds, soft_penalty])
def test_same_seed_same_answer(name, penalty):
    problem = problem_for(
        SMALL, 7, [Bound("params", upper=problem_for(SMALL, 7, ()).measure(np.full((1, 6), 7))["params"][0] * 0.8)]
    )
    runs = [get_strategy(name).run(problem, penalty(problem), Budget(evaluations=60), 11) for _ in range(2)]
    assert np.array_equal(runs[0].genes, runs[1].genes) and runs[0].value == runs[1].value
    assert [h["best"] for h in runs[0].history] == [h["best"] for h in runs[1].history]


@pytest.mark.parametrize("name", OFFLINE)
def test_the_main_command_refuses_offline_strategies(name):
    from specialize import specialize
    from specialize.errors import SpecializeError
    from test_api import random_table

    with pytest.raises(
        SpecializeError,
        match=rf"strategy '{name}' scores sub-networks with the supernet: "
        rf"run it with `specialize search --strategy {name}",
    ):
        specialize(table=random_table(), strategy=name, max_flops="45M")


def test_the_soft_penalty_passes_a_fidelity_on_to_an_evaluator_that_takes_one():
    from specialize.search.penalty import SoftPenalty

    problem = problem_for(TINY, 0, [Bound("macs", upper=1.0)])  # every architecture breaks it
    seen: list = []

    def accuracy(pop, fidelity=1.0):
        seen.append(fidelity)
        return np.full(len(pop), 0.5)

    pop = np.zeros((2, 4), dtype=int)
    scores = SoftPenalty(accuracy, problem)(pop, fidelity=0.25)
    assert seen == [0.25] and (scores < 0.5).all()
    assert np.allclose(SoftPenalty(lambda p: np.full(len(p), 0.5), problem)(pop, fidelity=0.25), scores)

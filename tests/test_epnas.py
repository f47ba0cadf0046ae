"""EPNAS's actions: scale moves one block attribute at a time; insert/remove toggle `skip` only where allowed."""

from dataclasses import replace

import numpy as np

from specialize.search.offline import Evaluations
from specialize.search.penalty import get_penalty
from supernet.strategies.epnas import INSERT, KEEP, REMOVE, Actions, EpnasSearch, candidate_levels
from test_search import TINY, problem_for

NAMES = ("k3e3", "k3e6", "k5e3", "k5e6", "skip")


def skip_problem(skip_layers: tuple[int, ...] = (1, 3)):
    """TINY with its last candidate renamed `skip`, allowed only on `skip_layers` (as for equal shapes): the
    space's own mask, as build_problem sets it from the cost arrays."""
    base = problem_for(TINY, 0, ())
    names = base.candidates[:-1] + ("skip",)
    allowed = base.allowed.copy()
    allowed[:, -1] = False
    allowed[list(skip_layers), -1] = True
    return replace(base, candidates=names, allowed=allowed, space_allowed=allowed)


def small_actions() -> Actions:
    allowed = np.ones((2, len(NAMES)), dtype=bool)
    allowed[0, 4] = False  # no skip on layer 0
    problem = replace(problem_for(TINY, 0, ()), candidates=NAMES, allowed=allowed, score=np.zeros((2, len(NAMES))))
    return Actions.build(problem, allowed)


def test_scale_moves_each_attribute_and_leaves_skip_alone():
    actions = small_actions()
    assert candidate_levels(NAMES, 5).tolist() == [[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [-1, -1, -1]]
    keep = np.ones((1, 2, 3), dtype=int)
    kernel_up = keep.copy()
    kernel_up[..., 0] = 2
    genes = np.array([[0, 4]])
    assert actions.scale(genes, keep).tolist() == [[0, 4]]
    assert actions.scale(genes, kernel_up).tolist() == [[2, 4]]  # k3e3 -> k5e3; skip stays skip
    expansion_down = keep.copy()
    expansion_down[..., 1] = 0
    assert actions.scale(np.array([[1, 3]]), expansion_down).tolist() == [[0, 2]]


def test_insert_and_remove_only_where_skip_is_allowed():
    actions = small_actions()
    mask = actions.insert_mask(np.array([[0, 4], [0, 1]]))
    assert mask[..., KEEP].all()
    assert mask[0, 0].tolist() == [True, False, False]  # block on a layer without skip: keep only
    assert mask[0, 1].tolist() == [True, True, False]  # skip: keep or insert
    assert mask[1, 1].tolist() == [True, False, True]  # block where skip is allowed: keep or remove
    assert actions.insert(np.array([[0, 4], [0, 1]]), np.array([[KEEP, INSERT], [KEEP, REMOVE]])).tolist() == [
        [0, 0],
        [0, 4],
    ]


def scored_networks(problem, penalty: str = "hard", seed: int = 0) -> np.ndarray:
    scores = Evaluations(problem, get_penalty(penalty)(problem, 0.9), 60)
    search = EpnasSearch(problem, scores.evaluation, scores, branches=8, steps=4)
    search.run(np.random.default_rng(seed))
    return np.array(list(scores.cache))


def test_epnas_inserts_and_removes_layers_only_where_allowed():
    problem = skip_problem()
    skip = len(problem.candidates) - 1
    nets = scored_networks(problem)
    on = nets == skip
    assert not on[:, [0, 2]].any()  # never where shapes differ
    assert on[:, 1].any() and (~on[:, 1]).any() and on[:, 3].any()  # depth changed both ways


def test_without_skip_the_insert_lstm_does_nothing():
    problem = problem_for(TINY, 0, ())
    search = EpnasSearch(problem, get_penalty("soft")(problem, 0.9), None, branches=2, steps=1)
    assert search.actions.skip is None

    def refuse(*args):
        raise AssertionError("the insert LSTM ran in a space without skip")

    search.policy.insert = refuse
    genes = np.zeros((2, TINY.num_layers), dtype=np.int64)
    edited, logp = search.step(genes)
    assert edited.shape == genes.shape and logp.shape == (2,)


def test_the_soft_penalty_keeps_skip_off_layers_whose_shapes_differ():
    """Bounds become penalties under the soft setting; structure does not (every strategy reads `allowed`)."""
    problem = skip_problem()
    evaluation = get_penalty("soft")(problem, 0.9)
    assert evaluation.allowed[:, :-1].all() and evaluation.allowed[:, -1].tolist() == [False, True, False, True]
    nets = scored_networks(problem, penalty="soft")
    assert not (nets[:, [0, 2]] == len(problem.candidates) - 1).any()

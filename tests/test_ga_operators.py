"""The GA's operators by behaviour (crossover, mutation, selection, the draws' mutation rate) and its quality
before the 2-exchange polish, so that a broken operator cannot hide behind the polish or the exact reference."""

from __future__ import annotations

import numpy as np
import pytest

from specialize.search import ga
from specialize.search.constraints import Bound
from specialize.search.exact import solve_exact
from specialize.search.reach import reachable
from specialize.space import get_space
from test_search import problem_for


def test_one_point_crossover_swaps_the_tails():
    a, b = np.arange(6), np.arange(6) + 10
    head = (np.arange(6) < 2)[None, None, None, :]  # cut after gene 2, one try
    children = ga.one_point_crossover(np.stack([a, b])[None], head)[0, 0]
    assert children[0].tolist() == [0, 1, 12, 13, 14, 15] and children[1].tolist() == [10, 11, 2, 3, 4, 5]


def test_mutation_moves_hit_genes_to_another_allowed_candidate_and_leaves_the_rest():
    space = get_space("cifar10-depth")
    allowed = np.array(space.allowed_mask())
    genome = ga.Genome.from_mask(allowed, np.random.default_rng(0))
    pop = np.zeros((3, space.num_layers), dtype=np.int64)
    hit = np.zeros_like(pop, dtype=bool)
    hit[:, ::2] = True
    out = ga.mutate(genome, pop, hit, np.ones_like(pop))
    assert (out[~hit] == pop[~hit]).all() and (out[hit] != pop[hit]).all()
    assert allowed[np.arange(space.num_layers), out].all()


def test_selection_keeps_the_k_fittest_best_first():
    fitness = np.array([[0.1, 0.9, 0.5, 0.9, -1.0]])
    assert ga.select_best(fitness, 3).tolist() == [[1, 3, 2]]


def test_draws_mutate_genes_at_the_ga_rate():
    genome = ga.Genome.from_mask(np.ones((12, 12), dtype=bool), np.random.default_rng(0))
    pool = ga.DrawPool(genome, np.random.default_rng(1), islands=2, parents=10, first=4, tries=4, rate=ga.MUTATION)
    hits = np.concatenate([pool.next().hit.ravel() for _ in range(100)])
    assert ga.MUTATION == pytest.approx(0.1) and hits.mean() == pytest.approx(ga.MUTATION, abs=0.01)


def test_ga_before_polish_is_near_the_optimum():
    """60 generations, 12 bound sets on cifar10: the GA's own answer (before the polish) is on average within
    0.02 points of the proven optimum (0.009 as written; a no-op crossover gives 0.036)."""
    space, gaps = get_space("cifar10"), []
    for seed in range(12):
        lo, hi = reachable(problem_for(space, seed, ()), "macs")
        problem = problem_for(space, seed, (Bound("macs", None, lo + 0.3 * (hi - lo)),))
        result = ga.run_ga(problem, seed=seed, generations=60)
        gaps.append(solve_exact(problem).value - result.value_before_polish)
    assert min(gaps) >= -1e-12 and np.mean(gaps) <= 0.02


def bound_problem(seed: int, share: float = 0.3):
    space = get_space("cifar10-depth")
    lo, hi = reachable(problem_for(space, seed, ()), "macs")
    return space, problem_for(space, seed, (Bound("macs", None, lo + share * (hi - lo)),))


def test_deap_classes_are_made_with_their_weights_and_attributes():
    """DEAP's creator is process-global: delete the classes and make them again, as a fresh process would."""
    from deap import creator

    names = ("FitnessLoss", "Chromosome", "FitnessFront", "FrontChromosome", "AgedChromosome")
    for name in names:
        if hasattr(creator, name):
            delattr(creator, name)
    ga.create_classes()
    assert creator.FitnessLoss.weights == (1.0,) and creator.FitnessFront.weights == (1.0, -1.0)
    for name, fitness in (("Chromosome", "FitnessLoss"), ("FrontChromosome", "FitnessFront")):
        made = getattr(creator, name)([1, 2])
        assert isinstance(made, list) and type(made.fitness).__name__ == fitness
    aged = creator.AgedChromosome([0])
    assert (aged.born, aged.level, type(aged.fitness).__name__) == (0, 0, "FitnessLoss")
    ga.create_classes()  # a second call keeps them
    assert creator.FitnessLoss.weights == (1.0,)


def test_repair_makes_infeasible_chromosomes_feasible_and_keeps_feasible_ones():
    space, problem = bound_problem(1, 0.2)
    rng = np.random.default_rng(0)
    largest = np.tile(np.array(space.largest_arch().indices), (16, 1))  # breaks the MACs bound everywhere
    assert not problem.feasible(largest).any()
    fixed = ga.repair(problem, rng, largest)
    assert problem.feasible(fixed).all() and (np.array(space.allowed_mask())[np.arange(12), fixed]).all()
    feasible = fixed.copy()
    assert (ga.repair(problem, rng, feasible) == feasible).all()
    frozen = np.zeros(12, dtype=bool)
    frozen[:3] = True
    partly = ga.repair(problem, rng, largest, frozen=frozen)
    assert (partly[:, :3] == largest[:, :3]).all()


def brute_best_neighbour(problem, genes):
    """The best feasible score among every change of one or two genes (brute force)."""
    best = problem.scores(genes[None])[0]
    allowed = problem.allowed
    for l1 in range(problem.num_layers):
        for c1 in np.flatnonzero(allowed[l1]):
            one = genes.copy()
            one[l1] = c1
            if problem.feasible(one[None])[0]:
                best = max(best, problem.scores(one[None])[0])
            for l2 in range(l1 + 1, problem.num_layers):
                two = np.repeat(one[None], allowed[l2].sum(), axis=0)
                two[:, l2] = np.flatnonzero(allowed[l2])
                ok = problem.feasible(two)
                if ok.any():
                    best = max(best, problem.scores(two[ok]).max())
    return best


def test_polish_ends_where_no_change_of_one_or_two_genes_helps():
    space, problem = bound_problem(2)
    rng = np.random.default_rng(3)
    start = ga.repair(problem, rng, np.tile(np.array(space.largest_arch().indices), (1, 1)))[0]
    polished = ga.polish(problem, start)
    assert problem.feasible(polished[None])[0]
    assert problem.scores(polished[None])[0] >= problem.scores(start[None])[0]
    assert brute_best_neighbour(problem, polished) <= problem.scores(polished[None])[0] + 1e-12


def test_random_mutation_changes_genes_at_the_rate_to_allowed_candidates():
    space = get_space("cifar10-depth")
    allowed = np.array(space.allowed_mask())
    genome = ga.Genome.from_mask(allowed, np.random.default_rng(0))
    pop = np.tile(np.array(space.largest_arch().indices), (400, 1))
    out = ga.random_mutation(genome, np.random.default_rng(1), pop)
    changed = out != pop
    assert changed.mean() == pytest.approx(ga.MUTATION, abs=0.015) and allowed[np.arange(12), out].all()
    assert (ga.random_mutation(genome, np.random.default_rng(1), pop, rate=0.0) == pop).all()


def test_init_population_is_feasible_and_the_walk_is_used_only_when_needed():
    space, problem = bound_problem(4)
    rng = np.random.default_rng(0)
    toolbox = ga.build_toolbox(problem, rng)
    genome = ga.Genome.from_mask(np.array(space.allowed_mask()), rng)
    pop, seeded = ga.init_population(problem, genome, rng, toolbox, 50)
    assert pop.shape == (50, 12) and problem.feasible(pop).all() and not seeded
    walked = ga._walk(problem, genome, rng, pop[:1], 30)
    assert walked.shape == (30, 12) and problem.feasible(walked).all() and len({tuple(g) for g in walked}) > 1


def test_init_population_walks_from_a_solver_start_when_draws_and_repair_find_none():
    class Refusing:  # a toolbox whose draws and repairs never pass: the solver must seed the population
        @staticmethod
        def accept(pop):
            return np.zeros(len(pop), dtype=bool)

        @staticmethod
        def repair(pop):
            return pop

    space, problem = bound_problem(5)
    rng = np.random.default_rng(0)
    genome = ga.Genome.from_mask(np.array(space.allowed_mask()), rng)
    pop, seeded = ga.init_population(problem, genome, rng, Refusing, 20)
    assert seeded and pop.shape == (20, 12) and problem.feasible(pop).all()


def test_run_ga_is_deterministic_counts_its_generations_and_says_why_it_stopped():
    space, problem = bound_problem(6)
    first, again = ga.run_ga(problem, seed=3, generations=20), ga.run_ga(problem, seed=3, generations=20)
    assert (first.genes == again.genes).all() and first.value == again.value
    assert first.generations == 20 and first.stopped is None and problem.feasible(first.genes[None])[0]
    assert first.value == pytest.approx(problem.scores(first.genes[None])[0])
    assert first.value >= first.value_before_polish and first.evaluations > 0
    history = [h["best"] for h in first.history]
    assert history == sorted(history)  # the best seen never gets worse
    capped = ga.run_ga(problem, seed=3, generations=1000, max_failed=0)
    assert capped.generations < 1000 and capped.stopped.startswith("0 failed children (cap 0)")


def test_run_ga_reports_what_it_did(monkeypatch):
    """The result's record is the run's: a history point every 10 generations (numbered from 1), the children
    evaluated, the failed children summed over generations, seconds spent, and seed 0 by default."""
    space, problem = bound_problem(2, share=0.05)  # a narrow bound: many children fail
    lost_per_generation = []
    real_breed = ga.breed

    def counting_breed(*args):
        children, lost = real_breed(*args)
        lost_per_generation.append(lost)
        return children, lost

    monkeypatch.setattr(ga, "breed", counting_breed)
    ticks = iter(range(1000))  # a clock that moves one second per reading: seconds is the clock's, not a guess
    monkeypatch.setattr(ga.time, "perf_counter", lambda: float(next(ticks)))
    result = ga.run_ga(problem, seed=0, generations=20, islands=2)
    assert [h["generation"] for h in result.history] == [10, 20] and len(lost_per_generation) == 20
    assert result.failed_children == sum(lost_per_generation) > 0
    assert result.evaluations == 2 * (ga.POPULATION + 20 * (ga.POPULATION - ga.PARENTS))
    reads = next(ticks)  # the clock was read this many times; seconds is the last reading less the first
    assert result.seconds == reads - 1
    default = ga.run_ga(problem, generations=20, islands=2)
    assert (default.genes == result.genes).all() and default.history == result.history


def test_run_ga_uses_the_evaluation_it_is_given_and_stops_at_its_time_limit():
    from specialize.search.penalty import hard_bounds

    space, problem = bound_problem(4)
    calls = []
    evaluation = hard_bounds(problem)
    fitness = evaluation.fitness

    def counted(pop):
        calls.append(pop.shape)
        return fitness(pop)

    evaluation = type(evaluation)(**{**vars(evaluation), "fitness": counted})
    ga.run_ga(problem, seed=0, generations=3, evaluation=evaluation, islands=2)
    assert len(calls) == 4  # the first population and three generations of children
    stopped = ga.run_ga(problem, seed=0, generations=1000, time_limit=0.0, islands=2)
    assert stopped.generations == 0 and stopped.stopped.startswith("time limit")
    assert stopped.evaluations == 2 * ga.POPULATION and stopped.history == []


def test_breed_children_are_new_and_meet_the_bounds_or_their_parent_stays():
    """Every child either meets every bound and copies none of its island's parents, or is the parent it
    replaces; breed's count of fallen-back children is exactly the children equal to their parent."""
    space, problem = bound_problem(7, share=0.15)
    rng = np.random.default_rng(0)
    toolbox = ga.build_toolbox(problem, rng, islands=3)
    pop, _ = toolbox.population(3 * ga.POPULATION)
    parents = pop.reshape(3, ga.POPULATION, -1)[:, : ga.PARENTS]
    for _ in range(5):
        draws = toolbox.draw()
        children, lost = toolbox.breed(parents, draws)
        pairs = parents[np.arange(3)[:, None], draws.order].reshape(3, ga.PARENTS, -1)
        assert children.shape == parents.shape
        fell_back = (children == pairs).all(axis=-1)
        for island in range(3):
            seen = {tuple(p) for p in parents[island]}
            for child, back in zip(children[island], fell_back[island]):
                assert back or (tuple(child) not in seen and problem.feasible(child[None])[0])
        assert lost == int(fell_back.sum())
        assert lost < fell_back.size  # most children are new
        parents = children


def test_breeding_without_bounds_finds_every_child_without_repair():
    """Unbounded, every child that copies no parent is kept as bred: repair (the fallback) is never reached."""
    problem = problem_for(get_space("cifar10-depth"), 3, ())
    toolbox = ga.build_toolbox(problem, np.random.default_rng(1), islands=2)
    pop, _ = toolbox.population(2 * ga.POPULATION)
    toolbox.register("repair", lambda pop: pytest.fail("breed repaired a child on a problem with no bounds"))
    children, lost = toolbox.breed(pop.reshape(2, ga.POPULATION, -1)[:, : ga.PARENTS], toolbox.draw())
    assert lost == 0 and children.shape == (2, ga.PARENTS, pop.shape[-1])


def test_the_best_so_far_keeps_the_first_of_equal_scores():
    problem = problem_for(get_space("cifar10-depth"), 3, ())
    best = ga._Best(problem)
    pop, _ = ga.build_toolbox(problem, np.random.default_rng(2)).population(4)
    top = pop[int(np.argmax(problem.scores(pop)))]
    best.update(top[None])
    kept = best.genes
    best.update(top.copy()[None])  # an equal score: the first stays
    assert best.genes is kept and best.value == float(problem.scores(top[None])[0])


def test_run_ga_on_a_problem_no_chromosome_can_meet_says_so():
    space, problem = bound_problem(3)
    impossible = problem_for(space, 3, (Bound("macs", None, 1.0),))
    from specialize.errors import InfeasibleError

    with pytest.raises(InfeasibleError, match="MACs"):
        ga.run_ga(impossible, seed=0, generations=5, islands=2)


def random_mask(seed: int, layers: int = 9, cands: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.random((layers, cands)) < 0.6
    mask[np.arange(layers), rng.integers(0, cands, layers)] = True  # every layer keeps one candidate
    return mask


@pytest.mark.parametrize("seed", range(4))
def test_the_move_table_steps_through_every_allowed_candidate_once(seed):
    """moves[l, c, s]: step 0 stays at c, steps 1..count-1 reach every other allowed candidate exactly once."""
    allowed = random_mask(seed)
    genome = ga.Genome.from_mask(allowed, np.random.default_rng(seed))
    for layer, row in enumerate(allowed):
        others = set(np.flatnonzero(row).tolist())
        for c in others:
            reached = [int(genome.moves[layer, c, s]) for s in range(genome.count[layer])]
            assert reached[0] == c and set(reached) == others and len(set(reached)) == len(reached)


def test_chromosome_weights_tell_apart_every_one_and_two_gene_change():
    space = get_space("cifar10")
    genome = ga.Genome.from_mask(np.array(space.allowed_mask()), np.random.default_rng(0))
    base, codes = np.zeros(space.num_layers, dtype=np.int64), set()
    for l1 in range(space.num_layers):
        for c1 in range(space.num_candidates):
            for l2 in range(l1, space.num_layers):
                for c2 in range(space.num_candidates):
                    genes = base.copy()
                    genes[l1], genes[l2] = c1, c2
                    codes.add((tuple(genes), int(genes @ genome.weights)))
    assert len({code for _, code in codes}) == len({genes for genes, _ in codes})


def test_random_mutation_reaches_every_other_allowed_candidate_evenly():
    allowed = random_mask(5)
    genome = ga.Genome.from_mask(allowed, np.random.default_rng(0))
    pop = np.repeat(genome.choices[:, :1].T, 4000, axis=0)  # every layer at its first allowed candidate
    out = ga.random_mutation(genome, np.random.default_rng(1), pop, rate=1.0)
    for layer, row in enumerate(allowed):
        others = set(np.flatnonzero(row).tolist()) - {int(pop[0, layer])}
        counts = np.bincount(out[:, layer], minlength=allowed.shape[1])
        if not others:
            assert (out[:, layer] == pop[:, layer]).all()
            continue
        assert set(np.flatnonzero(counts).tolist()) == others
        assert counts[list(others)].min() > 0.7 * 4000 / len(others)


def test_draws_cut_between_genes_nudge_one_gene_and_pair_every_parent_once():
    layers = 8
    genome = ga.Genome.from_mask(np.ones((layers, 5), dtype=bool), np.random.default_rng(0))
    pool = ga.DrawPool(genome, np.random.default_rng(1), islands=3, parents=10, first=4, tries=4, rate=ga.MUTATION)
    cuts, nudged = [], []
    for _ in range(3 * 50 + 7):  # past the end of several blocks
        d = pool.next()
        assert sorted(d.order[0].tolist()) == list(range(10)) and d.order.shape == (3, 10)
        cuts += d.head.sum(axis=-1).ravel().tolist()
        assert (d.nudge.sum(axis=-1) == 1).all()
        nudged += d.nudge.argmax(axis=-1).ravel().tolist()
        assert (d.step >= 1).all() and (d.step <= 4).all()
    assert set(cuts) == set(range(1, layers))  # never all of one parent
    assert set(nudged) == set(range(layers))
    retry = pool.retry(5)
    assert retry.order.size == 0 and retry.head.shape == (5, 4, 1, layers)


def test_selection_keeps_population_order_among_equals():
    fitness = np.zeros((2, 40))
    fitness[1, ::3] = 1.0
    order = ga.select_best(fitness, 10)
    assert order[0].tolist() == list(range(10)) and order[1].tolist() == list(range(0, 30, 3))


def test_making_the_deap_classes_twice_does_not_remake_them():
    import warnings

    from deap import creator

    ga.create_classes()
    made = creator.FitnessLoss
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ga.create_classes()
    assert creator.FitnessLoss is made


def test_a_layer_with_no_allowed_candidate_is_refused_as_infeasible():
    from specialize.errors import InfeasibleError
    from specialize.search.penalty import hard_bounds

    space, problem = bound_problem(1)
    evaluation = hard_bounds(problem)
    allowed = evaluation.allowed.copy()
    allowed[3] = False
    with pytest.raises(InfeasibleError):
        ga.build_toolbox(
            problem, np.random.default_rng(0), type(evaluation)(**{**vars(evaluation), "allowed": allowed})
        )


def test_the_walk_returns_exactly_n_feasible_chromosomes_from_one():
    space, problem = bound_problem(8)
    rng = np.random.default_rng(0)
    genome = ga.Genome.from_mask(np.array(space.allowed_mask()), rng)
    start = ga.polish(problem, np.zeros(space.num_layers, dtype=np.int64))
    assert problem.feasible(start[None])[0]
    for n in (1, 7, 40):
        pop = ga._walk(problem, genome, rng, start[None], n)
        assert pop.shape == (n, space.num_layers) and problem.feasible(pop).all()
    assert len({tuple(g) for g in ga._walk(problem, genome, rng, start[None], 40)}) > 1

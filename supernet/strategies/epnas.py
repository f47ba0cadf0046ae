"""EPNAS (§3): a constraint-aware REINFORCE policy that progressively edits architectures.

Policy (§3.2). Each layer of the input network is looked up in a trainable embedding table (its block,
plus its position); an LSTM of NETWORK_UNITS (32) reads the layers and its last state is the network
embedding. Two LSTMs of CONTROLLER_UNITS (128) read it:
- the "scale" LSTM takes one step per group of GROUP_LAYERS consecutive layers and picks, for the whole
  group, a change of each block attribute: kernel, expansion and squeeze-excite, each down, keep or up
  (clipped to the space; a change to a block the layer may not take leaves that layer as it was).
  The groups are single layers (the paper's F parts with F = L): with two-valued attributes a move shared
  by a group makes its layers equal for good ("up" sets both), and groups of 2 left the search cycling
  through a few dozen networks of a 4-layer space;
- the "insert" LSTM then takes one step per layer and picks insert, remove or keep. Remove replaces the
  layer's block by the identity candidate "skip" (elastic depth, allowed only where `problem.allowed`
  allows it: input and output shapes equal); insert puts back a block (the first allowed one, which the
  scale LSTM then grows). When the space has no "skip" candidate the insert LSTM's only action is keep,
  so it is not run and its log-probability is 0.
Candidates whose names are not k<k>e<e>[se] are edited as one attribute: their index moves down, keeps
or moves up.

Search (§3.1). N branches (default 8) each run T steps per episode (default 4) from a start network;
every step's edited network is scored, and the top N distinct networks of an episode start the next
(the first episode starts from uniform random architectures). After each episode one Adam step
(lr 6e-4; every weight initialised uniform in ±0.1) follows REINFORCE: the gradient of
Σ_n Σ_t log π(a_t,n | X_t,n) (Σ_{t'>=t} r_t',n − b_t) / N, where b_t is a moving average of past
returns at step t; the advantages are divided by their standard deviation over the episode (a
scale-free step, so a table score and a measured accuracy train alike; not in the paper).
The reward is the evaluation's fitness: under the soft penalty (EPNAS's setting) accuracy ×
Π_i 0.9^max(0, U_i/C_u,i − 1, C_l,i/U_i − 1) (`specialize.search.penalty.SoftPenalty`); under the hard
bounds a network that breaks one gets the lowest reward seen (Eq. 1's indicator).

Scores go through `specialize.search.offline.Evaluations`: the budget is distinct architectures scored,
and the answer is the best one scored that meets every bound. Deterministic for a seed (torch's random
state is forked and seeded; CPU). Registered as the strategy "epnas".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from specialize.errors import SpecializeError
from specialize.search.constraints import Problem
from specialize.search.offline import Evaluations
from specialize.search.penalty import Evaluation
from specialize.sampling import uniform_genes
from specialize.search.random_search import leaves_a_layer_empty
from specialize.search.registry import Budget, SearchResult
from specialize.space import Candidate

SKIP = "skip"
EMBEDDING = 16
NETWORK_UNITS, CONTROLLER_UNITS = 32, 128
LEARNING_RATE, INIT_RANGE = 6e-4, 0.1
BRANCHES, STEPS = 8, 4
GROUP_LAYERS = 1
BASELINE_DECAY = 0.8
MOVES = 3  # down, keep, up
KEEP, INSERT, REMOVE = 0, 1, 2
STALE_EPISODES = 25  # stop after this many episodes in a row that score no new network


# -- actions on architectures (numpy) ------------------------------------------------------------
def candidate_levels(names: tuple[str, ...], count: int) -> np.ndarray:
    """[C, A] each block's level on every attribute (kernel, expansion, SE); -1 for skip. Names that are
    not k<k>e<e>[se] (or none given) make one attribute: the candidate's index."""
    blocks = [n for n in names if n != SKIP]
    try:
        parsed = {n: Candidate.parse(n) for n in blocks}
    except SpecializeError:
        parsed = None
    if not names or parsed is None:
        return np.array([[-1] if n == SKIP else [i] for i, n in enumerate(names or range(count))])
    values = [sorted({getattr(c, a) for c in parsed.values()}) for a in ("kernel", "expansion", "se")]
    return np.array(
        [
            [-1] * 3
            if n == SKIP
            else [v.index(getattr(parsed[n], a)) for v, a in zip(values, ("kernel", "expansion", "se"))]
            for n in names
        ]
    )


def move_table(levels: np.ndarray) -> np.ndarray:
    """[C, MOVES**A] the candidate each combined move (Σ_a move_a · MOVES^a, move 0/1/2 = down/keep/up) reaches;
    the candidate itself where no block has those levels (and for skip)."""
    where = {tuple(row): c for c, row in enumerate(levels.tolist())}
    count, attributes = levels.shape
    combos = np.array(np.unravel_index(np.arange(MOVES**attributes), (MOVES,) * attributes)[::-1]).T - 1
    table = np.tile(np.arange(count)[:, None], (1, len(combos)))
    for c in range(count):
        if levels[c, 0] >= 0:
            for m, delta in enumerate(combos):
                table[c, m] = where.get(tuple(levels[c] + delta), c)
    return table


@dataclass(frozen=True)
class Actions:
    moves: np.ndarray  # [C, MOVES**A] move_table
    attributes: int  # A
    groups: np.ndarray  # [L] the scale group of each layer
    allowed: np.ndarray  # [L, C] candidates a layer may take
    skip: int | None  # the identity candidate's index; None: no elastic depth
    insert_block: np.ndarray  # [L] the block an insert puts at each layer

    @classmethod
    def build(cls, problem: Problem, allowed: np.ndarray) -> "Actions":
        names = problem.candidates
        skip = names.index(SKIP) if SKIP in names else None
        allowed = allowed.copy()
        if skip is not None:  # skip is structural: only where the problem allows it (shapes equal)
            allowed[:, skip] &= problem.allowed[:, skip]
        levels = candidate_levels(names, allowed.shape[1])
        blocks = allowed.copy()
        if skip is not None:
            blocks[:, skip] = False
        return cls(
            move_table(levels),
            levels.shape[1],
            np.arange(len(allowed)) // GROUP_LAYERS,
            allowed,
            skip,
            np.where(blocks.any(axis=1), blocks.argmax(axis=1), 0),
        )

    @property
    def num_groups(self) -> int:
        return int(self.groups.max()) + 1

    def scale(self, genes: np.ndarray, moves: np.ndarray) -> np.ndarray:
        """Apply each group's attribute moves [N, F, A] (0/1/2) to every layer of the group."""
        combined = (moves * MOVES ** np.arange(self.attributes)).sum(axis=-1)[:, self.groups]  # [N, L]
        target = self.moves[genes, combined]
        return np.where(self.allowed[np.arange(genes.shape[1]), target], target, genes)

    def insert_mask(self, genes: np.ndarray) -> np.ndarray:
        """[N, L, 3] which of keep / insert / remove each layer may take."""
        mask = np.zeros((*genes.shape, 3), dtype=bool)
        mask[..., KEEP] = True
        if self.skip is not None:
            is_skip = genes == self.skip
            mask[..., INSERT] = is_skip
            mask[..., REMOVE] = ~is_skip & self.allowed[:, self.skip]
        return mask

    def insert(self, genes: np.ndarray, actions: np.ndarray) -> np.ndarray:
        if self.skip is None:
            return genes
        out = np.where(actions == REMOVE, self.skip, genes)
        return np.where(actions == INSERT, self.insert_block, out)


# -- the policy network (torch) ------------------------------------------------------------------
class Policy(nn.Module):
    def __init__(self, layers: int, candidates: int, groups: int, attributes: int):
        super().__init__()
        self.attributes = attributes
        self.block_embedding = nn.Embedding(candidates, EMBEDDING)
        self.position_embedding = nn.Embedding(layers, EMBEDDING)
        self.group_embedding = nn.Embedding(groups, EMBEDDING)
        self.network_lstm = nn.LSTM(EMBEDDING, NETWORK_UNITS, batch_first=True)
        self.scale_lstm = nn.LSTM(NETWORK_UNITS + EMBEDDING, CONTROLLER_UNITS, batch_first=True)
        self.scale_head = nn.Linear(CONTROLLER_UNITS, MOVES * attributes)
        self.insert_lstm = nn.LSTM(NETWORK_UNITS + EMBEDDING, CONTROLLER_UNITS, batch_first=True)
        self.insert_head = nn.Linear(CONTROLLER_UNITS, 3)
        for weight in self.parameters():
            nn.init.uniform_(weight, -INIT_RANGE, INIT_RANGE)

    def network_embedding(self, genes: torch.Tensor) -> torch.Tensor:
        """[N, L] blocks -> [N, NETWORK_UNITS]: the network LSTM's last state over the layer embeddings."""
        layers = self.block_embedding(genes) + self.position_embedding.weight[None]
        return self.network_lstm(layers)[1][0][-1]

    @staticmethod
    def _controller(lstm: nn.LSTM, network: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """[N, S, CONTROLLER_UNITS] the controller's hidden state at each step; its input at a step is the
        network embedding and that step's embedding (the sampled actions are not fed back, so one call runs all)."""
        inputs = torch.cat(
            [network[:, None].expand(-1, len(steps), -1), steps[None].expand(len(network), -1, -1)], dim=2
        )
        return lstm(inputs)[0]

    def scale(self, network: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled attribute moves [N, F, A] and their summed log-probability [N]."""
        hidden = self._controller(self.scale_lstm, network, self.group_embedding.weight)
        dist = Categorical(
            logits=self.scale_head(hidden).view(*hidden.shape[:2], self.attributes, MOVES), validate_args=False
        )
        moves = dist.sample()
        return moves, dist.log_prob(moves).sum(dim=(1, 2))

    def insert(self, network: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled keep / insert / remove per layer [N, L] (only where `mask` [N, L, 3] allows) and
        log-probability [N]."""
        hidden = self._controller(self.insert_lstm, network, self.position_embedding.weight)
        dist = Categorical(logits=self.insert_head(hidden).masked_fill(~mask, -1e9), validate_args=False)
        actions = dist.sample()
        return actions, dist.log_prob(actions).sum(dim=1)


# -- the search -------------------------------------------------------------------------------------
class EpnasSearch:
    def __init__(self, problem: Problem, evaluation: Evaluation, scores: Evaluations, branches: int, steps: int):
        self.evaluation, self.scores, self.branches, self.steps = evaluation, scores, branches, steps
        self.actions = Actions.build(problem, evaluation.allowed)
        self.policy = Policy(
            problem.num_layers, problem.score.shape[1], self.actions.num_groups, self.actions.attributes
        )
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=LEARNING_RATE)
        self.baseline: np.ndarray | None = None
        self.worst = np.inf
        self.episodes = 0

    def rewards(self, genes: np.ndarray) -> np.ndarray:
        """The evaluation's fitness; a network the evaluation rejects (hard bounds) gets the lowest reward seen."""
        fitness = self.scores(genes)
        finite = fitness[np.isfinite(fitness)]
        self.worst = min(self.worst, float(finite.min())) if len(finite) else self.worst
        return np.where(self.evaluation.accept(genes) & np.isfinite(fitness), fitness, self.worst)

    def step(self, genes: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """One edit of every branch: scale, then insert/remove; the edited networks and the log-probability."""
        network = self.policy.network_embedding(torch.from_numpy(genes))
        moves, logp = self.policy.scale(network)
        scaled = self.actions.scale(genes, moves.numpy())
        if self.actions.skip is not None:
            actions, insert_logp = self.policy.insert(network, torch.from_numpy(self.actions.insert_mask(scaled)))
            scaled, logp = self.actions.insert(scaled, actions.numpy()), logp + insert_logp
        return scaled, logp

    def episode(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """T steps from `starts` [N, L]: visited networks [T, N, L] and rewards [T, N]; one policy update."""
        genes, visited, rewards, logps = starts, [], [], []
        for _ in range(self.steps):
            genes, logp = self.step(genes)
            visited.append(genes)
            rewards.append(self.rewards(genes))
            logps.append(logp)
            if self.scores.remaining <= 0:
                break
        visited, rewards = np.stack(visited), np.stack(rewards)
        if np.isfinite(rewards).all():
            self.update(torch.stack(logps), rewards)
        self.episodes += 1
        return visited, rewards

    def update(self, logps: torch.Tensor, rewards: np.ndarray) -> None:
        """One REINFORCE step with a moving-average baseline per step of the episode."""
        returns = np.cumsum(rewards[::-1], axis=0)[::-1]  # [T, N]: Σ_{t'>=t} r_t'
        mean = returns.mean(axis=1)
        if self.baseline is None or len(self.baseline) != len(mean):
            self.baseline = mean
        advantage = returns - self.baseline[:, None]
        advantage = advantage / max(float(advantage.std()), 1e-12)
        self.baseline = BASELINE_DECAY * self.baseline + (1 - BASELINE_DECAY) * mean
        loss = -(logps * torch.from_numpy(advantage.copy()).float()).sum() / logps.shape[1]
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def next_starts(self, visited: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """The top N distinct networks of the episode (repeated when it found fewer)."""
        flat, flat_rewards = visited.reshape(-1, visited.shape[-1]), rewards.ravel()
        order = np.argsort(-flat_rewards, kind="stable")
        _, first = np.unique(flat[order], axis=0, return_index=True)
        top = order[np.sort(first)][: self.branches]
        return flat[np.resize(top, self.branches)]

    def run(self, rng: np.random.Generator) -> str:
        starts = uniform_genes(self.actions.allowed, rng, self.branches)
        self.rewards(starts)
        stale = 0
        while self.scores.remaining > 0:
            if stale >= STALE_EPISODES:
                return f"{STALE_EPISODES} episodes in a row scored no new network (the policy converged)"
            used = self.scores.used
            starts = self.next_starts(*self.episode(starts))
            stale = 0 if self.scores.used > used else stale + 1
        return "evaluation budget spent"


def epnas_strategy(
    problem: Problem, evaluation: Evaluation, budget: Budget, seed: int, branches: int = BRANCHES, steps: int = STEPS
) -> SearchResult:
    scores = Evaluations(problem, evaluation, budget.evaluations)
    if leaves_a_layer_empty(evaluation.allowed):
        return scores.result({"episodes": 0, "stopped": "a bound leaves a layer no candidate"})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        search = EpnasSearch(problem, evaluation, scores, branches, steps)
        stopped = search.run(np.random.default_rng(seed))
    return scores.result(
        {
            "episodes": search.episodes,
            "branches": branches,
            "steps": steps,
            "stopped": stopped,
            "elastic_depth": search.actions.skip is not None,
        }
    )

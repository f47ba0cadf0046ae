"""PNAS §4.2's performance predictor: an ensemble of 5 small MLPs, each fit from scratch on a different 4/5
of the data, whose mean ranks architectures none of them was trained on. Numpy only (the online rerank uses it).

An architecture is encoded one-hot, one block per layer ([N, L*C]: the MLP's first layer is then a
per-layer block embedding, summed). Each member is one-hot -> HIDDEN -> HIDDEN -> 1 with ReLU, trained
full-batch with Adam on standardized targets (so its learning rate does not depend on the targets' scale).
Trained with L1 loss as PNAS's predictors are (`loss="l2"` for squared error). The members train side
by side in the same numpy calls: member m weighs only the samples outside its fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MEMBERS = 5  # PNAS: an ensemble of 5, each on 4/5 of the data
HIDDEN = 16  # PNAS uses 100 (embedding and both layers); 16 ranks additive tables as well here, 3x faster
STEPS = 200  # full-batch Adam steps per member
LEARNING_RATE = 0.01  # PNAS's rate for the first level
DTYPE = np.float32  # half the time of float64; predictions are compared, not summed


def one_hot(genes: np.ndarray, num_candidates: int) -> np.ndarray:
    """[N, L] candidate indices -> [N, L*C] 0/1 features."""
    genes = np.atleast_2d(genes)
    out = np.zeros((len(genes), genes.shape[1] * num_candidates))
    out[np.arange(len(genes))[:, None], np.arange(genes.shape[1]) * num_candidates + genes] = 1.0
    return out


@dataclass
class MLPStack:
    """`members` MLPs trained side by side in the same numpy calls: weights [(M, D, H), (M, H, H), (M, H, 1)]."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]  # [(M, 1, H), (M, 1, H), (M, 1, 1)]

    @classmethod
    def init(cls, members: int, inputs: int, hidden: int, rng: np.random.Generator) -> "MLPStack":
        sizes = [inputs, hidden, hidden, 1]
        weights = [rng.normal(0, np.sqrt(2 / a), (members, a, b)).astype(DTYPE) for a, b in zip(sizes[:-1], sizes[1:])]
        return cls(weights, [np.zeros((members, 1, b), dtype=DTYPE) for b in sizes[1:]])

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Outputs [M, N] and the activations every layer read (for the backward pass). The first layer,
        whose input every member shares, is one [N, D] x [D, M*H] product."""
        members, inputs, hidden = self.weights[0].shape
        first = (x @ self.weights[0].transpose(1, 0, 2).reshape(inputs, members * hidden)).reshape(
            len(x), members, hidden
        )
        h = np.maximum(first.transpose(1, 0, 2) + self.biases[0], 0.0)
        seen = [x, h]
        for w, b in zip(self.weights[1:-1], self.biases[1:-1]):
            h = np.maximum(h @ w + b, 0.0)
            seen.append(h)
        return (h @ self.weights[-1] + self.biases[-1])[..., 0], seen

    def gradients(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, loss: str) -> list[np.ndarray]:
        """d loss / d (w0, b0, w1, b1, w2, b2) per member; member m's loss is Σ_n sample_weight[m, n] · loss_n."""
        out, seen = self.forward(x)
        error = out - y
        grad = ((np.sign(error) if loss == "l1" else 2 * error) * sample_weight)[..., None]  # [M, N, 1]
        grads: list[np.ndarray] = []
        for i in reversed(range(1, len(self.weights))):
            grads[:0] = [np.swapaxes(seen[i], 1, 2) @ grad, grad.sum(axis=1, keepdims=True)]
            grad = (grad @ np.swapaxes(self.weights[i], 1, 2)) * (seen[i] > 0)
        members, n, hidden = grad.shape
        first = (x.T @ grad.transpose(1, 0, 2).reshape(n, members * hidden)).reshape(-1, members, hidden)
        return [first.transpose(1, 0, 2), grad.sum(axis=1, keepdims=True), *grads]

    def params(self) -> list[np.ndarray]:
        return [p for pair in zip(self.weights, self.biases) for p in pair]


def fit_stack(
    x: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray,
    rng: np.random.Generator,
    hidden: int = HIDDEN,
    steps: int = STEPS,
    learning_rate: float = LEARNING_RATE,
    loss: str = "l1",
) -> MLPStack:
    """Members fit from scratch with Adam (β 0.9, 0.999), full batch; member m sees the samples its
    `sample_weight[m]` row weighs (rows sum to 1). Adam runs on one flat vector the weights are views of."""
    net = MLPStack.init(len(sample_weight), x.shape[1], hidden, rng)
    flat = flatten(net)
    first, second = np.zeros_like(flat), np.zeros_like(flat)
    for t in range(1, steps + 1):
        grad = np.concatenate([g.ravel() for g in net.gradients(x, y, sample_weight, loss)])
        first *= 0.9
        first += 0.1 * grad
        second *= 0.999
        second += 0.001 * grad * grad
        flat -= DTYPE(learning_rate * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)) * first / (np.sqrt(second) + 1e-8)
    return net


def flatten(net: MLPStack) -> np.ndarray:
    """Copy the net's parameters into one vector and make its weights and biases views of it (in params() order)."""
    params = net.params()
    flat = np.concatenate([p.ravel() for p in params])
    views, start = [], 0
    for p in params:
        views.append(flat[start : start + p.size].reshape(p.shape))
        start += p.size
    net.weights, net.biases = views[0::2], views[1::2]
    return flat


@dataclass
class SurrogateEnsemble:
    net: MLPStack  # the members, side by side
    held_out: list[np.ndarray]  # [member] indices of the fifth each member did not see
    mean: float  # targets are standardized: y = mean + scale * output
    scale: float
    cv_error: float | None = field(default=None)  # mean |error| of each member on its own held-out fifth

    @property
    def members(self) -> int:
        return len(self.held_out)

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        """[members, N] each member's prediction, in the targets' units."""
        return self.mean + self.scale * self.net.forward(np.asarray(x, dtype=DTYPE))[0].astype(float)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[N] the ensemble mean (what PNAS ranks by)."""
        return self.predict_members(x).mean(axis=0)


def folds(n: int, members: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A random split of range(n) into `members` near-equal fifths (some empty when n < members)."""
    return np.array_split(rng.permutation(n), members)


def fit_ensemble(x: np.ndarray, y: np.ndarray, seed: int = 0, members: int = MEMBERS, **options) -> SurrogateEnsemble:
    """Member i is fit from scratch on every sample outside fold i (PNAS: each on 4/5 of the data).
    `options` go to `fit_stack` (hidden, steps, learning_rate, loss). Deterministic for a seed."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(y) < 2:
        raise ValueError("a surrogate needs at least 2 samples")
    rng = np.random.default_rng(seed)
    mean, scale = float(y.mean()), float(y.std()) or 1.0
    held_out = folds(len(y), members, rng)
    seen = np.ones((members, len(y)))
    for m, out in enumerate(held_out):
        seen[m, out] = 0.0
    weight = (seen / seen.sum(axis=1, keepdims=True)).astype(DTYPE)
    net = fit_stack(x.astype(DTYPE), ((y - mean) / scale).astype(DTYPE), weight, rng, **options)
    ensemble = SurrogateEnsemble(net, held_out, mean, scale)
    ensemble.cv_error = _cv_error(ensemble, x, y)
    return ensemble


def _cv_error(ensemble: SurrogateEnsemble, x: np.ndarray, y: np.ndarray) -> float | None:
    predicted = ensemble.predict_members(x)
    errors = [np.abs(predicted[m, out] - y[out]) for m, out in enumerate(ensemble.held_out) if len(out)]
    return float(np.concatenate(errors).mean()) if errors else None

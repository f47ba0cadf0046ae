"""Does the accuracy table rank real sub-networks? (PONAS reports Kendall tau 0.733 on 6 models.)

Samples architectures spread across the MACs range, measures each one's test accuracy with inherited
weights after batch-norm recalibration, and correlates it with the table's predicted score
(sum over layers of T_d).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from specialize.cost import cost_arrays
from specialize.errors import SpecializeError
from specialize.fileio import sha256_file
from specialize.table import AccuracyTable
from specialize.sampling import spread_architectures
from specialize.space import SearchSpace
from supernet.checkpoint import load_supernet
from supernet.data import ImageDataset, calibration_batches, to_tensor
from supernet.elastic import Supernet
from supernet.evaluate import subnet_accuracy


@dataclass
class Fidelity:
    kendall_tau: float
    spearman_rho: float
    samples: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"kendall_tau": self.kendall_tau, "spearman_rho": self.spearman_rho, "samples": self.samples}


def load_table_weights(table: AccuracyTable) -> Supernet:
    """The supernet whose weights the table names, checked against the sha256 the table recorded."""
    path = table.weights_path()
    if path is None:
        raise SpecializeError(
            f"accuracy table {table.path}: field 'weights' is empty, so it has no weights to evaluate"
        )
    if not path.is_file():
        raise SpecializeError(f"accuracy table {table.path}: weights file {path} does not exist")
    if sha256_file(path) != table.weights.get("sha256"):
        raise SpecializeError(f"weights file {path} does not match the sha256 recorded in accuracy table {table.path}")
    net = load_supernet(path)
    base = net.space.base_space or net.space.name
    if base == table.space.name:
        return net
    if not at_trained_size(table.space, net.space, tuple(table.sizes())):
        raise SpecializeError(
            f"weights file {path} is for space {net.space.name!r}, the table for {table.space.name!r}"
        )
    # built at the table's size: 'same' padding depends on each layer's input size, as in the exported network
    at_size = Supernet(table.space)
    at_size.load_state_dict(net.state_dict())
    return at_size.eval()


def at_trained_size(space: SearchSpace, trained: SearchSpace, sizes: tuple[int, ...]) -> bool:
    """`space` is the weights' own network at another input size their run trained at (elastic resolution's
    `sizes`): the same weights serve it, fed images of that size."""
    at_size = dataclasses.replace(trained, name=space.name, resolution=space.resolution)
    return space.resolution in sizes and at_size.fingerprint == space.fingerprint


def validate_table(
    table: AccuracyTable, dataset: ImageDataset, samples: int, seed: int = 0, progress=lambda i, n: None
) -> Fidelity:
    from scipy.stats import kendalltau, spearmanr

    if samples < 3:
        raise SpecializeError(f"--samples must be at least 3 to correlate rankings, got {samples}")
    net = load_table_weights(table)
    res = net.space.resolution
    calib = calibration_batches(dataset, res)
    test_x = to_tensor(dataset.test_images, res)
    test_y = torch.from_numpy(dataset.test_labels)
    rows = np.arange(table.space.num_layers)
    arrays = cost_arrays(table.space)
    results = []
    for i, arch in enumerate(spread_architectures(table.space, samples, seed)):
        predicted = float(table.loss[rows, np.asarray(arch.indices)].sum())
        accuracy = subnet_accuracy(net, arch, test_x, test_y, calib)
        macs = int(arrays.macs[rows, np.asarray(arch.indices)].sum() + arrays.fixed_macs)
        results.append({"arch": str(arch), "predicted": predicted, "accuracy": accuracy, "macs": macs})
        progress(i + 1, samples)
    predicted = [r["predicted"] for r in results]
    measured = [r["accuracy"] for r in results]
    return Fidelity(float(kendalltau(predicted, measured)[0]), float(spearmanr(predicted, measured)[0]), results)


def scatter_plot(fidelity: Fidelity, path: str | Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    ax.scatter([s["predicted"] for s in fidelity.samples], [100 * s["accuracy"] for s in fidelity.samples], s=18)
    ax.set_xlabel("predicted score: sum over layers of T_d")
    ax.set_ylabel("measured test accuracy (%)")
    ax.set_title(
        f"{title}\nKendall tau {fidelity.kendall_tau:.3f}, Spearman rho {fidelity.spearman_rho:.3f}", fontsize=9
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

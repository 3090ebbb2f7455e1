"""Many splits x initializations of one method: the evaluation protocol.

The paper's node-classification tables (Wang, Bao & Shi, 2024) report test
accuracy as mean +- std over random splits of the labeled nodes and over
initial weights. `run_protocol` trains a
`keras_cd.node_classification.NodeClassificationTrainer` on every (split,
initialization) pair and returns a `ProtocolResult`; a run whose loss or
validation metric is not finite raises `RunFailedError` and is recorded as
failed, never averaged. `keras_cd.forecasting.run_protocol` is its twin for
the forecasting experiment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from keras_cd._protocol import RunFailedError, mean_std, run_pairs, seeds, summary

if TYPE_CHECKING:
    from keras_cd.node_classification.trainer import NodeClassificationTrainer, RunResult

__all__ = ["ProtocolResult", "RunFailedError", "run_protocol", "seeds"]


@dataclasses.dataclass
class ProtocolResult:
    """Test accuracies (in %, one per finished run, in run order), timing and failures.

    The per-run lists hold the FINISHED runs only, aligned; a run whose loss
    or validation metric was not finite is in `failed` instead and never in
    the mean. The figures are over the R finished runs:

        mean = (1 / R) * sum_r accuracies[r],
        std = sqrt((1 / R) * sum_r (accuracies[r] - mean)^2).

    Attributes:
        accuracies: list of float, each run's test accuracy in %.
        validation_accuracies: list of float, each run's validation
            accuracy in %.
        epochs: list of int, each run's epochs trained (early stopping).
        seconds: float, wall-clock seconds for all runs, failed ones
            included.
        split_seeds: list of int, each run's split seed.
        init_seeds: list of int, each run's initialization seed.
        failed: list of dict, the failed runs (split_seed, init_seed, epoch,
            reason). Defaults to `[]`.

    Example:
    >>> import keras_cd
    >>> result = keras_cd.node_classification.ProtocolResult(
    ...     accuracies=[80.0, 84.0], validation_accuracies=[79.0, 81.0], epochs=[120, 95],
    ...     seconds=3.0, split_seeds=[0, 0], init_seeds=[0, 1])
    >>> result.summary()
    '82.00 ± 2.00 over 2 runs'
    """

    accuracies: list[float]
    validation_accuracies: list[float]
    epochs: list[int]
    seconds: float  # wall-clock seconds for all runs, failed ones included
    split_seeds: list[int]
    init_seeds: list[int]
    failed: list[dict] = dataclasses.field(default_factory=list)

    @property
    def runs(self) -> int:
        """The number of finished runs (failed ones not counted)."""
        return len(self.accuracies)

    @property
    def mean(self) -> float:
        """Mean test accuracy over finished runs (NaN when none finished)."""
        return mean_std(self.accuracies)[0]

    @property
    def std(self) -> float:
        """Standard deviation (ddof=0) of the test accuracy over finished runs."""
        return mean_std(self.accuracies)[1]

    @property
    def seconds_per_run(self) -> float:
        """Wall-clock seconds per run, failed runs included."""
        return self.seconds / max(self.runs + len(self.failed), 1)

    def summary(self) -> str:
        """`MEAN ± STD over N runs`, and how many failed when some did."""
        return summary(self.mean, self.std, self.runs, self.failed, 2)


def run_protocol(
    trainer: NodeClassificationTrainer,
    num_splits: int,
    num_inits: int,
    seed: int = 0,
    workers: int = 1,
    callback: Callable[[RunResult], object] | None = None,
    on_failure: str = "record",
) -> ProtocolResult:
    """Trains `trainer` on every (split, initialization) of the protocol.

    Split seeds are `seed + s` (`keras_cd.datasets.random_split(labels,
    seed=seed + s)`), initialization seeds `seed * 1000 + s * num_inits +
    i` (`keras_cd.node_classification.protocol.seeds`); the runs of one split share
    its precomputed inputs.

    Args:
        trainer: a `keras_cd.node_classification.NodeClassificationTrainer`.
        num_splits: int >= 1, random splits.
        num_inits: int >= 1, initializations per split.
        seed: int, the first split seed. Defaults to `0`.
        workers: int >= 1, runs trained at a time, each worker with its own
            copy of the trainer (its own model and compiled run, in a
            thread; both CPU cores work); the results are the same, run by
            run, as with one worker. Defaults to `1`.
        callback: callable or None, called as `callback(result)` with each
            finished run's `RunResult` (e.g. a progress bar). Defaults to
            `None`.
        on_failure: `"record"` (a run whose loss or validation metric is not
            finite is recorded in `failed` and left out of every figure) or
            `"raise"` (the first failed run's `RunFailedError` stops the
            protocol). Defaults to `"record"`.

    Returns:
        A `ProtocolResult`.

    Raises:
        RunFailedError: with `on_failure="raise"`, for the first failed run.
        ValueError: for an invalid argument.

    Example:
    Two communities of 60 nodes, SGC on 2 splits x 1 initialization:

    >>> import numpy as np, scipy.sparse as sp, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 60)
    >>> edges = np.triu(rng.random((120, 120)) < np.where(labels[:, None] == labels, 0.1, 0.01), 1)
    >>> features = np.eye(2)[labels] + rng.normal(size=(120, 2))
    >>> adjacency = sp.csr_matrix(edges + edges.T, dtype="float32")
    >>> data = keras_cd.datasets.GraphData(
    ...     adjacency, sp.csr_matrix(features, dtype="float32"), labels, ["a", "b"], np.arange(120))
    >>> trainer = keras_cd.node_classification.NodeClassificationTrainer(
    ...     data, "sgc", max_epochs=30, patience=10, jit_compile=False)
    >>> result = keras_cd.node_classification.run_protocol(trainer, num_splits=2, num_inits=1)
    >>> result.split_seeds, result.init_seeds, result.mean > 80  # chance: 50%
    ([0, 1], [0, 1], True)
    """
    pairs = seeds(num_splits, num_inits, seed)
    finished, failed, elapsed = run_pairs(trainer, pairs, workers, callback, on_failure)
    return ProtocolResult(
        [100 * r.test_accuracy for _, r in finished],
        [100 * r.validation_accuracy for _, r in finished],
        [r.epochs for _, r in finished],
        elapsed,
        [p[0] for p, _ in finished],
        [p[1] for p, _ in finished],
        failed,
    )

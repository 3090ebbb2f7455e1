"""Many splits x initialisations of one method: the evaluation protocol."""

import dataclasses

from keras_cd._protocol import RunFailedError, mean_std, run_pairs, seeds, summary

__all__ = ["ProtocolResult", "RunFailedError", "run_protocol", "seeds"]


@dataclasses.dataclass
class ProtocolResult:
    """Test accuracies (in %, one per finished run, in run order), timing and failures.

    The per-run lists (`accuracies`, `validation_accuracies`, `epochs`,
    `split_seeds`, `init_seeds`) hold the FINISHED runs only, aligned; a run
    whose loss or validation metric was not finite is in `failed` instead
    (dicts: split_seed, init_seed, epoch, reason) and never in the mean.
    """

    accuracies: list
    validation_accuracies: list
    epochs: list
    seconds: float  # wall-clock seconds for all runs, failed ones included
    split_seeds: list
    init_seeds: list
    failed: list = dataclasses.field(default_factory=list)

    @property
    def runs(self):
        """The number of finished runs (failed ones not counted)."""
        return len(self.accuracies)

    @property
    def mean(self):
        """Mean test accuracy over finished runs (NaN when none finished)."""
        return mean_std(self.accuracies)[0]

    @property
    def std(self):
        return mean_std(self.accuracies)[1]

    @property
    def seconds_per_run(self):
        return self.seconds / max(self.runs + len(self.failed), 1)

    def summary(self):
        """`MEAN ± STD over N runs`, and how many failed when some did."""
        return summary(self.mean, self.std, self.runs, self.failed, 2)


def run_protocol(
    trainer, num_splits, num_inits, seed=0, workers=1, callback=None, on_failure="record"
):
    """Trains `trainer` on every (split, init) of the protocol; a `ProtocolResult`.

    `workers` > 1 trains that many runs at a time, each worker with its own
    copy of the trainer (its own model and compiled run, in a thread; both
    CPU cores work): the results are the same, run by run, as with one
    worker. `callback(result)` is called after each finished run (e.g. a
    progress bar). A run whose loss or validation metric is not finite
    (`RunFailedError`) is recorded in `failed` and left out of every figure
    (`on_failure="record"`, the default) or stops the protocol with that
    error (`on_failure="raise"`).
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

"""Many splits x initialisations of one method: the evaluation protocol."""

import dataclasses

import numpy as np

from keras_cd._protocol import run_pairs, seeds

__all__ = ["ProtocolResult", "run_protocol", "seeds"]


@dataclasses.dataclass
class ProtocolResult:
    """Test accuracies (in %, one per run, in run order) and timing of a protocol."""

    accuracies: list
    validation_accuracies: list
    epochs: list
    seconds: float  # wall-clock seconds for all runs
    split_seeds: list
    init_seeds: list

    @property
    def runs(self):
        return len(self.accuracies)

    @property
    def mean(self):
        return float(np.mean(self.accuracies))

    @property
    def std(self):
        return float(np.std(self.accuracies))

    @property
    def seconds_per_run(self):
        return self.seconds / max(self.runs, 1)

    def summary(self):
        return f"{self.mean:.2f} ± {self.std:.2f} over {self.runs} runs"


def run_protocol(trainer, num_splits, num_inits, seed=0, workers=1, callback=None):
    """Trains `trainer` on every (split, init) of the protocol; a `ProtocolResult`.

    `workers` > 1 trains that many runs at a time, each worker with its own
    copy of the trainer (its own model and compiled run, in a thread; both
    CPU cores work): the results are the same, run by run, as with one
    worker. `callback(result)` is called after each run (e.g. a progress bar).
    """
    pairs = seeds(num_splits, num_inits, seed)
    results, elapsed = run_pairs(trainer, pairs, workers, callback)
    return ProtocolResult(
        [100 * r.test_accuracy for r in results],
        [100 * r.validation_accuracy for r in results],
        [r.epochs for r in results],
        elapsed,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )

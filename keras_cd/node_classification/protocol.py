"""Many splits x initialisations of one method: the evaluation protocol."""

import dataclasses
import threading
import time

import numpy as np

from keras_cd import _validation


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


def seeds(num_splits, num_inits, seed=0):
    """The protocol's (split seed, init seed) pairs: splits `seed + s`, inits
    `seed * 1000 + s * num_inits + i`, as `examples/train_graph.py` has always used."""
    num_splits = _validation.positive_int("num_splits", num_splits, "Use e.g. 100.")
    num_inits = _validation.positive_int("num_inits", num_inits, "Use e.g. 20.")
    seed = _validation.integer("seed", seed, "Use e.g. 0.")
    return [
        (seed + s, seed * 1000 + s * num_inits + i)
        for s in range(num_splits)
        for i in range(num_inits)
    ]


def run_protocol(trainer, num_splits, num_inits, seed=0, workers=1, callback=None):
    """Trains `trainer` on every (split, init) of the protocol; a `ProtocolResult`.

    `workers` > 1 trains that many runs at a time, each worker with its own
    copy of the trainer (its own model and compiled run, in a thread; both
    CPU cores work): the results are the same, run by run, as with one
    worker. `callback(result)` is called after each run (e.g. a progress bar).
    """
    pairs = seeds(num_splits, num_inits, seed)
    workers = _validation.positive_int("workers", workers, "Use 1, or 2 on two cores.")
    trainers = [trainer] + [trainer.copy() for _ in range(min(workers, num_splits) - 1)]
    results = [None] * len(pairs)
    lock = threading.Lock()
    by_split = {}
    for index, (split, _) in enumerate(pairs):
        by_split.setdefault(split, []).append(index)
    queue = list(by_split.values())  # whole splits per worker: rows are computed once
    errors = []

    def work(worker):
        while not errors:
            with lock:
                if not queue:
                    return
                indices = queue.pop(0)
            try:
                for index in indices:
                    results[index] = worker.run(*pairs[index])
                    if callback is not None:
                        with lock:
                            callback(results[index])
            except BaseException as error:  # re-raised in the calling thread
                errors.append(error)
                return

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(t,)) for t in trainers[1:]]
    for thread in threads:
        thread.start()
    work(trainers[0])
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    elapsed = time.perf_counter() - start
    return ProtocolResult(
        [100 * r.test_accuracy for r in results],
        [100 * r.validation_accuracy for r in results],
        [r.epochs for r in results],
        elapsed,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )

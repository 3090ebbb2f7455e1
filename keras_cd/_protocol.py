"""Many (split, initialization) runs of one trainer, on one or more threads.

What the two evaluation protocols of the paper's graph experiments share
(`keras_cd.node_classification.run_protocol` and
`keras_cd.forecasting.run_protocol`): the seeds of each run, running the
runs on worker threads, failed runs, and the mean +- std summary. A run
whose training loss or validation metric stops being finite raises
`RunFailedError` (naming split, init and epoch) from `trainer.run`; its
weights and figures are never reported. `run_pairs` either records it as
failed and goes on (`on_failure="record"`) or re-raises it (`"raise"`);
the protocols then average finished runs only and say how many failed.
"""

from __future__ import annotations

import math
import threading
import time

from keras_cd import _validation

ON_FAILURE = ("record", "raise")


class RunFailedError(FloatingPointError):
    """A run whose training loss, validation metric or predictions became NaN or infinite.

    Raised by the trainers' `run` (`keras_cd.node_classification` and
    `keras_cd.forecasting`); the protocols record it (`record()`) and leave
    the run out of every figure, or re-raise it. A `FloatingPointError`.

    Args:
        split_seed: int, the run's split (or masking) seed.
        init_seed: int, the run's initialization seed.
        epoch: int, the epoch (1-based) whose figures were not finite.
        reason: str, which quantity and its value.
        fix: str, how to avoid it, appended to the message.

    Attributes:
        split_seed: int, the run's split (or masking) seed.
        init_seed: int, the run's initialization seed.
        epoch: int, the epoch (1-based) whose figures were not finite; after
            the last epoch when the final evaluation was.
        reason: str, which quantity and its value.

    Example:
    >>> import keras_cd
    >>> error = keras_cd.node_classification.RunFailedError(
    ...     0, 3, 12, "training loss = nan", "Lower the learning rate.")
    >>> str(error).startswith("Run (split_seed=0, init_seed=3) failed at epoch 12: training")
    True
    >>> error.record()
    {'split_seed': 0, 'init_seed': 3, 'epoch': 12, 'reason': 'training loss = nan'}
    """

    def __init__(self, split_seed: int, init_seed: int, epoch: int, reason: str, fix: str) -> None:
        self.split_seed, self.init_seed = int(split_seed), int(init_seed)
        self.epoch, self.reason = int(epoch), reason
        super().__init__(
            f"Run (split_seed={self.split_seed}, init_seed={self.init_seed}) failed at epoch "
            f"{self.epoch}: {reason}. Its weights and figures are discarded. {fix}"
        )

    def record(self) -> dict:
        """The failure as a JSON-ready dict: split_seed, init_seed, epoch, reason.

        Returns:
            dict, what `ProtocolResult.failed` lists.
        """
        return {
            "split_seed": self.split_seed,
            "init_seed": self.init_seed,
            "epoch": self.epoch,
            "reason": self.reason,
        }


def finite(value):
    """Whether a Python or NumPy number is neither NaN nor infinite."""
    return math.isfinite(float(value))


def mean_std(values):
    """(mean, std) of a list of numbers (std with ddof=0); (nan, nan) for an empty one."""
    import numpy as np

    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values))


def summary(mean, std, runs, failed, digits):
    """`MEAN ± STD over N runs`, plus `(K failed)` when runs failed."""
    text = f"{mean:.{digits}f} ± {std:.{digits}f} over {runs} runs" if runs else "no finished run"
    if failed:
        seeds = ", ".join(f"{f['split_seed']}/{f['init_seed']}" for f in failed[:3])
        more = ", ..." if len(failed) > 3 else ""
        text += f" ({len(failed)} failed, split/init {seeds}{more}: not averaged)"
    return text


def seeds(num_splits: int, num_inits: int, seed: int = 0) -> list[tuple[int, int]]:
    """The protocol's (split seed, init seed) pairs.

    Splits `seed + s`, inits `seed * 1000 + s * num_inits + i`, as
    `examples/train_graph.py` has always used.

    Args:
        num_splits: int >= 1.
        num_inits: int >= 1, initializations per split.
        seed: int, the first split seed. Defaults to `0`.

    Returns:
        list of `(split_seed, init_seed)`, split by split.

    Raises:
        ValueError: for an invalid argument.

    Example:
    >>> from keras_cd.node_classification.protocol import seeds
    >>> seeds(2, 2, seed=1)
    [(1, 1000), (1, 1001), (2, 1002), (2, 1003)]
    """
    num_splits = _validation.positive_int("num_splits", num_splits, "Use e.g. 100.")
    num_inits = _validation.positive_int("num_inits", num_inits, "Use e.g. 20.")
    seed = _validation.integer("seed", seed, "Use e.g. 0.")
    return [
        (seed + s, seed * 1000 + s * num_inits + i)
        for s in range(num_splits)
        for i in range(num_inits)
    ]


def method_settings(methods, method, settings, fix):
    """`methods[method]`'s defaults updated with `settings`; unknown names refused."""
    method = _validation.one_of("method", method, tuple(methods), fix)
    unknown = sorted(set(settings) - set(methods[method]))
    if unknown:
        raise ValueError(
            f"Invalid setting for method {method!r}: {unknown}. Expected some of "
            f"{sorted(methods[method])}. Received: {dict(settings)}."
        )
    return {**methods[method], **settings}


def restart(model, fresh, optimizer, optimizer_values):
    """Puts a run back at its start without tracing anything again.

    Assigns `fresh`'s (a newly built, seeded model of the same architecture)
    weights and random-seed states into `model`, and the optimizer's
    initial values into `optimizer`.
    """
    from keras_cd._noise import random_seed_states

    for variable, value in zip(model.trainable_weights, fresh.trainable_weights):
        variable.assign(value)
    for variable, value in zip(random_seed_states(model), random_seed_states(fresh)):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, optimizer_values):
        variable.assign(value)


def run_pairs(trainer, pairs, workers=1, callback=None, on_failure="record"):
    """`trainer.run(split, init)` for every pair; (finished, failed, wall seconds).

    `finished` is a list of `(pair, result)` in pair order, `failed` a list
    of `RunFailedError.record()` dicts in pair order. With
    `on_failure="raise"` the first failed run's `RunFailedError` is raised
    instead. `workers` > 1 trains that many runs at a time, each worker with
    its own copy of the trainer (`trainer.copy()`: its own model and compiled
    run, in a thread); each worker takes whole splits, so per-split work is
    done once, and the results are the same, run by run, as with one worker.
    `callback(result)` is called after each finished run (e.g. a progress bar).
    """
    workers = _validation.positive_int("workers", workers, "Use 1, or 2 on two cores.")
    on_failure = _validation.one_of(
        "on_failure", on_failure, ON_FAILURE, "Use 'record' (go on) or 'raise' (stop)."
    )
    by_split = {}
    for index, (split, _) in enumerate(pairs):
        by_split.setdefault(split, []).append(index)
    queue = list(by_split.values())
    trainers = [trainer] + [trainer.copy() for _ in range(min(workers, len(queue)) - 1)]
    results = [None] * len(pairs)
    lock = threading.Lock()
    errors = []

    def work(worker):
        while not errors:
            with lock:
                if not queue:
                    return
                indices = queue.pop(0)
            try:
                for index in indices:
                    try:
                        results[index] = worker.run(*pairs[index])
                    except RunFailedError as failure:
                        if on_failure == "raise":
                            raise
                        results[index] = failure
                        continue
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
    finished = [(p, r) for p, r in zip(pairs, results) if not isinstance(r, RunFailedError)]
    failed = [r.record() for r in results if isinstance(r, RunFailedError)]
    return finished, failed, time.perf_counter() - start

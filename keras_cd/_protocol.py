"""Many (split, initialisation) runs of one trainer, on one or more threads."""

import threading
import time

from keras_cd import _validation


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
    """Puts a run back at its start without tracing anything again: `fresh`'s
    (a newly built, seeded model of the same architecture) weights and
    random-seed states into `model`, and the optimizer's initial values."""
    from keras_cd._noise import random_seed_states

    for variable, value in zip(model.trainable_weights, fresh.trainable_weights):
        variable.assign(value)
    for variable, value in zip(random_seed_states(model), random_seed_states(fresh)):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, optimizer_values):
        variable.assign(value)


def run_pairs(trainer, pairs, workers=1, callback=None):
    """`trainer.run(split, init)` for every pair; (results in pair order, wall seconds).

    `workers` > 1 trains that many runs at a time, each worker with its own
    copy of the trainer (`trainer.copy()`: its own model and compiled run, in
    a thread); each worker takes whole splits, so per-split work is done
    once, and the results are the same, run by run, as with one worker.
    `callback(result)` is called after each run (e.g. a progress bar).
    """
    workers = _validation.positive_int("workers", workers, "Use 1, or 2 on two cores.")
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
    return results, time.perf_counter() - start

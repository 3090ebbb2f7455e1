"""Batched Monte-Carlo over many noisy copies of many inputs."""

import numpy as np


def reduce_copies(run, x, num_samples, batch_size, reduce):
    """Runs `run` on `num_samples` copies of each row of `x`, `batch_size` rows at a time.

    `reduce(outputs, owner, totals)` folds one batch of outputs into `totals`
    (`owner[i]` is the row of `x` that output i is a copy of); returns totals.
    Memory stays bounded by one batch whatever `num_samples` is.
    """
    total = len(x) * num_samples
    totals = None
    for start in range(0, total, batch_size):
        owner = np.arange(start, min(start + batch_size, total)) // num_samples
        totals = reduce(np.asarray(run(x[owner])), owner, totals)
    return totals


def mean_and_standard_error(run, x, num_samples, batch_size):
    """Mean of `run` over the copies of each row, and the standard error of that mean."""

    def moments(outputs, owner, totals):
        outputs = outputs.astype(np.float64)
        if totals is None:
            shape = (len(x),) + outputs.shape[1:]
            totals = (np.zeros(shape), np.zeros(shape))
        np.add.at(totals[0], owner, outputs)
        np.add.at(totals[1], owner, outputs**2)
        return totals

    total, squares = reduce_copies(run, x, num_samples, batch_size, moments)
    mean = total / num_samples
    variance = (
        np.maximum(squares / num_samples - mean**2, 0.0) * num_samples / max(num_samples - 1, 1)
    )
    return mean, np.sqrt(variance / num_samples)

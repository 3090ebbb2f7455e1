"""Many maskings x initializations of one forecasting method: the evaluation protocol.

The paper's case-forecasting experiment (Wang, Bao & Shi, 2024) reports the
test MSE of COIN and its baselines as mean +- std over runs that differ in
which 90% of the data are hidden and in the initial weights. `run_protocol`
trains a `keras_cd.forecasting.ForecastingTrainer` on every (masking,
initialization) pair, with the seeds of the node-classification protocol
(`keras_cd.node_classification.run_protocol`), and returns a
`ProtocolResult`; a run whose loss or predictions are not finite raises
`RunFailedError` and is recorded as failed, never averaged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from keras_cd._deprecation import deprecated_aliases
from keras_cd._protocol import RunFailedError, mean_std, run_pairs, seeds, summary

if TYPE_CHECKING:
    from keras_cd.forecasting.trainer import ForecastingTrainer, RunResult

__all__ = ["ProtocolResult", "RunFailedError", "run_protocol"]


@dataclasses.dataclass
class ProtocolResult:
    """Test and validation MSEs (one per finished run, in run order), timing, failures.

    The per-run lists hold the FINISHED runs only, aligned; a run whose loss
    or predictions were not finite is in `failed` instead and never in a
    mean. The figures are over the finished runs:

        mean = (1 / R) * sum_r test_mse[r],
        std = sqrt((1 / R) * sum_r (test_mse[r] - mean)^2).

    Attributes:
        test_mse: list of float, each run's test MSE in standardized units.
        validation_mse: list of float, each run's validation MSE (observed
            targets only), standardized.
        seconds: float, wall-clock seconds for all runs, failed ones
            included.
        split_seeds: list of int, each run's masking seed.
        init_seeds: list of int, each run's initialization seed.
        test_mse_cases: list of float, each run's test MSE in cases
            squared. Defaults to `[]`.
        failed: list of dict, the failed runs (split_seed, init_seed, epoch,
            reason). Defaults to `[]`.
        standardization: str, the trainer's `standardization`. Defaults to
            `"training"`.

    Example:
    >>> import keras_cd
    >>> result = keras_cd.forecasting.ProtocolResult(
    ...     test_mse=[0.5, 0.7], validation_mse=[0.4, 0.6], seconds=2.0,
    ...     split_seeds=[42, 43], init_seeds=[42000, 42001])
    >>> result.summary()
    '0.6000 ± 0.1000 over 2 runs'
    """

    test_mse: list[float]
    validation_mse: list[float]
    seconds: float  # wall-clock seconds for all runs, failed ones included
    split_seeds: list[int]
    init_seeds: list[int]
    test_mse_cases: list[float] = dataclasses.field(default_factory=list)
    failed: list[dict] = dataclasses.field(default_factory=list)
    standardization: str = "training"

    @property
    def runs(self) -> int:
        """The number of finished runs (failed ones not counted)."""
        return len(self.test_mse)

    @property
    def mean(self) -> float:
        """Mean test MSE (standardized) over finished runs (NaN when none finished)."""
        return mean_std(self.test_mse)[0]

    @property
    def std(self) -> float:
        """Standard deviation (ddof=0) of the standardized test MSE over finished runs."""
        return mean_std(self.test_mse)[1]

    @property
    def mean_cases(self) -> float:
        """Mean test MSE in cases squared over finished runs."""
        return mean_std(self.test_mse_cases)[0]

    @property
    def std_cases(self) -> float:
        """Standard deviation (ddof=0) of the test MSE in cases squared over finished runs."""
        return mean_std(self.test_mse_cases)[1]

    @property
    def seconds_per_run(self) -> float:
        """Wall-clock seconds per run, failed runs included."""
        return self.seconds / max(self.runs + len(self.failed), 1)

    def summary(self) -> str:
        """`MEAN ± STD over N runs` of the standardized test MSE, and how many failed."""
        return summary(self.mean, self.std, self.runs, self.failed, 4)

    def summary_cases(self) -> str:
        """The same for the test MSE in cases squared."""
        return summary(self.mean_cases, self.std_cases, self.runs, self.failed, 1)

    def to_json(self) -> dict:
        """A JSON-ready dict: the means (None when no run finished), every run, failures."""

        def figure(mean, std):
            return {"mean": mean if self.runs else None, "std": std if self.runs else None}

        return {
            "standardization": self.standardization,
            "test_mse": {**figure(self.mean, self.std), "runs": self.runs},
            "test_mse_cases": {**figure(self.mean_cases, self.std_cases), "runs": self.runs},
            "seconds_per_run": self.seconds_per_run,
            "runs": [
                {
                    "split_seed": s,
                    "init_seed": i,
                    "test_mse": t,
                    "test_mse_cases": c,
                    "validation_mse": v,
                }
                for s, i, t, c, v in zip(
                    self.split_seeds,
                    self.init_seeds,
                    self.test_mse,
                    self.test_mse_cases,
                    self.validation_mse,
                )
            ],
            "failed": self.failed,
        }


def run_protocol(
    trainer: ForecastingTrainer,
    num_splits: int = 10,
    num_inits: int = 10,
    seed: int = 42,
    workers: int = 1,
    callback: Callable[[RunResult], object] | None = None,
    on_failure: str = "record",
) -> ProtocolResult:
    """Trains `trainer` on every (masking, initialization) of the protocol.

    Masking seeds are `seed + s` (each mask drawn from `RandomState(seed +
    s)`), initialization seeds `seed * 1000 + s * num_inits + i`, as the
    node-classification protocol (`keras_cd.node_classification.run_protocol`).
    The runs of one masking share its snapshots (computed once).

    Args:
        trainer: a `keras_cd.forecasting.ForecastingTrainer`.
        num_splits: int >= 1, maskings. Defaults to `10`.
        num_inits: int >= 1, initializations per masking. Defaults to `10`.
        seed: int, the first masking seed. Defaults to `42`.
        workers: int >= 1, runs trained at a time, each worker with its own
            copy of the trainer (its own model and compiled run, in a
            thread); the results are the same, run by run, as with one
            worker. Defaults to `1`.
        callback: callable or None, called as `callback(run)` with each
            finished run's `RunResult`. Defaults to `None`.
        on_failure: `"record"` (a failed run is recorded in `failed` and left
            out of every figure) or `"raise"` (the first failed run's
            `RunFailedError` stops the protocol). Defaults to `"record"`.

    Returns:
        A `ProtocolResult`.

    Raises:
        RunFailedError: with `on_failure="raise"`, for the first failed run.
        ValueError: for an invalid argument.

    Example:
    >>> import numpy as np, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> cases = rng.poisson(20, (30, 5)).astype(float)  # 30 days, 5 regions
    >>> edges = [(np.arange(4), np.arange(1, 5), np.ones(4))] * 30  # one graph a day
    >>> data = keras_cd.datasets.CovidData(cases, edges)
    >>> trainer = keras_cd.forecasting.ForecastingTrainer(data, "linear", missing_rate=0.5)
    >>> result = keras_cd.forecasting.run_protocol(trainer, num_splits=2, num_inits=1, seed=42)
    >>> result.split_seeds, result.init_seeds, result.runs
    ([42, 43], [42000, 42001], 2)
    """
    pairs = seeds(num_splits, num_inits, seed)
    finished, failed, elapsed = run_pairs(trainer, pairs, workers, callback, on_failure)
    return ProtocolResult(
        [r.test_mse for _, r in finished],
        [r.validation_mse for _, r in finished],
        elapsed,
        [p[0] for p, _ in finished],
        [p[1] for p, _ in finished],
        [r.test_mse_cases for _, r in finished],
        failed,
        trainer.standardization,
    )


# The deprecated names, removed in keras_cd 0.3.
__getattr__ = deprecated_aliases(
    __name__,
    {"ForecastProtocolResult": "ProtocolResult", "run_forecasting_protocol": "run_protocol"},
    globals(),
)

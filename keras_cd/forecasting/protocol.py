"""Many maskings x initialisations of one forecasting method."""

import dataclasses

from keras_cd._protocol import RunFailedError, mean_std, run_pairs, seeds, summary

__all__ = ["ForecastProtocolResult", "RunFailedError", "run_forecasting_protocol"]


@dataclasses.dataclass
class ForecastProtocolResult:
    """Test and validation MSEs (one per finished run, in run order), timing, failures.

    The per-run lists (`test_mse` and `validation_mse` in standardised units,
    `test_mse_cases` in cases squared, `split_seeds`, `init_seeds`) hold the
    FINISHED runs only, aligned; a run whose loss or predictions were not
    finite is in `failed` instead (dicts: split_seed, init_seed, epoch,
    reason) and never in a mean.
    """

    test_mse: list
    validation_mse: list
    seconds: float  # wall-clock seconds for all runs, failed ones included
    split_seeds: list
    init_seeds: list
    test_mse_cases: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)
    standardization: str = "training"

    @property
    def runs(self):
        """The number of finished runs (failed ones not counted)."""
        return len(self.test_mse)

    @property
    def mean(self):
        """Mean test MSE (standardised) over finished runs (NaN when none finished)."""
        return mean_std(self.test_mse)[0]

    @property
    def std(self):
        return mean_std(self.test_mse)[1]

    @property
    def mean_cases(self):
        """Mean test MSE in cases squared over finished runs."""
        return mean_std(self.test_mse_cases)[0]

    @property
    def std_cases(self):
        return mean_std(self.test_mse_cases)[1]

    @property
    def seconds_per_run(self):
        return self.seconds / max(self.runs + len(self.failed), 1)

    def summary(self):
        """`MEAN ± STD over N runs` of the standardised test MSE, and how many failed."""
        return summary(self.mean, self.std, self.runs, self.failed, 4)

    def summary_cases(self):
        """The same for the test MSE in cases squared."""
        return summary(self.mean_cases, self.std_cases, self.runs, self.failed, 1)

    def to_json(self):
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


def run_forecasting_protocol(
    trainer, num_splits=10, num_inits=10, seed=42, workers=1, callback=None, on_failure="record"
):
    """Every (masking, initialisation) of the protocol; a `ForecastProtocolResult`.

    Masking seeds are `seed + s` (each mask drawn from `RandomState(seed + s)`),
    initialisation seeds `seed * 1000 + s * num_inits + i`, as the node
    classification protocol (`keras_cd.node_classification.run_protocol`).
    A run that fails (`RunFailedError`: a loss or prediction not finite) is
    recorded in `failed` and left out of every figure (`on_failure="record"`,
    the default) or stops the protocol with that error (`"raise"`).
    `callback(run)` is called after each finished run.
    """
    pairs = seeds(num_splits, num_inits, seed)
    finished, failed, elapsed = run_pairs(trainer, pairs, workers, callback, on_failure)
    return ForecastProtocolResult(
        [r.test_mse for _, r in finished],
        [r.validation_mse for _, r in finished],
        elapsed,
        [p[0] for p, _ in finished],
        [p[1] for p, _ in finished],
        [r.test_mse_cases for _, r in finished],
        failed,
        trainer.standardization,
    )

"""Many maskings x initialisations of one forecasting method."""

import dataclasses

import numpy as np

from keras_cd._protocol import run_pairs, seeds


@dataclasses.dataclass
class ForecastProtocolResult:
    """Test and validation MSEs (one per run, in run order) and timing."""

    test_mse: list
    validation_mse: list
    seconds: float  # wall-clock seconds for all runs
    split_seeds: list
    init_seeds: list

    @property
    def runs(self):
        return len(self.test_mse)

    @property
    def mean(self):
        return float(np.mean(self.test_mse))

    @property
    def std(self):
        return float(np.std(self.test_mse))

    @property
    def seconds_per_run(self):
        return self.seconds / max(self.runs, 1)

    def summary(self):
        return f"{self.mean:.4f} ± {self.std:.4f} over {self.runs} runs"

    def to_json(self):
        return {
            "test_mse": {"mean": self.mean, "std": self.std, "runs": self.runs},
            "seconds_per_run": self.seconds_per_run,
            "runs": [
                {"split_seed": s, "init_seed": i, "test_mse": t, "validation_mse": v}
                for s, i, t, v in zip(
                    self.split_seeds, self.init_seeds, self.test_mse, self.validation_mse
                )
            ],
        }


def run_forecasting_protocol(
    trainer, num_splits=10, num_inits=10, seed=42, workers=1, callback=None
):
    """Every (masking, initialisation) of the protocol; a `ForecastProtocolResult`.

    Masking seeds are `seed + s` (each mask drawn from `RandomState(seed + s)`),
    initialisation seeds `seed * 1000 + s * num_inits + i`, as the node
    classification protocol (`keras_cd.node_classification.run_protocol`).
    """
    pairs = seeds(num_splits, num_inits, seed)
    results, elapsed = run_pairs(trainer, pairs, workers, callback)
    return ForecastProtocolResult(
        [r.test_mse for r in results],
        [r.validation_mse for r in results],
        elapsed,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )

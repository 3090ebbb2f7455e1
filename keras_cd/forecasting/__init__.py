"""Forecasting on a sequence of graphs with most observations missing (COIN's COVID task).

- `ForecastingTrainer`: one method on the England COVID data
  (`keras_cd.datasets.load_england_covid`), one compiled run per
  (masking, initialisation); each region standardised on its observed
  entries of the training and validation days (`standardization=
  "training"`) or as the reference code, on all days (`"reference"`);
- `METHODS`: COIN (`"coin"`, graph diffusion with dropout on each day's
  mobility graph) and the baselines `"mlp"`, `"gcn"` and `"linear"`;
- `forecasting_model`: the Keras networks;
- `run_forecasting_protocol`: maskings x initialisations, mean ± std of the
  test MSE (standardised and in cases) over the finished runs; a run whose
  loss or predictions are not finite raises `RunFailedError` (masking, init,
  epoch) and is recorded as failed.
"""

from keras_cd.forecasting.models import METHODS, GraphConvolution, forecasting_model
from keras_cd.forecasting.protocol import (
    ForecastProtocolResult,
    RunFailedError,
    run_forecasting_protocol,
)
from keras_cd.forecasting.trainer import STANDARDIZATIONS, ForecastingTrainer, ForecastRun, Masking

__all__ = [
    "METHODS",
    "STANDARDIZATIONS",
    "ForecastProtocolResult",
    "ForecastRun",
    "ForecastingTrainer",
    "GraphConvolution",
    "Masking",
    "RunFailedError",
    "forecasting_model",
    "run_forecasting_protocol",
]

"""Forecasting on a sequence of graphs with most observations missing (COIN's COVID task).

- `ForecastingTrainer`: one method on the England COVID data
  (`keras_cd.datasets.load_england_covid`), one compiled run per
  (masking, initialisation);
- `METHODS`: COIN (`"coin"`, graph diffusion with dropout on each day's
  mobility graph) and the baselines `"mlp"`, `"gcn"` and `"linear"`;
- `forecasting_model`: the Keras networks;
- `run_forecasting_protocol`: maskings x initialisations, mean ± std of the
  test MSE.
"""

from keras_cd.forecasting.models import METHODS, GraphConvolution, forecasting_model
from keras_cd.forecasting.protocol import ForecastProtocolResult, run_forecasting_protocol
from keras_cd.forecasting.trainer import ForecastingTrainer, ForecastRun

__all__ = [
    "METHODS",
    "ForecastProtocolResult",
    "ForecastRun",
    "ForecastingTrainer",
    "GraphConvolution",
    "forecasting_model",
    "run_forecasting_protocol",
]

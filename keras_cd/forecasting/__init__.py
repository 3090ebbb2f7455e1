"""Forecasting on a sequence of graphs with most observations missing (COIN's COVID task).

The paper's case-prediction experiment (Wang, Bao & Shi, 2024): daily
COVID-19 cases of the English regions, 90% of them hidden, forecast one day
ahead by COIN (a base network whose prediction diffuses over the day's
mobility graph, u_T = (I - sigma2 L)^K f(X)) and by its baselines, each
scored over many maskings and initializations. The harness has the same
shape as `keras_cd.node_classification`: a trainer, `run_protocol`,
`ProtocolResult` and `RunResult`.

- [`ForecastingTrainer`][keras_cd.forecasting.ForecastingTrainer]: one
  method on the England COVID data (`keras_cd.datasets.load_england_covid`),
  one compiled run per (masking, initialization), each a
  [`RunResult`][keras_cd.forecasting.RunResult]; each region standardized
  on its observed entries of the training and validation days
  (`standardization="training"`, one of
  [`STANDARDIZATIONS`][keras_cd.forecasting.STANDARDIZATIONS]) or as the
  reference code, on all days (`"reference"`); a masking's data is a
  [`Masking`][keras_cd.forecasting.Masking];
- [`METHODS`][keras_cd.forecasting.METHODS]: COIN (`"coin"`, graph
  diffusion with dropout on each day's mobility graph) and the baselines
  `"mlp"`, `"gcn"` and `"linear"`, with their default settings;
- [`forecasting_model`][keras_cd.forecasting.forecasting_model] and
  [`GraphConvolution`][keras_cd.forecasting.GraphConvolution]: the Keras
  networks;
- [`run_protocol`][keras_cd.forecasting.run_protocol]: maskings x
  initializations, a [`ProtocolResult`][keras_cd.forecasting.ProtocolResult]
  with mean ± std of the test MSE (standardized and in cases) over the
  finished runs; a run whose loss or predictions are not finite raises
  [`RunFailedError`][keras_cd.forecasting.RunFailedError] (masking, init,
  epoch) and is recorded as failed.

`run_forecasting_protocol`, `ForecastProtocolResult` and `ForecastRun` are
deprecated aliases of `run_protocol`, `ProtocolResult` and `RunResult`,
removed in keras_cd 0.3.

Example:
>>> import numpy as np, keras_cd
>>> rng = np.random.default_rng(0)
>>> cases = rng.poisson(20, (30, 5)).astype(float)  # 30 days, 5 regions
>>> edges = [(np.arange(4), np.arange(1, 5), np.ones(4))] * 30  # one graph a day
>>> data = keras_cd.datasets.CovidData(cases, edges)
>>> trainer = keras_cd.forecasting.ForecastingTrainer(data, "linear", missing_rate=0.5)
>>> result = keras_cd.forecasting.run_protocol(trainer, num_splits=2, num_inits=1)
>>> result.runs, bool(np.isfinite(result.mean))
(2, True)
"""

# First: a missing backend package gets an error that says how to fix it.
from keras_cd import _keras  # noqa: F401

# isort: split
from keras_cd._deprecation import deprecated_aliases
from keras_cd.forecasting.models import METHODS, GraphConvolution, forecasting_model
from keras_cd.forecasting.protocol import ProtocolResult, RunFailedError, run_protocol
from keras_cd.forecasting.trainer import (
    STANDARDIZATIONS,
    ForecastingTrainer,
    Masking,
    RunResult,
)

__all__ = [
    "METHODS",
    "STANDARDIZATIONS",
    "ForecastingTrainer",
    "GraphConvolution",
    "Masking",
    "ProtocolResult",
    "RunFailedError",
    "RunResult",
    "forecasting_model",
    "run_protocol",
]

# The deprecated names, removed in keras_cd 0.3.
__getattr__ = deprecated_aliases(
    __name__,
    {
        "ForecastProtocolResult": "ProtocolResult",
        "ForecastRun": "RunResult",
        "run_forecasting_protocol": "run_protocol",
    },
    globals(),
)

"""Semi-supervised node classification with COIN and its baselines, at full protocol.

The paper's node-classification experiment (Wang, Bao & Shi, 2024): COIN
diffuses a base classifier's class probabilities over the graph, the
diffusion half of the convection-diffusion equation, u_T = P softmax(f(X))
with P = (I - sigma2 L)^K, and is compared with APPNP and SGC over many
random splits and initializations, each method's setting chosen on
validation accuracy alone. The harness has the same shape as
`keras_cd.forecasting`: a trainer, `run_protocol`, `ProtocolResult` and
`RunResult`.

- [`NodeClassificationTrainer`][keras_cd.node_classification.NodeClassificationTrainer]:
  one method on one graph, one compiled run per (split, initialization),
  each a [`RunResult`][keras_cd.node_classification.RunResult];
- [`METHODS`][keras_cd.node_classification.METHODS]: COIN (`"coin"`) and
  the baselines APPNP and SGC, each a model on exactly precomputed
  propagation (`keras_cd.graph.diffusion_rows`), with their default
  settings;
- [`run_protocol`][keras_cd.node_classification.run_protocol]: many splits
  x initializations, a [`ProtocolResult`][keras_cd.node_classification.ProtocolResult]
  with mean ± std over the finished runs; a run whose loss or validation
  metric is not finite raises
  [`RunFailedError`][keras_cd.node_classification.RunFailedError] (split,
  init, epoch) and is recorded as failed;
- [`search`][keras_cd.node_classification.search]: model selection on
  validation accuracy only, over a space of
  [`SPACES`][keras_cd.node_classification.SPACES], a
  [`SearchResult`][keras_cd.node_classification.SearchResult] that
  [`load_setting`][keras_cd.node_classification.load_setting] reads back;
  [`label_overlap`][keras_cd.node_classification.label_overlap] measures
  which protocol test labels the search's splits read.

Example:
>>> import numpy as np, scipy.sparse as sp, keras_cd
>>> rng = np.random.default_rng(0)
>>> labels = np.repeat([0, 1], 60)  # two communities of 60 nodes
>>> edges = np.triu(rng.random((120, 120)) < np.where(labels[:, None] == labels, 0.1, 0.01), 1)
>>> features = np.eye(2)[labels] + rng.normal(size=(120, 2))
>>> adjacency = sp.csr_matrix(edges + edges.T, dtype="float32")
>>> data = keras_cd.datasets.GraphData(
...     adjacency, sp.csr_matrix(features, dtype="float32"), labels, ["a", "b"], np.arange(120))
>>> trainer = keras_cd.node_classification.NodeClassificationTrainer(
...     data, "sgc", max_epochs=30, patience=10, jit_compile=False)
>>> result = keras_cd.node_classification.run_protocol(trainer, num_splits=2, num_inits=2)
>>> result.runs, result.mean > 80  # test accuracy in %; chance: 50%
(4, True)
"""

# First: a missing backend package gets an error that says how to fix it.
from keras_cd import _keras  # noqa: F401

# isort: split
from keras_cd.node_classification.methods import METHODS
from keras_cd.node_classification.protocol import ProtocolResult, RunFailedError, run_protocol
from keras_cd.node_classification.search import (
    SPACES,
    SearchResult,
    label_overlap,
    load_setting,
    search,
)
from keras_cd.node_classification.trainer import NodeClassificationTrainer, RunResult

__all__ = [
    "METHODS",
    "SPACES",
    "NodeClassificationTrainer",
    "ProtocolResult",
    "RunFailedError",
    "RunResult",
    "SearchResult",
    "label_overlap",
    "load_setting",
    "run_protocol",
    "search",
]

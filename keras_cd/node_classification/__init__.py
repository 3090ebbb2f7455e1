"""Semi-supervised node classification with COIN and its baselines, at full protocol.

- `NodeClassificationTrainer`: one method on one graph, one compiled run per
  (split, initialisation);
- `METHODS`: COIN (`"coin"`) and the baselines APPNP and SGC, each a model on
  exactly precomputed propagation (`keras_cd.graph.diffusion_rows`);
- `run_protocol`: many splits x initialisations, mean ± std over the finished
  runs; a run whose loss or validation metric is not finite raises
  `RunFailedError` (split, init, epoch) and is recorded as failed;
- `search`: model selection on validation accuracy only.
"""

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

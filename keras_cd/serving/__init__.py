"""An ONNX model server with TensorFlow Serving's REST API: `keras-cd-serve`.

Serves what `keras_cd.export.to_onnx` writes with ONNX Runtime, on
Starlette and uvicorn, and imports neither Keras nor TensorFlow (an
ONNX-only process: `pip install 'keras-cd[serve]'` is all it needs).

- TensorFlow Serving's REST contract (`keras_cd.serving.app`): status,
  metadata in the SignatureDef layout, `:predict` in row and columnar
  format, `/versions/<v>` paths, `{"error": ...}` bodies.
- Versions (`ModelRepository`): a base folder of numbered versions; the
  newest complete one is served and a new one is picked up without a
  restart, while requests in flight finish on the version they started on.
- Dynamic batching (`Batcher`): concurrent requests merged into one ONNX
  Runtime call of up to `--max-batch-size` rows within
  `--batch-timeout-ms`, split back by row; each Monte-Carlo request draws
  its own noise.
- Faults (`keras_cd.serving.server`): idle and stalled connections cost no
  worker and are dropped after `--keep-alive` / `--timeout`; a full
  inference queue answers 503 with Retry-After; SIGTERM drains; readiness,
  liveness and Prometheus metrics (`Metrics`).

Command line: `keras-cd-serve MODEL --name NAME --port 8501` (or
`python -m keras_cd.serving`); see `keras_cd.serving.cli`.
"""

from keras_cd.serving.app import create_app
from keras_cd.serving.batching import Batcher, QueueFull
from keras_cd.serving.cli import main
from keras_cd.serving.metrics import Metrics
from keras_cd.serving.model import NOISE_INPUT, OnnxModel, ParsedRequest, RequestError
from keras_cd.serving.repository import ModelRepository
from keras_cd.serving.server import bind, serve

__all__ = [
    "NOISE_INPUT",
    "Batcher",
    "Metrics",
    "ModelRepository",
    "OnnxModel",
    "ParsedRequest",
    "QueueFull",
    "RequestError",
    "bind",
    "create_app",
    "main",
    "serve",
]

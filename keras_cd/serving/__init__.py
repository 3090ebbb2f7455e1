"""An ONNX model server with TensorFlow Serving's REST API: `keras-cd-serve`.

Serves what `keras_cd.export.to_onnx` writes with ONNX Runtime, on
Starlette and uvicorn, and imports neither Keras nor TensorFlow (an
ONNX-only process: `pip install 'keras-cd[serve]'` is all it needs). A CD
network exported with `monte_carlo=True` takes its diffusion noise as an
input (`NOISE_INPUT`); the server draws fresh noise for every request, so
each answer is one Monte-Carlo pass of the paper's stochastic network
(Wang, Bao & Shi, 2024), and a client averages passes for the
Feynman-Kac mean.

- TensorFlow Serving's REST contract
  ([`create_app`][keras_cd.serving.create_app]): status, metadata in the
  SignatureDef layout, `:predict` in row and columnar format,
  `/versions/<v>` paths, `{"error": ...}` bodies
  ([`RequestError`][keras_cd.serving.RequestError]).
- One loaded version ([`OnnxModel`][keras_cd.serving.OnnxModel]): an ONNX
  Runtime session that parses a request into a
  [`ParsedRequest`][keras_cd.serving.ParsedRequest], runs it and encodes
  the answer.
- Versions ([`ModelRepository`][keras_cd.serving.ModelRepository]): a base
  folder of numbered versions; the newest complete one is served and a
  new one is picked up without a restart, while requests in flight finish
  on the version they started on.
- Dynamic batching ([`Batcher`][keras_cd.serving.Batcher]): concurrent
  requests merged into one ONNX Runtime call of up to `--max-batch-size`
  rows within `--batch-timeout-ms`, split back by row; each Monte-Carlo
  request draws its own noise; a full queue raises
  [`QueueFull`][keras_cd.serving.QueueFull].
- Faults ([`bind`][keras_cd.serving.bind], [`serve`][keras_cd.serving.serve]):
  idle and stalled connections cost no worker and are dropped after
  `--keep-alive` / `--timeout`; a full inference queue answers 503 with
  Retry-After; SIGTERM drains; readiness, liveness and Prometheus metrics
  ([`Metrics`][keras_cd.serving.Metrics]).

Command line ([`main`][keras_cd.serving.main]): `keras-cd-serve MODEL
--name NAME --port 8501` (or `python -m keras_cd.serving`); see
`keras_cd.serving.cli`.

Example:
```bash
keras-cd-serve model.onnx --name model --port 8501 &
curl -d '{"instances": [[0.0, 1.0]]}' http://127.0.0.1:8501/v1/models/model:predict
```
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

"""One loaded model version: an ONNX Runtime session and TF Serving's JSON mapping.

A keras_cd network exported to ONNX (`keras_cd.export.to_onnx`) runs here
without Keras or TensorFlow; a CD network exported with `monte_carlo=True`
takes its diffusion noise as the input `NOISE_INPUT`, drawn fresh for every
request, so each answer is one Monte-Carlo pass. `OnnxModel` turns a
`:predict` body into input arrays (`parse`, a `ParsedRequest`), runs a
batch of them (`run`) and turns output rows back into TensorFlow Serving's
JSON answer (`encode`). Parsing and encoding are separate from running so
that the batcher can merge the rows of several requests into one call. A
request the server refuses raises `RequestError`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from http import HTTPStatus

import numpy as np

NOISE_INPUT = "noise"  # keras_cd.export.noise_input.NOISE_INPUT_NAME
"""str, the name of a Monte-Carlo model's noise input, `(batch, width)` standard normal.

A request may send it (to fix the pass); otherwise the server draws it.
"""
ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(float16)": np.float16,
}
TF_DTYPES = {
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "int64": "DT_INT64",
    "int32": "DT_INT32",
    "float16": "DT_HALF",
}


class RequestError(Exception):
    """A request the server answers with `status` and `{"error": message}`.

    Raised while a request is resolved, parsed or run; the endpoint turns it
    into the JSON error answer, with `headers` (e.g. `Retry-After`).

    Args:
        status: int or `http.HTTPStatus`, the answer's status code.
        message: str, what is wrong and how to fix it.
        headers: dict or None, extra headers of the answer. Defaults to
            `None`.

    Attributes:
        status: int, the status code.
        headers: dict, the extra headers (empty when none).

    Example:
    >>> import keras_cd
    >>> error = keras_cd.serving.RequestError(400, "Invalid request: no instances.")
    >>> error.status, str(error), error.headers
    (400, 'Invalid request: no instances.', {})
    """

    def __init__(
        self, status: int | HTTPStatus, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = int(status)
        self.headers = headers or {}


def require(module):
    """Imports a dependency of the server, or says which `pip install` brings it.

    Args:
        module: str, the module's name.

    Returns:
        The imported module.

    Raises:
        ImportError: naming `pip install 'keras-cd[serve]'`, when the module
            is not installed.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"keras_cd.serving needs `{module}`, which is not installed. "
            "Install the server's dependencies with: pip install 'keras-cd[serve]'"
        ) from error


class ParsedRequest:
    """A validated `:predict` request: its input arrays and the answer's format.

    What `OnnxModel.parse` returns and `Batcher.submit` queues. `key` says
    which requests can share a batch: those with the same inputs, feature
    shapes and dtypes.

    Args:
        feeds: dict of input name -> array, all with the same number of
            rows (for a Monte-Carlo model, the noise rows included).
        row_format: bool, True for a row-format request (`"instances"`,
            answered with `"predictions"`), False for columnar (`"inputs"`,
            answered with `"outputs"`).

    Attributes:
        feeds: dict of input name -> array.
        rows: int, the request's rows (instances).
        row_format: bool.
        key: tuple, (name, feature shape, dtype) of every input, sorted.

    Example:
    >>> import numpy as np, keras_cd
    >>> request = keras_cd.serving.ParsedRequest({"x": np.zeros((3, 2), "float32")}, True)
    >>> request.rows, request.key
    (3, (('x', (2,), '<f4'),))
    """

    __slots__ = ("feeds", "rows", "row_format", "key")

    def __init__(self, feeds: dict[str, np.ndarray], row_format: bool) -> None:
        self.feeds = feeds
        self.rows = len(next(iter(feeds.values())))
        self.row_format = row_format
        self.key = tuple(sorted((n, a.shape[1:], a.dtype.str) for n, a in feeds.items()))


class OnnxModel:
    """An ONNX Runtime session of one model version, with TF Serving's JSON mapping.

    A model exported with `keras_cd.export.to_onnx(..., monte_carlo=True)`
    has an input named `noise` of shape `(batch, width)`; a request that
    leaves it out gets fresh standard normal noise drawn for its own rows, so
    every request is an independent Monte-Carlo (Feynman-Kac) pass, also
    when the batcher runs it together with others.

    Args:
        path: str or path-like, the `.onnx` file.
        name: str, the model name in the URL.
        version: int, the version number reported by the server. Defaults to `1`.
        seed: int or None, seed of the noise drawn for Monte-Carlo models.
            Defaults to `None` (fresh entropy).
        intra_op_threads: int, ONNX Runtime's threads per call; `0` lets it
            choose (one per core). Defaults to `0`.

    Attributes:
        path: str, the `.onnx` file.
        name: str, the model name.
        version: int, the version number.
        session: the `onnxruntime.InferenceSession`.
        inputs: list of `(name, shape, dtype)` of the model's inputs
            (None for a dimension or type it leaves open).
        outputs: list of str, the output names.
        monte_carlo: bool, whether the model has a `noise` input.

    Raises:
        ImportError: if onnxruntime or orjson is not installed.
        ValueError: if the file cannot be loaded, or its `noise` input has no
            fixed width.

    Example:
    ```python
    model = keras_cd.serving.OnnxModel("model.onnx", "cd_resnet")
    request = model.parse(b'{"instances": [[0.0, 1.0]]}')  # noise drawn here
    body = model.encode(model.run(request.feeds), request.row_format)
    ```
    """

    def __init__(
        self,
        path: str | os.PathLike,
        name: str,
        version: int = 1,
        seed: int | None = None,
        intra_op_threads: int = 0,
    ) -> None:
        onnxruntime = require("onnxruntime")
        require("orjson")
        self.path, self.name, self.version = os.fspath(path), name, int(version)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(intra_op_threads)
        # Idle ONNX Runtime threads sleep instead of spinning: in a server they share the
        # cores with request parsing, which a spinning pool would slow down.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(
                self.path, options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError(
                f"Invalid model file {self.path!r}: ONNX Runtime cannot load it ({error}). "
                "Export one with keras_cd.export.to_onnx."
            ) from error
        self.inputs = [self._spec(i) for i in self.session.get_inputs()]
        self.output_specs = [self._spec(o) for o in self.session.get_outputs()]
        self.outputs = [name for name, _, _ in self.output_specs]
        self.specs = {name: (shape, dtype) for name, shape, dtype in self.inputs}
        self.data_inputs = [spec for spec in self.inputs if spec[0] != NOISE_INPUT]
        noise = self.specs.get(NOISE_INPUT)
        if noise is not None and (len(noise[0]) != 2 or noise[0][1] is None):
            raise ValueError(
                f"Invalid model file {self.path!r}: its `noise` input has shape "
                f"{self._shape(noise[0])}; expected ['batch', width] with a fixed width. "
                "Export Monte-Carlo models with keras_cd.export.to_onnx(..., monte_carlo=True)."
            )
        self.monte_carlo = noise is not None
        entropy = None if seed is None else [int(seed), self.version]
        self._rng = np.random.default_rng(entropy)
        self._rng_lock = threading.Lock()

    @staticmethod
    def _spec(node):
        shape = [d if isinstance(d, int) else None for d in node.shape]
        return node.name, shape, ONNX_TYPES.get(node.type)

    @staticmethod
    def _shape(shape):
        return ["batch" if i == 0 else ("any" if d is None else d) for i, d in enumerate(shape)]

    def metadata(self) -> dict:
        """GET .../metadata as TensorFlow Serving answers it (a SignatureDefMap in JSON).

        Returns:
            dict: `model_spec` (name, version) and the `serving_default`
            signature's inputs and outputs (dtype, shape, name).
        """

        def tensor_info(name, shape, dtype):
            return {
                "dtype": TF_DTYPES.get(np.dtype(dtype).name, "DT_INVALID")
                if dtype
                else "DT_INVALID",
                "tensor_shape": {
                    "dim": [{"size": str(-1 if d is None else d), "name": ""} for d in shape],
                    "unknown_rank": False,
                },
                "name": name,
            }

        signature = {
            "inputs": {spec[0]: tensor_info(*spec) for spec in self.inputs},
            "outputs": {spec[0]: tensor_info(*spec) for spec in self.output_specs},
            "method_name": "tensorflow/serving/predict",
        }
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": str(self.version)},
            "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}},
        }

    def _tensor(self, name, shape, dtype, value):
        if dtype is None:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"Input '{name}' has a type this server cannot feed."
            )
        try:
            array = np.asarray(value, dtype=dtype)
        except (ValueError, TypeError, RecursionError) as error:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                (
                    f"Invalid value for input '{name}': expected a (nested) list of numbers "
                    f"convertible to {np.dtype(dtype).name} with shape {self._shape(shape)}. "
                    "Received non-numeric or ragged data."
                ),
            ) from error
        if array.ndim != len(shape) or any(
            want is not None and want != got for want, got in zip(shape[1:], array.shape[1:])
        ):
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                (
                    f"Invalid shape for input '{name}': expected {self._shape(shape)}. "
                    f"Received: {list(array.shape)}. Send one instance per row with the model's "
                    "feature shape (see /metadata)."
                ),
            )
        if array.shape[0] == 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, "Invalid request: no instances.")
        return array

    def parse(self, body: bytes, max_values: int | None = None) -> ParsedRequest:
        """Validates a `:predict` body and returns its input arrays.

        Args:
            body: bytes, the JSON body.
            max_values: int or None, the most JSON values the body may hold,
                counted before it is parsed. Defaults to `None` (no limit).

        Returns:
            A `ParsedRequest`; for a Monte-Carlo model without a `noise`
            input in the request, fresh noise for its rows is drawn here.

        Raises:
            RequestError: with status 400 or 413 and a message saying what to fix.
        """
        import orjson

        if max_values is not None:
            # Every JSON value but the first follows a ',' or a '[' / '{' / ':': counting
            # them bounds what the body expands to (about 32 bytes of Python objects
            # per number) before anything is built.
            values = body.count(b",") + body.count(b"[") + body.count(b":") + 1
            if values > max_values:
                raise RequestError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    (
                        f"Request body holds up to {values} JSON values, over the limit of "
                        f"{max_values}; send fewer instances per request (or raise --max-values)."
                    ),
                )
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            if "depth limit" in str(error) or "recursion" in str(error).lower():
                raise RequestError(
                    HTTPStatus.BAD_REQUEST,
                    (
                        "Malformed JSON body: nested too deeply. Send each input as a list "
                        "nested as deep as its shape (see /metadata)."
                    ),
                ) from error
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Malformed JSON body: {error}") from error
        if not isinstance(request, dict) or (("instances" in request) == ("inputs" in request)):
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                (
                    'Invalid request: expected a JSON object with exactly one of "instances" '
                    '(row format) or "inputs" (columnar format).'
                ),
            )
        if request.get("signature_name", "serving_default") != "serving_default":
            raise RequestError(HTTPStatus.BAD_REQUEST, "Only signature 'serving_default' exists.")
        row_format = "instances" in request
        data = request["instances"] if row_format else request["inputs"]
        only = self.data_inputs[0][0] if len(self.data_inputs) == 1 else None
        if (
            row_format
            and isinstance(data, list)
            and data
            and all(isinstance(r, dict) for r in data)
        ):
            names = {name for row in data for name in row}
            columns = {name: [row.get(name) for row in data] for name in names}
        elif isinstance(data, dict) and not row_format:
            columns = data
        elif only is not None:
            columns = {only: data}
        else:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                (
                    "Invalid request: this model has several inputs; send each instance as an "
                    f"object keyed by input name {sorted(self.specs)} (or columnar inputs as "
                    "such an object)."
                ),
            )
        unknown = sorted(set(columns) - set(self.specs))
        if unknown:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"Unknown inputs {unknown}; expected {sorted(self.specs)}."
            )
        feeds = {
            name: self._tensor(name, *self.specs[name], value) for name, value in columns.items()
        }
        missing = [name for name, _, _ in self.data_inputs if name not in feeds]
        if missing:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Missing inputs {missing}.")
        batch = {len(a) for a in feeds.values()}
        if len(batch) != 1:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"Inputs disagree on the batch size: {sorted(batch)}."
            )
        if self.monte_carlo and NOISE_INPUT not in feeds:
            feeds[NOISE_INPUT] = self.draw_noise(batch.pop())
        return ParsedRequest(feeds, row_format)

    def draw_noise(self, rows: int) -> np.ndarray:
        """Standard normal noise for `rows` Monte-Carlo passes, drawn fresh.

        Thread-safe; seeded by `seed` and the version when a seed was given.

        Args:
            rows: int, the passes (one per instance).

        Returns:
            (rows, width) array of the noise input's dtype.
        """
        shape, dtype = self.specs[NOISE_INPUT]
        with self._rng_lock:
            return self._rng.standard_normal((rows, shape[1]), dtype=np.float64).astype(dtype)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Runs ONNX Runtime on `feeds`.

        Args:
            feeds: dict of input name -> array (e.g. `ParsedRequest.feeds`,
                or the merged rows of several).

        Returns:
            list of arrays, one per output, one row per input row.
        """
        return self.session.run(None, feeds)

    def encode(self, outputs: Sequence[np.ndarray], row_format: bool) -> bytes:
        """TF Serving's JSON answer for one request's output rows.

        Args:
            outputs: list of arrays, the request's rows of each output.
            row_format: bool, answer `{"predictions": ...}` (True) or
                `{"outputs": ...}` (False).

        Returns:
            bytes, the JSON body.
        """
        import orjson

        outputs = [np.ascontiguousarray(o) for o in outputs]
        if len(outputs) == 1:
            payload = {("predictions" if row_format else "outputs"): outputs[0]}
        elif row_format:
            payload = {
                "predictions": [
                    {n: o[i] for n, o in zip(self.outputs, outputs)} for i in range(len(outputs[0]))
                ]
            }
        else:
            payload = {"outputs": dict(zip(self.outputs, outputs))}
        return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)

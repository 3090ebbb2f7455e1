"""The previous model server (export/serve.py before keras_cd.serving), kept for comparison.

`benchmarks/serving.py` runs it beside `keras-cd-serve` on the same model;
nothing else uses it. It is the code as it was: `http.server` with a thread
per connection, at most `--max-workers` connections at once (more get
503), a socket timeout per connection, no batching.

    python benchmarks/legacy_server.py model.onnx --name cd_resnet --port 8501

Endpoints:
    GET  /v1/models/<name>            model status (version 1, AVAILABLE)
    GET  /v1/models/<name>/metadata   the signature, in TF Serving's layout
                                      (metadata.signature_def.signature_def
                                      .serving_default.inputs/outputs, with
                                      dtype DT_FLOAT... and tensor_shape.dim)
    POST /v1/models/<name>:predict    {"instances": [...]} (row format) or
                                      {"inputs": ...} (columnar format)

A model exported with `monte_carlo=True` has a `noise` input; when a request
leaves it out, the server draws standard normal noise, so every request is
one Monte-Carlo (Feynman-Kac) pass. Malformed JSON, wrong shapes or dtypes,
unknown paths, oversized bodies and deeply nested JSON get a 4xx answer with a
message; the server keeps serving.

Under faults: each connection has a socket timeout (`--timeout`), so a stalled
client cannot hold a worker forever; at most `--max-workers` requests are
served at once, and a connection beyond that is answered 503 (Retry-After)
without a thread; a body is bounded in bytes (`--max-body-mb`) and in the
number of JSON values it expands to (`--max-values`), checked before parsing.
`--host ::1` (or any IPv6 address) serves over IPv6.
"""

import argparse
import json
import signal
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np

ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(float16)": np.float16,
}
NOISE_INPUT = "noise"
TF_DTYPES = {
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "int64": "DT_INT64",
    "int32": "DT_INT32",
    "float16": "DT_HALF",
}


class RequestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class OnnxModel:
    """An onnxruntime session plus the TF-Serving request/response mapping."""

    def __init__(self, path, name, seed=None):
        import onnxruntime

        self.name, self.path = name, path
        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.inputs = [
            (i.name, [d if isinstance(d, int) else None for d in i.shape], ONNX_TYPES.get(i.type))
            for i in self.session.get_inputs()
        ]
        self.output_specs = [
            (o.name, [d if isinstance(d, int) else None for d in o.shape], ONNX_TYPES.get(o.type))
            for o in self.session.get_outputs()
        ]
        self.outputs = [name for name, _, _ in self.output_specs]
        self.rng = np.random.default_rng(seed)
        self.rng_lock = threading.Lock()

    @property
    def data_inputs(self):
        return [spec for spec in self.inputs if spec[0] != NOISE_INPUT]

    def metadata(self):
        """GET .../metadata as TensorFlow Serving answers it (a SignatureDefMap in JSON)."""

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
            "model_spec": {"name": self.name, "signature_name": "", "version": "1"},
            "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}},
        }

    def _tensor(self, name, shape, dtype, value):
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

    @staticmethod
    def _shape(shape):
        return ["batch" if i == 0 else ("any" if d is None else d) for i, d in enumerate(shape)]

    def parse(self, body, max_values=None):
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
            request = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Malformed JSON body: {error}") from error
        except RecursionError as error:
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                (
                    "Malformed JSON body: nested too deeply. Send each input as a list nested "
                    "as deep as its shape (see /metadata)."
                ),
            ) from error
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
        specs = {name: (shape, dtype) for name, shape, dtype in self.inputs}
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
                    f"object keyed by input name {sorted(specs)} (or columnar inputs as such an "
                    "object)."
                ),
            )
        unknown = sorted(set(columns) - set(specs))
        if unknown:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"Unknown inputs {unknown}; expected {sorted(specs)}."
            )
        feeds = {name: self._tensor(name, *specs[name], value) for name, value in columns.items()}
        missing = [name for name, _, _ in self.data_inputs if name not in feeds]
        if missing:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Missing inputs {missing}.")
        batch = {len(a) for a in feeds.values()}
        if len(batch) != 1:
            raise RequestError(
                HTTPStatus.BAD_REQUEST, f"Inputs disagree on the batch size: {sorted(batch)}."
            )
        if NOISE_INPUT in specs and NOISE_INPUT not in feeds:
            shape, dtype = specs[NOISE_INPUT]
            with self.rng_lock:
                feeds[NOISE_INPUT] = self.rng.standard_normal((batch.pop(), shape[1])).astype(dtype)
        return feeds, row_format

    def predict(self, body, max_values=None):
        feeds, row_format = self.parse(body, max_values)
        outputs = self.session.run(None, feeds)
        if len(outputs) == 1:
            key = "predictions" if row_format else "outputs"
            return {key: outputs[0].tolist()}
        if row_format:
            rows = len(outputs[0])
            return {
                "predictions": [
                    {n: o[i].tolist() for n, o in zip(self.outputs, outputs)} for i in range(rows)
                ]
            }
        return {"outputs": {n: o.tolist() for n, o in zip(self.outputs, outputs)}}


def make_handler(model, max_body_bytes, verbose, timeout=30.0, max_values=None):
    prefix = f"/v1/models/{model.name}"

    class Handler(BaseHTTPRequestHandler):
        server_version = "keras_cd-onnx-serving/1"
        protocol_version = "HTTP/1.1"

        def setup(self):
            self.timeout = timeout  # the socket timeout: a stalled client is dropped
            super().setup()

        def log_message(self, format, *args):
            if verbose:
                super().log_message(format, *args)

        def _send(self, status, payload):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status, message):
            self._send(status, {"error": message})

        def do_GET(self):
            if self.path.rstrip("/") == prefix:
                self._send(
                    HTTPStatus.OK,
                    {
                        "model_version_status": [
                            {
                                "version": "1",
                                "state": "AVAILABLE",
                                "status": {"error_code": "OK", "error_message": ""},
                            }
                        ]
                    },
                )
            elif self.path.rstrip("/") == prefix + "/metadata":
                self._send(HTTPStatus.OK, model.metadata())
            else:
                self._error(
                    HTTPStatus.NOT_FOUND,
                    f"Unknown path {self.path!r}; this server "
                    f"serves {prefix} and {prefix}:predict.",
                )

        def do_POST(self):
            if self.path != prefix + ":predict":
                self._error(
                    HTTPStatus.NOT_FOUND, f"Unknown path {self.path!r}; POST to {prefix}:predict."
                )
                self.close_connection = True
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._error(HTTPStatus.LENGTH_REQUIRED, "A Content-Length header is required.")
                self.close_connection = True
                return
            if int(length) > max_body_bytes:
                self._error(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"Request body of {length} bytes exceeds the limit of {max_body_bytes} "
                    "bytes; send fewer instances per request (or raise --max-body-mb).",
                )
                self.close_connection = True  # the unread body is dropped with the connection
                return
            body = self.rfile.read(int(length))
            try:
                self._send(HTTPStatus.OK, model.predict(body, max_values))
            except RequestError as error:
                self._error(error.status, str(error))
            except Exception as error:  # onnxruntime rejected the feed; keep serving
                self._error(
                    HTTPStatus.BAD_REQUEST
                    if "INVALID_ARGUMENT" in str(error)
                    else HTTPStatus.INTERNAL_SERVER_ERROR,
                    f"Inference failed: {error}",
                )

        def do_PUT(self):
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "Use GET for status or POST for :predict.")

        do_DELETE = do_PATCH = do_PUT

    return Handler


class BoundedHTTPServer(HTTPServer):
    """An HTTP server with at most `max_workers` connections served at once.

    Each accepted connection gets a thread while a slot is free; otherwise it
    is answered `503 Service Unavailable` with `Retry-After: 1` right away,
    so a flood of (or stalled) clients cannot exhaust threads or memory.
    IPv6 addresses (`::1`) get an IPv6 socket.
    """

    daemon_threads = True

    def __init__(self, address, handler, max_workers):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.slots = threading.BoundedSemaphore(max_workers)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            body = json.dumps({"error": "All workers are busy; retry shortly."}).encode()
            try:
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                    b"application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        threading.Thread(target=self._serve, args=(request, client_address), daemon=True).start()

    def _serve(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self.slots.release()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an .onnx file (keras_cd.export.to_onnx)")
    parser.add_argument("--name", default="model", help="model name in the URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument(
        "--max-body-mb", type=float, default=64.0, help="largest accepted request body"
    )
    parser.add_argument(
        "--max-values",
        type=int,
        default=4_000_000,
        help="most JSON values a request body may expand to",
    )
    parser.add_argument(
        "--max-workers", type=int, default=16, help="most connections served at once; more get 503"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="socket timeout in seconds for a stalled client"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the server-drawn noise")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    for name in ("max_values", "max_workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.timeout > 0 or not args.max_body_mb > 0:
        parser.error("--timeout and --max-body-mb must be > 0")
    try:
        model = OnnxModel(args.model, args.name, seed=args.seed)
    except ImportError:
        sys.exit("export/serve.py needs onnxruntime: pip install 'keras-cd[export]'")
    except Exception as error:
        sys.exit(f"Cannot load {args.model!r} in onnxruntime: {error}")
    handler = make_handler(
        model, int(args.max_body_mb * 2**20), args.verbose, args.timeout, args.max_values
    )
    try:
        server = BoundedHTTPServer((args.host, args.port), handler, args.max_workers)
    except OSError as error:
        sys.exit(f"Cannot listen on {args.host!r} port {args.port}: {error}")
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    host, port = server.server_address[:2]
    host = f"[{host}]" if ":" in host else host
    print(
        f"serving {args.name} from {args.model} on http://{host}:{port}/v1/models/{args.name}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

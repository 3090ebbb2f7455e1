"""The server's HTTP endpoints: a Starlette application (ASGI).

What a client of a served keras_cd network (an ONNX export, one
Monte-Carlo pass per request for a CD network) talks to. TensorFlow
Serving's REST API, for the model named `name`:

- `GET  /v1/models/<name>` and `/v1/models/<name>/versions/<v>`: version
  status (`model_version_status`: AVAILABLE for the served version, END for
  versions it replaced).
- `GET  /v1/models/<name>[/versions/<v>]/metadata`: the signature in TF
  Serving's SignatureDef layout.
- `POST /v1/models/<name>[/versions/<v>]:predict`: `{"instances": ...}` (row
  format) or `{"inputs": ...}` (columnar format); answers `{"predictions":
  ...}` or `{"outputs": ...}`. A version that is not served answers 404.

And for operations: `GET /v2/health/live` (liveness: the batching loop
runs), `GET /v2/health/ready` (readiness: a version is loaded and the
server is not draining), `GET /metrics` (Prometheus). Every error is a JSON
`{"error": message}` with a 4xx or 5xx status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

from keras_cd.serving.batching import QueueFull
from keras_cd.serving.model import RequestError, require

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from keras_cd.serving.batching import Batcher
    from keras_cd.serving.metrics import Metrics
    from keras_cd.serving.repository import ModelRepository

logger = logging.getLogger("keras_cd.serving")

LARGE_BODY = 1 << 20  # bodies above 1 MiB are parsed in a thread: the event loop keeps serving


class ServingState:
    """What the endpoints share: the model versions, the batcher and the counters.

    Args:
        repository: the `ModelRepository`.
        batcher: the `Batcher`.
        metrics: the `Metrics`, or None.
        max_body_bytes: int, the largest request body.
        max_values: int or None, the most JSON values one body may hold.
        poll_seconds: float, seconds between looks for new versions.

    Attributes:
        accepted: int, requests whose headers reached the application.
        answered: int, requests whose answer was sent in full.
        draining: bool, set when the server stops accepting (SIGTERM).
    """

    def __init__(self, repository, batcher, metrics, max_body_bytes, max_values, poll_seconds):
        self.repository, self.batcher, self.metrics = repository, batcher, metrics
        self.max_body_bytes, self.max_values = int(max_body_bytes), max_values
        self.poll_seconds = poll_seconds
        self.draining = False
        self.accepted = self.answered = 0


def _json(payload, status=200, headers=None):
    import orjson
    from starlette.responses import Response

    return Response(
        orjson.dumps(payload),
        status_code=int(status),
        headers=headers,
        media_type="application/json",
    )


def _error(status, message, headers=None):
    return _json({"error": message}, status, headers)


def _endpoint(path):
    if path.endswith(":predict"):
        return "predict"
    if path.endswith("/metadata"):
        return "metadata"
    if path.startswith("/v1/models/"):
        return "status"
    if path.startswith("/v2/health/"):
        return "health"
    if path == "/metrics":
        return "metrics"
    return "other"


class _Instrumented:
    """ASGI middleware: counts requests and answers, and feeds the metrics."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status, complete = time.perf_counter(), 500, False
        self.state.accepted += 1

        async def instrumented_send(message):
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True

        try:
            await self.app(scope, receive, instrumented_send)
        finally:
            if complete:
                self.state.answered += 1
            if self.state.metrics is not None:
                self.state.metrics.observe_request(
                    _endpoint(scope["path"]), status, time.perf_counter() - start
                )


def _model_name(request, state):
    name = request.path_params["name"]
    if name != state.repository.name:
        raise RequestError(
            HTTPStatus.NOT_FOUND,
            f"Unknown model {name!r}: this server serves {state.repository.name!r} "
            f"(GET /v1/models/{state.repository.name}).",
        )
    return name


def _resolve(request, state):
    name = _model_name(request, state)
    version = request.path_params.get("version")
    model = state.repository.resolve(version)
    if model is None:
        current = state.repository.current
        if current is None:
            raise RequestError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"No version of model {name!r} is loaded yet; retry shortly.",
                headers={"Retry-After": "1"},
            )
        raise RequestError(
            HTTPStatus.NOT_FOUND,
            f"Version {version} of model {name!r} is not served; the served version is "
            f"{current.version} (GET /v1/models/{name}).",
        )
    return model


async def _read_body(request, limit):
    length = request.headers.get("content-length")
    too_large = RequestError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"Request body of {length or 'more than ' + str(limit)} bytes exceeds the limit of "
        f"{limit} bytes; send fewer instances per request (or raise --max-body-mb).",
        headers={"Connection": "close"},  # the unread body is dropped with the connection
    )
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def predict(request):
    """POST /v1/models/<name>[/versions/<v>]:predict: run the model on the request's rows.

    Answers TF Serving's `{"predictions": ...}` (row format) or
    `{"outputs": ...}` (columnar format), or `{"error": ...}` with 400, 404,
    413, 500 or 503 (a full queue or no version loaded yet, with
    Retry-After).
    """
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response

    state = request.app.state.serving
    try:
        model = _resolve(request, state)
        try:
            body = await _read_body(request, state.max_body_bytes)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        if len(body) > LARGE_BODY:
            parsed = await run_in_threadpool(model.parse, body, state.max_values)
        else:
            parsed = model.parse(body, state.max_values)
        try:
            outputs = await state.batcher.submit(model, parsed)
        except QueueFull as error:
            raise RequestError(
                HTTPStatus.SERVICE_UNAVAILABLE, str(error), headers={"Retry-After": "1"}
            ) from error
        except Exception as error:  # onnxruntime rejected the feed; keep serving
            status = (
                HTTPStatus.BAD_REQUEST
                if "INVALID_ARGUMENT" in str(error)
                else HTTPStatus.INTERNAL_SERVER_ERROR
            )
            raise RequestError(status, f"Inference failed: {error}") from error
        return Response(model.encode(outputs, parsed.row_format), media_type="application/json")
    except RequestError as error:
        return _error(error.status, str(error), error.headers)


async def status(request):
    """GET /v1/models/<name>[/versions/<v>]: TF Serving's model_version_status."""
    state = request.app.state.serving
    try:
        name = _model_name(request, state)
        version = request.path_params.get("version")
        states = dict(state.repository.states)
        if version is not None:
            if not version.isdigit() or int(version) not in states:
                raise RequestError(
                    HTTPStatus.NOT_FOUND,
                    f"Version {version} of model {name!r} is not known; known versions: "
                    f"{sorted(states)}.",
                )
            states = {int(version): states[int(version)]}
        if not states:
            raise RequestError(
                HTTPStatus.NOT_FOUND, f"No version of model {name!r} has been found yet."
            )
    except RequestError as error:
        return _error(error.status, str(error), error.headers)
    return _json(
        {
            "model_version_status": [
                {
                    "version": str(v),
                    "state": states[v],
                    "status": {"error_code": "OK", "error_message": ""},
                }
                for v in sorted(states, reverse=True)
            ]
        }
    )


async def metadata(request):
    """GET /v1/models/<name>[/versions/<v>]/metadata."""
    state = request.app.state.serving
    try:
        return _json(_resolve(request, state).metadata())
    except RequestError as error:
        return _error(error.status, str(error), error.headers)


async def live(request):
    """GET /v2/health/live: 200 while the batching loop runs."""
    alive = request.app.state.serving.batcher.alive
    return _json({"live": alive}, 200 if alive else 503)


async def ready(request):
    """GET /v2/health/ready: 200 when a version is loaded and the server is not draining."""
    state = request.app.state.serving
    reason = (
        "draining (stopping)"
        if state.draining
        else "no model version loaded"
        if state.repository.current is None
        else "batching loop stopped"
        if not state.batcher.alive
        else None
    )
    if reason is None:
        return _json({"ready": True})
    return _json({"ready": False, "reason": reason}, 503)


async def prometheus_metrics(request):
    """GET /metrics: Prometheus' text format."""
    from starlette.responses import Response

    state = request.app.state.serving
    return Response(state.metrics.render(), media_type=state.metrics.content_type)


async def _poll(state):
    """Looks for new versions every `poll_seconds`, loading them in a thread."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(state.poll_seconds)
        try:
            changed = await loop.run_in_executor(None, state.repository.scan)
        except Exception:  # a broken file system must not stop serving
            logger.exception("looking for new versions failed")
            continue
        if changed and state.metrics is not None:
            state.metrics.model_version.set(state.repository.current.version)


def create_app(
    repository: ModelRepository,
    batcher: Batcher,
    metrics: Metrics | None = None,
    max_body_bytes: int = 64 << 20,
    max_values: int | None = 4_000_000,
    poll_seconds: float = 1.0,
    on_stop: Callable[[ServingState], object] | None = None,
) -> Starlette:
    """The model server as an ASGI application (Starlette).

    The endpoints of the module docstring, the batcher started and stopped
    with the application's lifespan, a task that looks for new versions
    every `poll_seconds`, and middleware that counts requests for the
    metrics and the drain.

    Args:
        repository: a `ModelRepository`; call its `scan()` once first.
        batcher: a `Batcher`, started and stopped with the application.
        metrics: a `Metrics`, or None for no `/metrics`. Defaults to `None`.
        max_body_bytes: int, the largest request body. Defaults to
            `64 << 20` (64 MiB).
        max_values: int or None, the most JSON values one body may hold.
            Defaults to `4_000_000`.
        poll_seconds: float, seconds between looks for new versions; `0`
            never looks again. Defaults to `1.0`.
        on_stop: callable or None, called with the `ServingState` after the
            last request was answered and the batcher stopped. Defaults to
            `None`.

    Returns:
        A `starlette.applications.Starlette`; `app.state.serving` is its
        `ServingState`.

    Raises:
        ImportError: without Starlette or orjson (`pip install
            'keras-cd[serve]'`).

    Example:
    ```python
    from keras_cd import serving

    repository = serving.ModelRepository("models/cd_resnet", "cd_resnet")
    repository.scan()
    app = serving.create_app(repository, serving.Batcher(64, 0.002, 1024), serving.Metrics())
    serving.serve(app, serving.bind("127.0.0.1", 8501))
    ```
    """
    require("starlette")
    require("orjson")
    from starlette.applications import Starlette
    from starlette.routing import Route

    state = ServingState(repository, batcher, metrics, max_body_bytes, max_values, poll_seconds)
    if metrics is not None and repository.current is not None:
        metrics.model_version.set(repository.current.version)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        batcher.start()
        poller = asyncio.get_running_loop().create_task(_poll(state)) if poll_seconds > 0 else None
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
            await batcher.stop()
            if on_stop is not None:
                on_stop(state)

    async def not_found(request, exc):
        name = repository.name
        return _error(
            HTTPStatus.NOT_FOUND,
            f"Unknown path {request.url.path!r}; this server serves /v1/models/{name}, "
            f"/v1/models/{name}/metadata and POST /v1/models/{name}:predict.",
        )

    async def method_not_allowed(request, exc):
        return _error(
            HTTPStatus.METHOD_NOT_ALLOWED,
            f"Method {request.method} is not allowed on {request.url.path!r}: use GET for "
            "status and metadata, POST for :predict.",
            headers=getattr(exc, "headers", None),
        )

    routes = [
        Route("/v1/models/{name}:predict", predict, methods=["POST"]),
        Route("/v1/models/{name}/versions/{version}:predict", predict, methods=["POST"]),
        Route("/v1/models/{name}/metadata", metadata, methods=["GET"]),
        Route("/v1/models/{name}/versions/{version}/metadata", metadata, methods=["GET"]),
        Route("/v1/models/{name}/versions/{version}", status, methods=["GET"]),
        Route("/v1/models/{name}", status, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
    ]
    if metrics is not None:
        routes.append(Route("/metrics", prometheus_metrics, methods=["GET"]))
    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: method_not_allowed},
        lifespan=lifespan,
    )
    app.state.serving = state
    app.add_middleware(_Instrumented, state=state)
    return app

"""Running the application on uvicorn, with per-request timeouts and a graceful drain.

The process side of serving a keras_cd network: `bind` the port, then
`serve` the application of `keras_cd.serving.create_app`. Uvicorn holds
every connection in one event loop (uvloop and httptools when installed),
so an idle or stalled connection costs a socket and a few objects, never a
worker. On top of uvicorn's keep-alive timeout this adds:

- a keep-alive timer from the moment a connection opens (uvicorn starts it
  only after a first answer), so a client that connects and sends nothing
  is dropped after `keep_alive` seconds;
- a request timeout: a request must arrive in full (request line, headers,
  body) within `request_timeout` seconds of its first byte, or the
  connection is closed (with `408 Request Timeout` when its headers never
  completed).

On SIGTERM or SIGINT the server stops accepting connections, marks itself
not ready, closes idle connections, lets every accepted request finish (for
at most `drain_timeout` seconds), stops the batcher and returns.
"""

from __future__ import annotations

import json
import signal
import socket
from typing import TYPE_CHECKING

from keras_cd.serving.model import require

if TYPE_CHECKING:
    from starlette.applications import Starlette

_TIMEOUT_BODY = json.dumps(
    {"error": "Request timeout: the request did not arrive in full in time (see --timeout)."}
).encode()
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + b"content-length: "
    + str(len(_TIMEOUT_BODY)).encode()
    + b"\r\n\r\n"
    + _TIMEOUT_BODY
)


def timed_protocol(request_timeout):
    """Uvicorn's httptools protocol with an idle timer from connect and a request timeout.

    Args:
        request_timeout: float, seconds a request may take to arrive in full.

    Returns:
        A protocol class for `uvicorn.Config(http=...)`.
    """
    require("httptools")
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class TimedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport):
            self._request_timer = None
            super().connection_made(transport)
            # Idle from the start: uvicorn arms this timer only after an answer.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

        def _cancel_request_timer(self):
            if self._request_timer is not None:
                self._request_timer.cancel()
                self._request_timer = None

        def on_message_begin(self):
            super().on_message_begin()
            self._cancel_request_timer()
            self._request_timer = self.loop.call_later(request_timeout, self._request_timed_out)

        def on_message_complete(self):
            self._cancel_request_timer()
            super().on_message_complete()

        def connection_lost(self, exc):
            self._cancel_request_timer()
            super().connection_lost(exc)

        def _request_timed_out(self):
            self._request_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:
                # The headers never completed: no application task runs; answer here.
                self.transport.write(_TIMEOUT_RESPONSE)
            # Otherwise the body stalled: the application sees the client disconnect.
            self.transport.close()

    return TimedHttpToolsProtocol


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A TCP socket listening on (host, port); an address with ':' gets IPv6.

    Connections that arrive before the server runs wait in the kernel's
    queue (`backlog`), so a client may connect as soon as this returns.

    Args:
        host: str, the address, e.g. `"127.0.0.1"` or `"::1"`.
        port: int, the port; `0` picks a free one.
        backlog: int, connections the kernel queues before they are
            accepted. Defaults to `2048`.

    Returns:
        The listening `socket.socket` (inheritable), for `serve`.

    Raises:
        OSError: if the address cannot be bound.

    Example:
    >>> import keras_cd
    >>> sock = keras_cd.serving.bind("127.0.0.1", 0)  # a free port
    >>> host, port = sock.getsockname()
    >>> host, port > 0
    ('127.0.0.1', True)
    >>> sock.close()
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(
    app: Starlette,
    sock: socket.socket,
    request_timeout: float = 30.0,
    keep_alive: float = 5.0,
    drain_timeout: float = 30.0,
    backlog: int = 2048,
    verbose: bool = False,
) -> None:
    """Serves `app` on the bound socket `sock` until SIGTERM or SIGINT.

    Args:
        app: the application of `keras_cd.serving.create_app`.
        sock: a bound socket (see `bind`).
        request_timeout: float, seconds a request may take to arrive in
            full after its first byte. Defaults to `30.0`.
        keep_alive: float, seconds an idle connection stays open. Defaults
            to `5.0`.
        drain_timeout: float, on SIGTERM, the longest wait for accepted
            requests to finish. Defaults to `30.0`.
        backlog: int, connections the kernel queues before they are
            accepted. Defaults to `2048`.
        verbose: bool, log every request (uvicorn's access log, to stdout).
            Defaults to `False`.

    Raises:
        ImportError: without uvicorn (`pip install 'keras-cd[serve]'`).

    Example:
    ```python
    app = keras_cd.serving.create_app(repository, batcher, metrics)
    keras_cd.serving.serve(app, keras_cd.serving.bind("0.0.0.0", 8501), drain_timeout=10)
    ```
    """
    uvicorn = require("uvicorn")
    state = app.state.serving

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            state.draining = True  # readiness turns false at once
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        http=timed_protocol(request_timeout),
        loop="auto",
        lifespan="on",
        access_log=verbose,
        log_level="info" if verbose else "warning",
        timeout_keep_alive=keep_alive,
        timeout_graceful_shutdown=drain_timeout,
        backlog=backlog,
        server_header=False,
    )
    # uvicorn re-raises the signal that stopped it once it has drained; a no-op handler
    # in place of the default one lets a drained server exit with status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    Server(config).run(sockets=[sock])

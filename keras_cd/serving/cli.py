"""Command line of the model server: `keras-cd-serve MODEL [flags]`.

Serves an ONNX export of a keras_cd network (`keras_cd.export.to_onnx`;
with `monte_carlo=True` each request is one noisy pass of a CD network):

    keras-cd-serve model.onnx --name cd_resnet --port 8501
    keras-cd-serve models/cd_resnet --name cd_resnet    # models/cd_resnet/<version>/model.onnx
    python -m keras_cd.serving model.onnx --max-batch-size 64 --batch-timeout-ms 2

Prints one line, `serving NAME from MODEL on http://HOST:PORT/v1/models/NAME`,
once it listens (`--port 0` picks a free port), and on SIGTERM, after the
last accepted request was answered, `stopped: N requests accepted, N
answered`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from keras_cd.serving.model import require


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-cd-serve",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve an ONNX model (keras_cd.export.to_onnx) over TensorFlow Serving's "
        "REST API with ONNX Runtime, dynamic batching and version hot swap.",
    )
    parser.add_argument(
        "model",
        help="an .onnx file (served as version 1) or a base folder of numbered versions "
        "(BASE/<version>/model.onnx; the newest complete one is served)",
    )
    parser.add_argument("--name", default="model", help="model name in the URL")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (::1: IPv6)")
    parser.add_argument("--port", type=int, default=8501, help="port (0: a free one)")
    parser.add_argument(
        "--max-batch-size", type=int, default=64, help="most rows merged into one ONNX Runtime call"
    )
    parser.add_argument(
        "--batch-timeout-ms",
        type=float,
        default=0.0,
        help="longest wait of a batch's first request for more rows; 0 (the default) runs "
        "what is queued as soon as a worker is free, so batches grow with the load",
    )
    parser.add_argument(
        "--max-queue-size",
        type=int,
        default=1024,
        help="most requests waiting to be batched; one more is answered 503 with Retry-After",
    )
    parser.add_argument(
        "--batch-threads", type=int, default=1, help="ONNX Runtime calls that run at once"
    )
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=None,
        help="ONNX Runtime threads per call; default: one per core but one, which is left to "
        "the event loop that parses requests (0: ONNX Runtime's own default)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=1.0,
        help="seconds between looks for a new version in the base folder (0: never)",
    )
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
        "--timeout",
        type=float,
        default=30.0,
        help="seconds a request may take to arrive in full (headers and body) after its "
        "first byte; a stalled client is dropped",
    )
    parser.add_argument(
        "--keep-alive", type=float, default=5.0, help="seconds an idle connection stays open"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="on SIGTERM, the longest wait for accepted requests to finish",
    )
    parser.add_argument(
        "--max-workers",
        type=int,
        default=None,
        help="no longer used (connections cost no worker; --max-queue-size bounds the work)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the server-drawn noise")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _raise_open_files_limit():
    """Lets the process hold as many connections as its hard limit allows."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the model server until SIGTERM or SIGINT: the `keras-cd-serve` command.

    Loads the model (a file, or the newest complete version of a base
    folder), binds the port, prints `serving NAME from MODEL on
    http://HOST:PORT/v1/models/NAME` once it listens, serves, and on
    SIGTERM drains and prints `stopped: N requests accepted, N answered`.
    The flags are listed by `keras-cd-serve --help`.

    Args:
        argv: list of str, the command-line arguments. Defaults to `None`,
            `sys.argv[1:]`.

    Raises:
        SystemExit: for invalid flags, a missing dependency, a model ONNX
            Runtime cannot load, or a port that cannot be bound.

    Example:
    ```python
    from keras_cd.serving import main

    main(["model.onnx", "--name", "cd_resnet", "--port", "8501", "--max-batch-size", "64"])
    ```
    """
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("max_values", "max_batch_size", "max_queue_size", "batch_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("timeout", "max_body_mb", "keep_alive", "drain_timeout"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if args.intra_op_threads is None:
        args.intra_op_threads = max(1, _cores() - 1)
    for name in ("batch_timeout_ms", "poll_seconds", "intra_op_threads"):
        if not getattr(args, name) >= 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.max_workers is not None:
        logging.getLogger("keras_cd.serving").warning(
            "--max-workers is no longer used: idle and slow connections cost no worker; "
            "--max-queue-size bounds the requests waiting for inference."
        )
    try:
        for module in ("onnxruntime", "orjson", "prometheus_client", "starlette", "uvicorn"):
            require(module)
        require("httptools")
    except ImportError as error:
        sys.exit(str(error))
    from keras_cd.serving.app import create_app
    from keras_cd.serving.batching import Batcher
    from keras_cd.serving.metrics import Metrics
    from keras_cd.serving.repository import ModelRepository
    from keras_cd.serving.server import bind, serve

    try:
        repository = ModelRepository(
            args.model, args.name, seed=args.seed, intra_op_threads=args.intra_op_threads
        )
        repository.scan()
    except ValueError as error:
        sys.exit(f"Cannot load {args.model!r} in onnxruntime: {error}")
    metrics = Metrics()
    batcher = Batcher(
        args.max_batch_size,
        args.batch_timeout_ms / 1000.0,
        args.max_queue_size,
        num_threads=args.batch_threads,
        metrics=metrics,
    )

    def stopped(state):
        print(
            f"stopped: {state.accepted} requests accepted, {state.answered} answered",
            flush=True,
        )

    app = create_app(
        repository,
        batcher,
        metrics,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_values=args.max_values,
        poll_seconds=args.poll_seconds if not repository.single_file else 0,
        on_stop=stopped,
    )
    _raise_open_files_limit()
    try:
        sock = bind(args.host, args.port)
    except OSError as error:
        sys.exit(f"Cannot listen on {args.host!r} port {args.port}: {error}")
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    loaded = "" if repository.current else " (no complete version yet; waiting for one)"
    print(
        f"serving {args.name} from {args.model} on http://{host}:{port}/v1/models/{args.name}"
        + loaded,
        flush=True,
    )
    serve(
        app,
        sock,
        request_timeout=args.timeout,
        keep_alive=args.keep_alive,
        drain_timeout=args.drain_timeout,
        verbose=args.verbose,
    )


if __name__ == "__main__":
    main()

"""Prometheus metrics of the model server, served on `/metrics`.

How a deployment of a served keras_cd network is watched: request rates
and latencies, how much dynamic batching merges, and which model version
answers.

- `keras_cd_serving_requests_total{endpoint, code}`: answered requests.
- `keras_cd_serving_request_duration_seconds{endpoint}`: request latency,
  from the request's headers to the end of its answer.
- `keras_cd_serving_batch_size`: rows of each ONNX Runtime call.
- `keras_cd_serving_inference_duration_seconds`: seconds of each call.
- `keras_cd_serving_queue_depth`: requests waiting to be batched.
- `keras_cd_serving_model_version`: the served version.

Each server has its own registry, so that two servers in one process (as
in tests) keep separate counts.
"""

from __future__ import annotations

from keras_cd.serving.model import require

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The server's Prometheus instruments, in a registry of their own.

    The instruments of the module docstring; each `Metrics` has its own
    `prometheus_client.CollectorRegistry`, so two servers in one process
    keep separate counts.

    Attributes:
        registry: the `prometheus_client.CollectorRegistry`.
        requests: Counter `keras_cd_serving_requests_total{endpoint, code}`.
        latency: Histogram `keras_cd_serving_request_duration_seconds{endpoint}`.
        batch_size: Histogram `keras_cd_serving_batch_size`.
        inference: Histogram `keras_cd_serving_inference_duration_seconds`.
        queue_depth: Gauge `keras_cd_serving_queue_depth`.
        model_version: Gauge `keras_cd_serving_model_version`.
        content_type: str, the media type of `render()`.

    Raises:
        ImportError: without `prometheus_client` (`pip install
            'keras-cd[serve]'`).

    Example:
    >>> import keras_cd
    >>> metrics = keras_cd.serving.Metrics()
    >>> metrics.observe_request("predict", 200, 0.004)
    >>> metrics.observe_batch(rows=6, seconds=0.002)
    >>> text = metrics.render().decode()
    >>> 'keras_cd_serving_requests_total{code="200",endpoint="predict"} 1.0' in text
    True
    """

    def __init__(self) -> None:
        prometheus = require("prometheus_client")
        self.registry = prometheus.CollectorRegistry()
        self.requests = prometheus.Counter(
            "keras_cd_serving_requests",
            "Requests answered, by endpoint and HTTP status code.",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.latency = prometheus.Histogram(
            "keras_cd_serving_request_duration_seconds",
            "Seconds from a request's headers to the end of its answer.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = prometheus.Histogram(
            "keras_cd_serving_batch_size",
            "Rows of each ONNX Runtime call (requests merged by dynamic batching).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.inference = prometheus.Histogram(
            "keras_cd_serving_inference_duration_seconds",
            "Seconds of each ONNX Runtime call.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = prometheus.Gauge(
            "keras_cd_serving_queue_depth",
            "Requests waiting to be batched.",
            registry=self.registry,
        )
        self.model_version = prometheus.Gauge(
            "keras_cd_serving_model_version",
            "The model version being served (0 before one loads).",
            registry=self.registry,
        )
        self._generate = prometheus.generate_latest
        self.content_type = prometheus.CONTENT_TYPE_LATEST

    def observe_request(self, endpoint: str, code: int, seconds: float) -> None:
        """Counts one answered request and its latency.

        Args:
            endpoint: str, e.g. `"predict"`, `"metadata"`, `"status"`.
            code: int, the HTTP status code.
            seconds: float, from the request's headers to the end of its
                answer.
        """
        self.requests.labels(endpoint, str(code)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_batch(self, rows: int, seconds: float) -> None:
        """Records one ONNX Runtime call of `rows` rows that took `seconds`.

        Args:
            rows: int, the rows of the call (merged requests).
            seconds: float, the call's duration.
        """
        self.batch_size.observe(rows)
        self.inference.observe(seconds)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format.

        Returns:
            bytes, what `/metrics` answers.
        """
        return self._generate(self.registry)

"""keras-cd-serve as a process on 127.0.0.1, driven by real HTTP clients.

Dynamic batching (each request gets exactly its own rows, each Monte-Carlo
request its own noise), version hot swap under load, SIGTERM under load,
floods of idle and half-sent connections, the bounded queue, health and
metrics. The models are small CD networks exported with keras_cd.export;
expected answers come from onnxruntime in this process.
"""

import concurrent.futures
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import keras
import numpy as np
import pytest

import keras_cd
from keras_cd import export

onnxruntime = pytest.importorskip("onnxruntime", reason="needs the `export` extra")
pytest.importorskip("uvicorn", reason="needs the `serve` extra")

# keras_cd.export needs TensorFlow (tf2onnx): skipped on the other backends.
pytestmark = pytest.mark.tensorflow

FEATURES = 4


def network(seed):
    inputs = keras.Input((FEATURES,), name="features")
    x = keras_cd.DenseCDBlock(6, sigma=0.5, seed=seed)(inputs)
    initializer = keras.initializers.GlorotUniform(seed=seed)
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer=initializer)(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two versions of one network (different weights) and a Monte-Carlo export."""
    directory = tmp_path_factory.mktemp("models")
    first, second = network(0), network(1)
    export.to_onnx(first, directory / "v1.onnx")
    export.to_onnx(second, directory / "v2.onnx")
    export.to_onnx(first, directory / "mc.onnx", monte_carlo=True)
    return {name: str(directory / f"{name}.onnx") for name in ("v1", "v2", "mc")}


def ort(path, **feeds):
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {k: np.asarray(v, np.float32) for k, v in feeds.items()})[0]


class Server:
    """`python -m keras_cd.serving MODEL --port 0 FLAGS` in its own process."""

    def __init__(self, model, *flags, python_flags=()):
        self.log = tempfile.TemporaryFile(mode="w+")  # a file: a full pipe would block it
        self.process = subprocess.Popen(
            [sys.executable, *python_flags, "-m", "keras_cd.serving", str(model)]
            + ["--name", "model", "--port", "0", *flags],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self.process.stdout.readline()
        assert line.startswith("serving"), line + self.stderr()
        self.port = int(line.split("127.0.0.1:")[1].split("/")[0])

    def stderr(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout=30):
        """SIGTERM, then the rest of stdout once the process exited."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        rest, _ = self.process.communicate(timeout=timeout)
        return rest


@pytest.fixture
def server_factory():
    started = []

    def start(*args, **kwargs):
        started.append(Server(*args, **kwargs))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate(timeout=30)


def call(port, method, path, body=None, headers=None, timeout=30):
    """(status, decoded JSON or text, headers) of one request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        if response.getheader("Content-Type", "").startswith("application/json"):
            data = json.loads(data)
        else:
            data = data.decode()
        return response.status, data, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def predict(port, payload, path="/v1/models/model:predict"):
    status, data, headers = call(port, "POST", path, payload)
    return status, data, headers


def metric(port, name, labels=""):
    """The value of one sample of /metrics (0.0 when it is absent)."""
    status, text, _ = call(port, "GET", "/metrics")
    assert status == 200
    pattern = re.escape(name + (("{" + labels + "}") if labels else "")) + r" (\S+)"
    match = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def read_until_closed(connection):
    data = b""
    while chunk := connection.recv(4096):
        data += chunk
    return data


def concurrently(function, arguments):
    with concurrent.futures.ThreadPoolExecutor(len(arguments)) as pool:
        return list(pool.map(lambda args: function(*args), arguments))


def test_import_and_server_process_need_neither_keras_nor_tensorflow(models, server_factory):
    code = (
        "import sys, keras_cd.serving; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
    # The real process, with every import it makes logged: start-up and requests.
    server = server_factory(models["v1"], python_flags=("-X", "importtime"))
    assert predict(server.port, {"instances": [[0.0] * FEATURES]})[0] == 200
    assert call(server.port, "GET", "/v1/models/model/metadata")[0] == 200
    server.stop()
    # importlib.import_module is not logged, but every module it brings in imports more.
    roots = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in server.stderr().splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert {"keras_cd", "onnxruntime", "uvicorn", "starlette", "prometheus_client"} <= roots
    assert not roots & {"keras", "tensorflow"}


@pytest.fixture(scope="module")
def batching_servers(models):
    """Servers whose first request of a batch waits 400 ms, so concurrent ones merge."""
    servers = {
        name: Server(models[name], "--batch-timeout-ms", "400", "--max-batch-size", "64")
        for name in ("v1", "mc")
    }
    yield servers
    for server in servers.values():
        server.stop()


def test_batched_answers_equal_each_requests_own_onnx_runtime_output(models, batching_servers):
    port = batching_servers["v1"].port
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(1 + i % 4, FEATURES)).astype("float32") for i in range(12)]
    payloads = [
        {"instances": x.tolist()} if i % 2 else {"inputs": {"features": x.tolist()}}
        for i, x in enumerate(inputs)
    ]
    batches = metric(port, "keras_cd_serving_batch_size_count")
    rows = metric(port, "keras_cd_serving_batch_size_sum")
    answers = concurrently(predict, [(port, payload) for payload in payloads])
    for i, (x, (status, data, _)) in enumerate(zip(inputs, answers)):
        assert status == 200, data
        got = np.asarray(data["predictions" if i % 2 else "outputs"])
        assert got.shape == (len(x), 3)
        # A row's result may change in the last bit with the batch it runs in.
        np.testing.assert_allclose(got, ort(models["v1"], features=x), atol=1e-6)
    # They were merged: fewer ONNX Runtime calls than requests, every row run once.
    assert metric(port, "keras_cd_serving_batch_size_sum") - rows == sum(map(len, inputs))
    assert metric(port, "keras_cd_serving_batch_size_count") - batches <= 4


def test_a_request_larger_than_max_batch_size_runs_alone(models, server_factory):
    server = server_factory(models["v1"], "--max-batch-size", "4")
    x = np.random.default_rng(1).normal(size=(10, FEATURES)).astype("float32")
    status, data, _ = predict(server.port, {"instances": x.tolist()})
    assert status == 200
    np.testing.assert_allclose(data["predictions"], ort(models["v1"], features=x), atol=1e-6)


def test_monte_carlo_requests_in_one_batch_each_draw_their_own_noise(models, batching_servers):
    port = batching_servers["mc"].port
    session = onnxruntime.InferenceSession(models["mc"], providers=["CPUExecutionProvider"])
    (width,) = [i.shape[1] for i in session.get_inputs() if i.name == "noise"]
    noise = np.random.default_rng(2).normal(size=(1, width)).astype("float32")
    zeros = [[0.0] * FEATURES]
    payloads = [{"instances": zeros} for _ in range(15)] + [
        {"instances": [{"features": zeros[0], "noise": noise[0].tolist()}]}
    ]
    payloads.append({"instances": zeros * 3})
    batches = metric(port, "keras_cd_serving_batch_size_count")
    answers = concurrently(predict, [(port, payload) for payload in payloads])
    assert all(status == 200 for status, _, _ in answers), answers
    assert metric(port, "keras_cd_serving_batch_size_count") - batches <= 3  # merged
    rows = np.vstack([np.asarray(data["predictions"]) for _, data, _ in answers])
    drawn = np.delete(rows, 15, axis=0)  # the rows of server-drawn noise
    # The same input: each row differs from every other, so no two shared noise.
    distances = np.abs(drawn[:, None, :] - drawn[None, :, :]).sum(-1)
    assert np.all(distances[~np.eye(len(drawn), dtype=bool)] > 1e-6)
    np.testing.assert_allclose(drawn.sum(1), 1.0, atol=1e-5)
    # The request that sent its own noise gets exactly that pass, batched or not.
    np.testing.assert_allclose(
        rows[15], ort(models["mc"], features=zeros, noise=noise)[0], atol=1e-6
    )


def copy_version(model, base, version):
    """Writes BASE/<version>/model.onnx atomically: a hidden folder renamed into place."""
    temporary = os.path.join(base, f".incoming-{version}")
    os.makedirs(temporary)
    shutil.copyfile(model, os.path.join(temporary, "model.onnx"))
    os.rename(temporary, os.path.join(base, str(version)))


def served_version(port):
    status, data, _ = call(port, "GET", "/v1/models/model")
    assert status == 200, data
    available = [s["version"] for s in data["model_version_status"] if s["state"] == "AVAILABLE"]
    return int(available[0]), {s["version"]: s["state"] for s in data["model_version_status"]}


def test_new_version_is_picked_up_under_load_without_a_failure(models, server_factory, tmp_path):
    base = str(tmp_path / "model")
    os.makedirs(base)
    copy_version(models["v1"], base, 1)
    server = server_factory(base, "--poll-seconds", "0.1")
    x = np.random.default_rng(3).normal(size=(2, FEATURES)).astype("float32")
    expected = {1: ort(models["v1"], features=x), 2: ort(models["v2"], features=x)}
    answers, stop = [], threading.Event()

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        body = json.dumps({"instances": x.tolist()})
        while not stop.is_set():
            try:
                connection.request("POST", "/v1/models/model:predict", body=body)
                response = connection.getresponse()
                data = json.loads(response.read())
                answers.append((time.monotonic(), response.status, data))
            except (OSError, http.client.HTTPException, ValueError) as error:
                answers.append((time.monotonic(), None, repr(error)))  # a failure
                connection.close()
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        copy_version(models["v2"], base, 2)
        deadline = time.monotonic() + 10
        while served_version(server.port)[0] != 2:
            assert time.monotonic() < deadline, "version 2 was not picked up"
            time.sleep(0.05)
        switched = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert all(status == 200 for _, status, _ in answers), [a for a in answers if a[1] != 200]
    versions = []
    for _, _, data in answers:
        got = np.asarray(data["predictions"])
        matches = [v for v, want in expected.items() if np.allclose(got, want, atol=1e-6)]
        assert len(matches) == 1, got
        versions.append(matches[0])
    assert versions[0] == 1 and versions[-1] == 2
    # Once version 2 serves, only requests already in flight may still answer from 1.
    late = [v for (t, _, _), v in zip(answers, versions) if t > switched + 0.5]
    assert late and set(late) == {2}
    assert served_version(server.port)[1] == {"2": "AVAILABLE", "1": "END"}
    status, data, _ = predict(
        server.port, {"instances": x.tolist()}, "/v1/models/model/versions/2:predict"
    )
    assert status == 200 and np.allclose(data["predictions"], expected[2], atol=1e-6)
    status, data, _ = predict(
        server.port, {"instances": x.tolist()}, "/v1/models/model/versions/1:predict"
    )
    assert status == 404 and "not served" in data["error"]
    assert (
        call(server.port, "GET", "/v1/models/model/versions/2/metadata")[1]["model_spec"]["version"]
        == "2"
    )
    # Incomplete and broken versions are skipped; version 2 keeps serving.
    os.makedirs(os.path.join(base, "3"))
    with open(os.path.join(base, "3", ".model.onnx.tmp-1234.onnx"), "wb") as handle:
        handle.write(b"half")
    os.makedirs(os.path.join(base, "4"))
    with open(os.path.join(base, "4", "model.onnx"), "wb") as handle:
        handle.write(b"not a model")
    time.sleep(0.6)
    assert served_version(server.port)[0] == 2
    assert predict(server.port, {"instances": x.tolist()})[0] == 200
    assert "version 4 not loaded" in server.stderr()


def test_a_request_in_flight_finishes_on_the_version_it_started_on(
    models, server_factory, tmp_path
):
    base = str(tmp_path / "model")
    os.makedirs(base)
    copy_version(models["v1"], base, 1)
    # A request waits 3 s for companions before it runs: long enough to swap meanwhile.
    server = server_factory(base, "--poll-seconds", "0.1", "--batch-timeout-ms", "3000")
    x = np.random.default_rng(4).normal(size=(1, FEATURES)).astype("float32")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        in_flight = pool.submit(predict, server.port, {"instances": x.tolist()})
        time.sleep(0.3)
        copy_version(models["v2"], base, 2)
        while served_version(server.port)[0] != 2:
            time.sleep(0.05)
        swapped = time.monotonic() - started
        status, data, _ = in_flight.result(timeout=30)
    assert swapped < 2.5, f"the swap took {swapped:.1f} s; the test needs it inside the wait"
    assert status == 200
    np.testing.assert_allclose(data["predictions"], ort(models["v1"], features=x), atol=1e-6)
    status, data, _ = predict(server.port, {"instances": x.tolist()})
    np.testing.assert_allclose(data["predictions"], ort(models["v2"], features=x), atol=1e-6)


def test_an_empty_base_path_is_not_ready_until_a_version_arrives(models, server_factory, tmp_path):
    base = str(tmp_path / "model")
    os.makedirs(base)
    server = server_factory(base, "--poll-seconds", "0.1")
    assert call(server.port, "GET", "/v2/health/live")[0] == 200
    status, data, _ = call(server.port, "GET", "/v2/health/ready")
    assert status == 503 and data["reason"] == "no model version loaded"
    status, data, headers = predict(server.port, {"instances": [[0.0] * FEATURES]})
    assert status == 503 and headers.get("retry-after") == "1" and "No version" in data["error"]
    copy_version(models["v1"], base, 7)
    deadline = time.monotonic() + 10
    while call(server.port, "GET", "/v2/health/ready")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, data, _ = predict(server.port, {"instances": [[0.0] * FEATURES]})
    assert status == 200 and served_version(server.port)[0] == 7


def test_a_full_queue_answers_503_with_retry_after_and_only_then(models, server_factory):
    server = server_factory(models["v1"], "--max-queue-size", "2", "--batch-timeout-ms", "1500")
    body = {"instances": [[0.0] * FEATURES]}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        queued = [pool.submit(predict, server.port, body) for _ in range(2)]
        deadline = time.monotonic() + 5
        while metric(server.port, "keras_cd_serving_queue_depth") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        status, data, headers = predict(server.port, body)
        assert status == 503 and headers.get("retry-after") == "1"
        assert "queue is full" in data["error"]
        assert [f.result(timeout=30)[0] for f in queued] == [200, 200]
    assert predict(server.port, body)[0] == 200  # room again


def test_idle_and_half_sent_connections_do_not_delay_a_valid_request(models, server_factory):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        if hard != resource.RLIM_INFINITY and hard < 1400:
            pytest.skip(f"needs 1,400 open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1400, hard))
    server = server_factory(models["v1"], "--timeout", "3", "--keep-alive", "3")
    connections = []
    try:
        for i in range(1200):
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            if i >= 1000:  # 200 requests stopped in the middle of their headers
                connection.sendall(b"POST /v1/models/model:predict HTTP/1.1\r\nContent-Le")
            connections.append(connection)
        start = time.monotonic()
        status, data, _ = predict(server.port, {"instances": [[0.0] * FEATURES]})
        elapsed = time.monotonic() - start
        assert status == 200 and len(data["predictions"]) == 1
        assert elapsed < 1.0, f"a valid request took {elapsed:.2f} s"
        assert predict(server.port, {"inputs": [[0.0] * 4]})[0] == 200
        # The stalled ones are dropped after --timeout, the idle ones after --keep-alive.
        idle, half_sent = connections[0], connections[-1]
        assert read_until_closed(idle) == b""
        assert read_until_closed(half_sent).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - start < 10
    finally:
        for connection in connections:
            connection.close()


def test_sigterm_under_load_finishes_every_accepted_request(models, server_factory):
    # Requests wait up to 200 ms to be batched, so many are in flight at the signal.
    server = server_factory(models["v1"], "--batch-timeout-ms", "200")
    body = json.dumps({"instances": [[0.5] * FEATURES]})
    counts = {"ok": 0, "failed": 0, "not_accepted": 0}
    lock = threading.Lock()

    def client():
        connection = None
        while True:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                try:
                    connection.connect()
                except OSError:
                    return  # the listener is closed: the server is draining or gone
            try:
                connection.request("POST", "/v1/models/model:predict", body=body)
                response = connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # Closed before a byte of an answer: the request was never accepted.
                with lock:
                    counts["not_accepted"] += 1
                connection.close()
                connection = None
                continue
            try:
                data = json.loads(response.read())
                ok = response.status == 200 and len(data["predictions"]) == 1
            except (http.client.HTTPException, OSError, ValueError, KeyError):
                ok = False
            with lock:
                counts["ok" if ok else "failed"] += 1
            if not ok or response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = None

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    assert counts["ok"] > 0
    output = server.stop()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert server.process.returncode == 0, server.stderr()
    assert counts["failed"] == 0, counts
    accepted, answered = map(
        int, re.search(r"stopped: (\d+) requests accepted, (\d+) answered", output).groups()
    )
    # The server answered all it accepted, and each of those answers was a 200.
    assert accepted == answered == counts["ok"], (output, counts)


def test_health_and_metrics(batching_servers):
    port = batching_servers["v1"].port
    assert call(port, "GET", "/v2/health/live")[:2] == (200, {"live": True})
    assert call(port, "GET", "/v2/health/ready")[:2] == (200, {"ready": True})
    label = 'code="200",endpoint="predict"'
    before = metric(port, "keras_cd_serving_requests_total", label)
    latency = metric(port, "keras_cd_serving_request_duration_seconds_count", 'endpoint="predict"')
    concurrently(predict, [(port, {"instances": [[0.0] * FEATURES]})] * 3)
    assert predict(port, {"instances": [[0.0] * 3]})[0] == 400
    assert metric(port, "keras_cd_serving_requests_total", label) == before + 3
    assert metric(port, "keras_cd_serving_requests_total", 'code="400",endpoint="predict"') >= 1
    assert (
        metric(port, "keras_cd_serving_request_duration_seconds_count", 'endpoint="predict"')
        == latency + 4
    )
    _, text, headers = call(port, "GET", "/metrics")
    assert headers["content-type"].startswith("text/plain")
    for name in (
        "keras_cd_serving_batch_size_bucket",
        "keras_cd_serving_inference_duration_seconds_bucket",
        "keras_cd_serving_queue_depth",
    ):
        assert name in text
    assert metric(port, "keras_cd_serving_model_version") == 1
    assert metric(port, "keras_cd_serving_queue_depth") == 0


def test_chunked_body_over_the_limit_gets_413(models, server_factory):
    server = server_factory(models["v1"], "--max-body-mb", "0.001")  # about 1 KB
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"[" + b"0," * 200 + b"0]" for _ in range(4))
    connection.request("POST", "/v1/models/model:predict", body=chunks, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and "exceeds the limit" in json.loads(response.read())["error"]
    connection.close()
    assert predict(server.port, {"instances": [[0.0] * FEATURES]})[0] == 200

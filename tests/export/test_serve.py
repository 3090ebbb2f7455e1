"""export/serve.py (now a wrapper of keras_cd.serving) answers real HTTP requests, good and bad.

TensorFlow Serving's REST contract through the documented command; batching,
versions, SIGTERM, metrics and floods of stalled clients are tested in
tests/serving/test_server.py.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import pytest

import keras_cd
from keras_cd import export

onnxruntime = pytest.importorskip("onnxruntime", reason="needs the `export` extra")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVE = os.path.join(ROOT, "export", "serve.py")


def network():
    inputs = keras.Input((4,), name="features")
    x = keras_cd.DenseCDBlock(6, sigma=0.5, seed=0)(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    directory = tmp_path_factory.mktemp("serve")
    model = network()
    export.to_onnx(model, directory / "model.onnx")
    export.to_onnx(model, directory / "mc.onnx", monte_carlo=True)
    servers = {
        name: start_server(
            directory / f"{name}.onnx",
            name,
            "--max-body-mb",
            "0.01",
            "--max-values",
            "2000",
            "--seed",
            "0",
        )
        for name in ("model", "mc")
    }
    yield model, servers
    for process, _ in servers.values():
        process.terminate()
        process.wait(timeout=30)


def start_server(path, name, *flags, host="127.0.0.1"):
    log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a full pipe would block
    process = subprocess.Popen(
        [sys.executable, SERVE, str(path), "--name", name, "--host", host, "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    line = process.stdout.readline()
    log.seek(0)
    assert line.startswith("serving"), line + log.read()
    return process, int(line.split("]:" if host.startswith(":") else f"{host}:")[1].split("/")[0])


def request(port, method, path, body=None, headers=None, host="127.0.0.1"):
    connection = http.client.HTTPConnection(host, port, timeout=30)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    payload = json.loads(response.read() or b"null")
    connection.close()
    return response.status, payload


def test_status_and_metadata(served):
    _, servers = served
    port = servers["model"][1]
    status, payload = request(port, "GET", "/v1/models/model")
    assert status == 200 and payload["model_version_status"][0]["state"] == "AVAILABLE"
    status, payload = request(port, "GET", "/v1/models/model/metadata")
    # TensorFlow Serving's layout: a SignatureDefMap under metadata.signature_def.
    assert status == 200 and payload["model_spec"] == {
        "name": "model",
        "signature_name": "",
        "version": "1",
    }
    signature = payload["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"] == {
        "features": {
            "dtype": "DT_FLOAT",
            "name": "features",
            "tensor_shape": {
                "dim": [{"size": "-1", "name": ""}, {"size": "4", "name": ""}],
                "unknown_rank": False,
            },
        }
    }
    (output,) = signature["outputs"].values()
    assert output["dtype"] == "DT_FLOAT" and output["tensor_shape"]["dim"][1]["size"] == "3"


def test_predict_matches_keras_in_row_and_columnar_format(served):
    model, servers = served
    port = servers["model"][1]
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    expected = np.asarray(model(x))
    status, payload = request(port, "POST", "/v1/models/model:predict", {"instances": x.tolist()})
    assert status == 200
    np.testing.assert_allclose(payload["predictions"], expected, atol=1e-5)
    status, payload = request(
        port,
        "POST",
        "/v1/models/model:predict",
        {"instances": [{"features": row} for row in x.tolist()]},
    )
    np.testing.assert_allclose(payload["predictions"], expected, atol=1e-5)
    status, payload = request(
        port, "POST", "/v1/models/model:predict", {"inputs": {"features": x.tolist()}}
    )
    assert status == 200
    np.testing.assert_allclose(payload["outputs"], expected, atol=1e-5)


def test_monte_carlo_model_draws_fresh_noise_per_request(served):
    model, servers = served
    port = servers["mc"][1]
    x = np.zeros((200, 4), "float32").tolist()
    first = np.array(
        request(port, "POST", "/v1/models/mc:predict", {"instances": x})[1]["predictions"]
    )
    second = np.array(
        request(port, "POST", "/v1/models/mc:predict", {"instances": x})[1]["predictions"]
    )
    assert not np.allclose(first, second)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, atol=1e-5)
    with keras_cd.monte_carlo():
        keras_mc = np.asarray(model(np.zeros((4000, 4), "float32")))
    assert np.all(
        np.abs(np.vstack([first, second]).mean(0) - keras_mc.mean(0))
        < 5 * keras_mc.std(0) / np.sqrt(400) + 1e-6
    )


@pytest.mark.parametrize(
    "body, status, message",
    [
        ("{not json", 400, "Malformed JSON"),
        (
            {"instances": [[1.0, 2.0, 3.0]]},
            400,
            "Invalid shape for input 'features': expected ['batch', 4]",
        ),
        ({"instances": [["a", "b", "c", "d"]]}, 400, "expected a (nested) list of numbers"),
        ({"instances": [[1.0, 2.0, 3.0, 4.0], [1.0]]}, 400, "ragged"),
        ({"instances": []}, 400, "Invalid"),
        ({"rows": []}, 400, 'exactly one of "instances"'),
        ({"inputs": {"pixels": [[1, 2, 3, 4]]}}, 400, "Unknown inputs ['pixels']"),
        ({"instances": [[0.0] * 4] * 1000}, 413, "exceeds the limit"),  # ~21 KB > 10 KB
        ('{"instances": ' + "[" * 1500 + "]" * 1500 + "}", 400, "nested too deeply"),  # 3 KB
        ('{"instances": [' + ",".join(["[0,0,0,0]"] * 600) + "]}", 413, "JSON values"),  # 6 KB
    ],
)
def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(served, body, status, message):
    _, servers = served
    port = servers["model"][1]
    got_status, payload = request(port, "POST", "/v1/models/model:predict", body)
    assert got_status == status and message in payload["error"], payload
    ok, payload = request(port, "POST", "/v1/models/model:predict", {"instances": [[0.0] * 4]})
    assert ok == 200 and len(payload["predictions"]) == 1


def test_unknown_paths_and_methods(served):
    _, servers = served
    port = servers["model"][1]
    assert request(port, "GET", "/v1/models/other")[0] == 404
    assert request(port, "POST", "/v1/models/other:predict", {"instances": [[0.0] * 4]})[0] == 404
    assert request(port, "PUT", "/v1/models/model")[0] == 405


def test_unloadable_model_fails_at_start(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    result = subprocess.run(
        [sys.executable, SERVE, str(tmp_path / "broken.onnx"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "Cannot load" in result.stderr


@pytest.fixture(scope="module")
def strict_server(served, tmp_path_factory):
    """A server with a 1 s request timeout, started with the old `--max-workers 2` flag."""
    directory = tmp_path_factory.mktemp("strict")
    export.to_onnx(served[0], directory / "model.onnx")
    process, port = start_server(
        directory / "model.onnx", "model", "--timeout", "1", "--max-workers", "2"
    )
    yield port
    process.terminate()
    process.wait(timeout=30)


def stalled_connection(port):
    """A client that connects, sends half a request line and then nothing."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(b"POST /v1/models/model:pre")
    return connection


def read_until_closed(connection):
    data = b""
    while chunk := connection.recv(4096):
        data += chunk
    return data


def test_a_stalled_client_is_dropped_after_the_request_timeout(strict_server):
    connection = stalled_connection(strict_server)
    start = time.monotonic()
    answer = read_until_closed(connection)  # returns once the server closed it
    assert 0.5 < time.monotonic() - start < 8
    assert answer.startswith(b"HTTP/1.1 408") and b"Request timeout" in answer, answer
    connection.close()
    assert request(strict_server, "GET", "/v1/models/model")[0] == 200


def test_stalled_connections_beyond_the_old_max_workers_cost_no_worker(strict_server):
    stalled = [stalled_connection(strict_server) for _ in range(40)]
    time.sleep(0.3)  # all 40 wait for their timeout; none holds a worker
    start = time.monotonic()
    status, payload = request(
        strict_server, "POST", "/v1/models/model:predict", {"instances": [[0.0] * 4]}
    )
    assert status == 200 and len(payload["predictions"]) == 1
    assert time.monotonic() - start < 1.0
    for connection in stalled:
        assert read_until_closed(connection).startswith(b"HTTP/1.1 408")
        connection.close()


def test_ipv6_host(served, tmp_path):
    if not socket.has_ipv6:
        pytest.skip("Python has no IPv6 support here")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as error:
        pytest.skip(f"no IPv6 loopback on this machine: {error}")
    export.to_onnx(served[0], tmp_path / "model.onnx")
    process, port = start_server(tmp_path / "model.onnx", "model", host="::1")
    try:
        status, payload = request(
            port, "POST", "/v1/models/model:predict", {"instances": [[0.0] * 4]}, host="::1"
        )
        assert status == 200 and len(payload["predictions"]) == 1
    finally:
        process.terminate()
        process.wait(timeout=30)

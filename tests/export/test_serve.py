"""export/serve.py answers real HTTP requests on 127.0.0.1, good and bad."""

import http.client
import json
import os
import subprocess
import sys

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
    servers = {}
    for name in ("model", "mc"):
        process = subprocess.Popen(
            [sys.executable, SERVE, str(directory / f"{name}.onnx"), "--name", name,
             "--port", "0", "--max-body-mb", "0.01", "--seed", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = process.stdout.readline()
        assert line.startswith("serving"), line + process.stderr.read()
        servers[name] = (process, int(line.split("http://127.0.0.1:")[1].split("/")[0]))
    yield model, servers
    for process, _ in servers.values():
        process.terminate()
        process.wait(timeout=30)


def request(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
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
    inputs = payload["metadata"]["signature_def"]["serving_default"]["inputs"]
    assert status == 200 and inputs == [{"name": "features", "shape": [-1, 4], "dtype": "float32"}]


def test_predict_matches_keras_in_row_and_columnar_format(served):
    model, servers = served
    port = servers["model"][1]
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    expected = np.asarray(model(x))
    status, payload = request(port, "POST", "/v1/models/model:predict", {"instances": x.tolist()})
    assert status == 200
    np.testing.assert_allclose(payload["predictions"], expected, atol=1e-5)
    status, payload = request(port, "POST", "/v1/models/model:predict",
                              {"instances": [{"features": row} for row in x.tolist()]})
    np.testing.assert_allclose(payload["predictions"], expected, atol=1e-5)
    status, payload = request(port, "POST", "/v1/models/model:predict", {"inputs": {"features": x.tolist()}})
    assert status == 200
    np.testing.assert_allclose(payload["outputs"], expected, atol=1e-5)


def test_monte_carlo_model_draws_fresh_noise_per_request(served):
    model, servers = served
    port = servers["mc"][1]
    x = np.zeros((200, 4), "float32").tolist()
    first = np.array(request(port, "POST", "/v1/models/mc:predict", {"instances": x})[1]["predictions"])
    second = np.array(request(port, "POST", "/v1/models/mc:predict", {"instances": x})[1]["predictions"])
    assert not np.allclose(first, second)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, atol=1e-5)
    with keras_cd.monte_carlo():
        keras_mc = np.asarray(model(np.zeros((4000, 4), "float32")))
    assert np.all(np.abs(np.vstack([first, second]).mean(0) - keras_mc.mean(0)) < 5 * keras_mc.std(0) / np.sqrt(400) + 1e-6)


@pytest.mark.parametrize(
    "body, status, message",
    [
        ("{not json", 400, "Malformed JSON"),
        ({"instances": [[1.0, 2.0, 3.0]]}, 400, "Invalid shape for input 'features': expected ['batch', 4]"),
        ({"instances": [["a", "b", "c", "d"]]}, 400, "expected a (nested) list of numbers"),
        ({"instances": [[1.0, 2.0, 3.0, 4.0], [1.0]]}, 400, "ragged"),
        ({"instances": []}, 400, "Invalid"),
        ({"rows": []}, 400, 'exactly one of "instances"'),
        ({"inputs": {"pixels": [[1, 2, 3, 4]]}}, 400, "Unknown inputs ['pixels']"),
        ({"instances": [[0.0] * 4] * 1000}, 413, "exceeds the limit"),  # ~21 KB > 10 KB
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
    result = subprocess.run([sys.executable, SERVE, str(tmp_path / "broken.onnx"), "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Cannot load" in result.stderr

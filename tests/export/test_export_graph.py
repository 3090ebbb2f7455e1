"""The graph layers and COIN export to ONNX and SavedModel with parity."""

import warnings

import keras
import numpy as np
import pytest

import keras_cd
from keras_cd import export, graph
from tests.graph.test_laplacian import random_graph

onnxruntime = pytest.importorskip("onnxruntime", reason="needs the `export` extra")


def graph_inputs(size, seed, dense=False):
    rng = np.random.default_rng(seed)
    x = rng.random((size, 12)).astype("float32")
    adjacency = random_graph(size, 0.1, seed=seed)
    if dense:
        return [x, graph.laplacian(adjacency, "coin", format="dense")]
    return [x, *graph.laplacian(adjacency, "coin")]


@pytest.mark.parametrize("kind", ["edges", "dense"])
@pytest.mark.parametrize(
    # The implicit scheme's conjugate-gradient solve takes ~100 s to convert: slow tier.
    "scheme",
    ["explicit", pytest.param("implicit", marks=pytest.mark.slow)],
)
def test_coin_exports_with_parity_on_two_graph_sizes(kind, scheme, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = keras_cd.models.coin_classifier(
            12, 3, num_steps=4, sigma2=0.3, graph=kind, scheme=scheme
        )
    checks = [graph_inputs(30, 1, kind == "dense"), graph_inputs(55, 2, kind == "dense")]
    report = export.to_onnx(model, tmp_path / "coin.onnx", check_inputs=checks)
    assert report.max_abs_diff <= 1e-5 and report.batch_sizes == (30, 55)
    saved = export.to_saved_model(model, tmp_path / "serving", check_inputs=checks)
    assert saved.max_abs_diff <= 1e-5
    session = onnxruntime.InferenceSession(str(tmp_path / "coin.onnx"))
    third = graph_inputs(41, 3, kind == "dense")
    outputs = session.run(None, {i.name: a for i, a in zip(session.get_inputs(), third)})[0]
    np.testing.assert_allclose(outputs, np.asarray(model(third)), atol=1e-5)


def test_gaussian_kernel_graph_exports_with_a_dynamic_batch(tmp_path):
    inputs = keras.Input((5,), name="features")
    diffused = keras_cd.GraphDiffusion(3, 0.2)(inputs, keras_cd.GaussianKernelGraph(8, 4)(inputs))
    model = keras.Model(inputs, diffused)
    rng = np.random.default_rng(0)
    checks = [rng.normal(size=(n, 5)).astype("float32") for n in (3, 20)]  # 3 < k = 8
    report = export.to_onnx(model, tmp_path / "knn.onnx", check_inputs=checks)
    assert report.max_abs_diff <= 1e-5
    assert (
        export.to_saved_model(model, tmp_path / "serving", check_inputs=checks).max_abs_diff <= 1e-5
    )
    session = onnxruntime.InferenceSession(str(tmp_path / "knn.onnx"))
    for batch in (1, 2, 9, 64):
        x = rng.normal(size=(batch, 5)).astype("float32")
        np.testing.assert_allclose(
            session.run(None, {"features": x})[0], np.asarray(model(x)), atol=1e-5
        )

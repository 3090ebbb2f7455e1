import warnings

import keras
import numpy as np
import pytest

import keras_cd
from keras_cd import graph
from tests.graph.test_laplacian import random_graph


def problem(size=40, features=12, classes=3):
    rng = np.random.default_rng(0)
    x = rng.random((size, features)).astype("float32")
    edges = graph.laplacian(random_graph(size, 0.1, seed=1), "coin")
    dense = graph.laplacian(random_graph(size, 0.1, seed=1), "coin", format="dense")
    return x, edges, dense


def test_edge_and_dense_models_agree_and_output_distributions():
    x, edges, dense = problem()
    edge_model = keras_cd.models.coin_classifier(12, 3, num_steps=5, sigma2=0.2)
    dense_model = keras_cd.models.coin_classifier(12, 3, num_steps=5, sigma2=0.2, graph="dense")
    dense_model.set_weights(edge_model.get_weights())
    a = np.asarray(edge_model([x, *edges]))
    b = np.asarray(dense_model([x, dense]))
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)  # L 1 = 0 keeps rows on the simplex
    assert np.all(a >= 0)


def test_num_steps_zero_is_the_residual_base_classifier():
    x, edges, _ = problem()
    model = keras_cd.models.coin_classifier(12, 3, num_steps=0)
    w0, b0, w1, b1, w2, b2 = model.get_weights()
    h = x @ w0 + b0
    h = h + np.maximum(h @ w1 + b1, 0)
    scores = h @ w2 + b2
    expected = np.exp(scores - scores.max(1, keepdims=True))
    np.testing.assert_allclose(np.asarray(model([x, *edges])), expected / expected.sum(1, keepdims=True),
                               atol=1e-5)


def test_diffusion_smooths_the_base_prediction_along_the_graph():
    x, edges, dense = problem()
    model = keras_cd.models.coin_classifier(12, 3, num_steps=10, sigma2=0.2)
    base = keras_cd.models.coin_classifier(12, 3, num_steps=0)
    base.set_weights(model.get_weights())
    p0, p = np.asarray(base([x, *edges])), np.asarray(model([x, *edges]))
    expected = np.linalg.matrix_power(np.eye(40) - 0.2 * dense, 10) @ p0
    np.testing.assert_allclose(p, expected, atol=1e-5)
    energy = lambda u: np.einsum("nc,nm,mc->", u, dense, u)
    assert energy(p) < energy(p0)


def test_saves_loads_and_warns_when_unstable(tmp_path):
    x, edges, _ = problem()
    with pytest.warns(UserWarning, match="Unstable explicit diffusion"):
        model = keras_cd.models.coin_classifier(12, 3, sigma2=0.35, lambda_max=5.78)
    model.save(tmp_path / "coin.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = keras.saving.load_model(tmp_path / "coin.keras")
    np.testing.assert_array_equal(np.asarray(model([x, *edges])), np.asarray(loaded([x, *edges])))


@pytest.mark.parametrize("kwargs, name", [({"graph": "csr"}, "graph"), ({"dropout": 1.0}, "dropout"),
                                          ({"num_classes": 1}, "num_classes"),
                                          ({"hidden_units": 0}, "hidden_units")])
def test_bad_arguments(kwargs, name):
    arguments = {"num_features": 12, "num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=f"Invalid value for `{name}`"):
        keras_cd.models.coin_classifier(**arguments)

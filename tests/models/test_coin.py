import warnings

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

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
    a = convert_to_numpy(edge_model([x, *edges]))
    b = convert_to_numpy(dense_model([x, dense]))
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)  # L 1 = 0 keeps rows on the simplex
    assert np.all(a >= 0)


# TensorFlow only: tf.SparseTensor Laplacian and features (graph="sparse").
@pytest.mark.tensorflow
def test_sparse_laplacian_and_sparse_features_give_the_edge_model_result():
    import tensorflow as tf

    x, edges, dense = problem()
    x[x < 0.7] = 0  # a sparse bag of features
    edge_model = keras_cd.models.coin_classifier(12, 3, num_steps=5, sigma2=0.2)
    sparse_model = keras_cd.models.coin_classifier(
        12, 3, num_steps=5, sigma2=0.2, graph="sparse", sparse_features=True
    )
    sparse_model.set_weights(edge_model.get_weights())
    expected = np.asarray(edge_model([x, *edges]))
    got = sparse_model([tf.sparse.from_dense(x), tf.sparse.from_dense(dense)])
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def softmax(scores):
    expected = np.exp(scores - scores.max(1, keepdims=True))
    return expected / expected.sum(1, keepdims=True)


def test_num_steps_zero_is_the_reference_residual_base_classifier():
    # hidden_units=None: the reference code's f = (x + relu(x W1 + b1)) W2 + b2.
    x, edges, _ = problem()
    model = keras_cd.models.coin_classifier(12, 3, num_steps=0, hidden_units=None)
    kernel, b1, b2 = model.get_weights()
    w1, w2 = kernel[:, :12], kernel[:, 12:]
    h = x + np.maximum(x @ w1 + b1, 0)
    np.testing.assert_allclose(
        convert_to_numpy(model([x, *edges])), softmax(h @ w2 + b2), atol=1e-5
    )


def test_low_rank_base_is_a_residual_step_with_a_rank_h_velocity():
    # f = x W2 + relu(x W1 + b1) U + b2 equals (x + relu(x W1 + b1) V) W2 + b2
    # for any V with V W2 = U (here the minimum-norm solution).
    x, edges, _ = problem()
    model = keras_cd.models.coin_classifier(12, 3, num_steps=0, hidden_units=5)
    kernel, b1, readout, b2 = model.get_weights()
    w1, w2 = kernel[:, :5], kernel[:, 5:]
    velocity = readout @ np.linalg.pinv(w2)  # (5, 12), V W2 = U since W2 has full column rank
    np.testing.assert_allclose(velocity @ w2, readout, atol=1e-5)
    h = x + np.maximum(x @ w1 + b1, 0) @ velocity
    np.testing.assert_allclose(
        convert_to_numpy(model([x, *edges])), softmax(h @ w2 + b2), atol=1e-5
    )


def test_diffusion_smooths_the_base_prediction_along_the_graph():
    x, edges, dense = problem()
    model = keras_cd.models.coin_classifier(12, 3, num_steps=10, sigma2=0.2)
    base = keras_cd.models.coin_classifier(12, 3, num_steps=0)
    base.set_weights(model.get_weights())
    p0, p = convert_to_numpy(base([x, *edges])), convert_to_numpy(model([x, *edges]))
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
    np.testing.assert_array_equal(
        convert_to_numpy(model([x, *edges])), convert_to_numpy(loaded([x, *edges]))
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"graph": "csr"}, "graph"),
        ({"dropout": 1.0}, "dropout"),
        ({"num_classes": 1}, "num_classes"),
        ({"hidden_units": 0}, "hidden_units"),
        ({"input_dropout": -0.1}, "input_dropout"),
        ({"num_features": 0}, "num_features"),
    ],
)
def test_bad_arguments(kwargs, name):
    arguments = {"num_features": 12, "num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=f"Invalid value for `{name}`"):
        keras_cd.models.coin_classifier(**arguments)


def test_the_same_seed_builds_the_same_model_and_dropout_masks():
    x, edges, _ = problem()

    def outputs(seed):
        model = keras_cd.models.coin_classifier(12, 3, num_steps=3, sigma2=0.2, seed=seed)
        return model.get_weights(), convert_to_numpy(model([x, *edges], training=True))

    (weights_a, out_a), (weights_b, out_b) = outputs(7), outputs(7)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out_a, out_b)  # same dropout masks too
    assert not np.array_equal(outputs(8)[1], out_a)


def test_an_unstable_default_setting_warns_when_the_laplacian_is_given():
    x, edges, dense = problem()
    lambda_max = graph.largest_eigenvalue(dense)
    with pytest.warns(UserWarning, match=r"Unstable explicit diffusion.*sigma2 <= "):
        keras_cd.models.coin_classifier(12, 3, sigma2=2.2 / lambda_max, laplacian=edges)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = keras_cd.models.coin_classifier(12, 3, sigma2=1.9 / lambda_max, laplacian=edges)
        keras_cd.models.coin_classifier(
            12, 3, sigma2=2.2 / lambda_max, laplacian=edges, scheme="implicit"
        )
    assert model.get_layer("graph_diffusion").lambda_max <= graph.gershgorin_bound(dense)
    learned = keras_cd.models.coin_classifier(
        12, 3, sigma2=1.5 / lambda_max, laplacian=dense, trainable_sigma2=True
    )
    limit = learned.get_layer("graph_diffusion").stable_sigma2_limit()
    assert limit == pytest.approx(2 / lambda_max, rel=1e-6)  # Lanczos, not the loose bound


def test_implicit_coin_refuses_a_non_symmetric_laplacian():
    random_walk = graph.laplacian(random_graph(40, 0.1, seed=1), "random_walk")
    with pytest.raises(ValueError, match="symmetric Laplacian"):
        keras_cd.models.coin_classifier(12, 3, scheme="implicit", laplacian=random_walk)


def test_numpy_scalars_are_accepted_and_bad_ones_named():
    model = keras_cd.models.coin_classifier(
        np.int64(12),
        np.int32(3),
        num_steps=np.int64(2),
        sigma2=np.float32(0.2),
        hidden_units=np.int16(8),
        dropout=np.float32(0.3),
        seed=np.int64(1),
    )
    assert model.output.shape[-1] == 3
    with pytest.raises(
        ValueError, match=r"Invalid value for `dropout`: expected a number in \[0, 1\)"
    ):
        keras_cd.models.coin_classifier(12, 3, dropout=np.float64(1.0))
    with pytest.raises(ValueError, match="Invalid value for `hidden_units`"):
        keras_cd.models.coin_classifier(12, 3, hidden_units=np.float32(8))

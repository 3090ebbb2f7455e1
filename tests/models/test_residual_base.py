import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

from keras_cd.models import ResidualBaseClassifier
from tests.layer_contract import check_layer_contract


@pytest.mark.parametrize("hidden_units", [4, None])
def test_layer_contract(hidden_units, tmp_path):
    check_layer_contract(
        ResidualBaseClassifier,
        {
            "num_classes": 3,
            "hidden_units": hidden_units,
            "dropout": 0.2,
            "input_dropout": 0.1,
            "seed": 1,
        },
        (16, 6),
        tmp_path,
    )


def sparse_features(rng, rows=50, columns=40, density=0.1):
    """Dense features and the same as the backend's sparse tensor (tf.SparseTensor
    on TensorFlow, BCOO on JAX)."""
    import scipy.sparse as sp

    from keras_cd import _backend

    dense = (rng.random((rows, columns)) < density) * rng.random((rows, columns))
    dense = dense.astype("float32")
    return dense, _backend.sparse_tensor(sp.csr_matrix(dense))


# TensorFlow and JAX: Keras has no sparse inputs on PyTorch.
@pytest.mark.parametrize("hidden_units", [8, None])
def test_sparse_input_gives_the_dense_result(rng, hidden_units):
    from keras_cd import _backend

    if not _backend.supports_sparse():
        pytest.skip("Keras has no sparse inputs on PyTorch (the trainers take dense features)")
    dense, sparse = sparse_features(rng)
    layer = ResidualBaseClassifier(4, hidden_units, dropout=0.0)
    np.testing.assert_allclose(
        convert_to_numpy(layer(sparse)), convert_to_numpy(layer(dense)), atol=1e-5
    )


# TensorFlow only: tf.SparseTensor features under tf.function(jit_compile=True).
@pytest.mark.tensorflow
def test_sparse_input_compiles_under_xla_with_the_same_gradients(rng):
    import tensorflow as tf

    dense, sparse = sparse_features(rng)
    layer = ResidualBaseClassifier(4, 8)
    layer(dense)

    def gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x) ** 2)
        return [tf.convert_to_tensor(g) for g in tape.gradient(loss, layer.trainable_weights)]

    eager = gradients(dense)
    compiled = tf.function(gradients, jit_compile=True)(sparse)
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)


def test_input_dropout_drops_whole_features_consistently_for_both_branches(rng):
    # One mask on x feeds both x W1 and x W2. With one feature, W1 = [1, 0, 0],
    # W2 = [1, 2], U = [[1, 1], 0, 0] and zero biases, f = x_d [1, 2] +
    # relu(x_d) [1, 1] = x_d [2, 3], where x_d is the dropped-out x: 0 or
    # 1 / 0.75. Separate masks for the two branches would also give x_d [1, 2]
    # or [1, 1] rows.
    x = np.ones((2000, 1), "float32")
    layer = ResidualBaseClassifier(2, 3, dropout=0.0, input_dropout=0.25, seed=0)
    layer(x)
    layer.kernel.assign(np.array([[1.0, 0.0, 0.0, 1.0, 2.0]], "float32"))
    layer.readout.assign(np.array([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]], "float32"))
    out = convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(out[:, 1], 1.5 * out[:, 0], rtol=1e-6)
    np.testing.assert_allclose(np.unique(out[:, 0]), [0.0, 2 / 0.75], rtol=1e-6)
    assert abs(out[:, 0].mean() / 2 - 1.0) < 5 * np.sqrt(1 / 0.75 - 1) / np.sqrt(len(x))
    np.testing.assert_allclose(
        convert_to_numpy(layer(x)), np.tile([[2.0, 3.0]], (2000, 1)), rtol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 3, "hidden_units": 0}, "hidden_units"),
        ({"num_classes": 3, "dropout": 1.0}, "dropout"),
        ({"num_classes": 3, "input_dropout": "0.5"}, "input_dropout"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"Invalid value for `{argument}`"):
        ResidualBaseClassifier(**kwargs)


def test_unknown_feature_width_is_rejected():
    with pytest.raises(ValueError, match="known number of features"):
        ResidualBaseClassifier(3)(keras.Input((None,)))

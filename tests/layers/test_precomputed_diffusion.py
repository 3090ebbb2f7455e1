"""keras_cd.layers.PrecomputedDiffusion: GraphDiffusion read at chosen rows, precomputed."""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

from keras_cd import GraphDiffusion, graph
from keras_cd.layers import PrecomputedDiffusion
from keras_cd.models import coin_classifier
from tests.graph.test_laplacian import random_graph
from tests.layer_contract import check_layer_contract

ADJACENCY = random_graph(30, density=0.15, seed=3)
EDGES = graph.laplacian(ADJACENCY, "coin")
ALL_ROWS = graph.diffusion_rows(EDGES, np.arange(30), 5, 0.2).toarray()


def test_layer_contract(tmp_path):
    check_layer_contract(
        PrecomputedDiffusion,
        {},
        (30, 4),
        tmp_path,
        extra_inputs=[ALL_ROWS],
        apply=lambda layer, tensors: layer(*tensors),
    )


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_equals_graph_diffusion_at_the_rows(scheme):
    u = np.random.default_rng(0).normal(size=(30, 3)).astype("float32")
    full = convert_to_numpy(GraphDiffusion(5, 0.2, scheme=scheme, solver_iterations=50)(u, EDGES))
    rows = np.array([7, 1, 29])
    operator = graph.diffusion_rows(EDGES, rows, 5, 0.2, scheme)
    out = PrecomputedDiffusion()(u, operator.toarray())
    assert out.shape == (3, 3)
    np.testing.assert_allclose(convert_to_numpy(out), full[rows], rtol=1e-5, atol=1e-6)


# TensorFlow only: a tf.SparseTensor operator under tf.function(jit_compile=True).
@pytest.mark.tensorflow
def test_a_sparse_operator_gives_the_dense_result_and_compiles_with_xla():
    import tensorflow as tf

    u = np.random.default_rng(1).normal(size=(30, 2)).astype("float32")
    operator = graph.diffusion_rows(EDGES, [0, 5, 9], 3, 0.2).tocoo()
    sparse = tf.sparse.reorder(
        tf.sparse.SparseTensor(
            np.stack([operator.row, operator.col], 1).astype("int64"),
            operator.data,
            operator.shape,
        )
    )
    layer = PrecomputedDiffusion()
    compiled = tf.function(lambda v: layer(v, sparse), jit_compile=True)
    np.testing.assert_allclose(
        np.asarray(compiled(u)), operator.toarray() @ u, rtol=1e-6, atol=1e-6
    )


def test_coin_with_rows_is_coin_with_the_layer_read_at_those_rows():
    features = np.random.default_rng(2).random((30, 6)).astype("float32")
    layered = coin_classifier(6, 3, num_steps=5, sigma2=0.2, seed=4)
    rows_model = coin_classifier(6, 3, num_steps=5, sigma2=0.2, seed=4, graph="rows")
    rows_model.set_weights(layered.get_weights())
    rows = np.array([2, 3, 11, 28])
    operator = graph.diffusion_rows(EDGES, rows, 5, 0.2).toarray()
    expected = convert_to_numpy(layered([features, *EDGES]))[rows]
    np.testing.assert_allclose(
        convert_to_numpy(rows_model([features, operator])), expected, rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="precomputed diffusion rows fix sigma2"):
        coin_classifier(6, 3, graph="rows", trainable_sigma2=True)


def test_the_rows_model_warns_about_an_unstable_setting():
    with pytest.warns(UserWarning, match="Unstable explicit diffusion"):
        coin_classifier(6, 3, num_steps=20, sigma2=0.35, lambda_max=5.78, graph="rows")


def test_rank_is_checked():
    with pytest.raises(ValueError, match="rank 2"):
        PrecomputedDiffusion()(np.ones((3, 2, 2), "float32"), np.ones((1, 3), "float32"))


def test_saved_model_round_trip(tmp_path):
    model = coin_classifier(6, 3, num_steps=5, sigma2=0.2, seed=1, graph="rows")
    path = tmp_path / "coin_rows.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    features = np.random.default_rng(3).random((30, 6)).astype("float32")
    operator = ALL_ROWS[:4]
    np.testing.assert_array_equal(
        convert_to_numpy(model([features, operator])),
        convert_to_numpy(loaded([features, operator])),
    )

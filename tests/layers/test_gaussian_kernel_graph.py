import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

from keras_cd import GaussianKernelGraph, GraphDiffusion, graph
from tests.layer_contract import check_layer_contract


def brute_force(points, k, b):
    """The definition, with loops: kNN, Gaussian weights, D^-1/2 W D^-1/2, symmetrise, L."""
    size = len(points)
    distance = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    k = min(k, size - 1)
    weights = np.zeros((size, size))
    for i in range(size):
        order = [j for j in np.argsort(distance[i]) if j != i][:k]
        bandwidth = distance[i, order[min(b, k) - 1]]
        for j in order:
            weights[i, j] = np.exp(-((distance[i, j] / bandwidth) ** 2))
    degree = weights.sum(1)
    normalized = weights / np.sqrt(np.outer(degree, degree))
    symmetric = (normalized + normalized.T) / 2
    return np.diag(symmetric.sum(1)) - symmetric


def points(size=25, dim=5, seed=0):
    return np.random.default_rng(seed).normal(size=(size, dim)).astype("float32")


def diffuse_on_graph(layer, tensors):
    scores = keras.layers.Dense(3, name="scores")(tensors[0])
    return GraphDiffusion(2, 0.2, name="diffusion")(scores, layer(tensors[0]))


def test_layer_contract(tmp_path):
    check_layer_contract(
        GaussianKernelGraph,
        {"num_neighbors": 5, "bandwidth_neighbor": 2},
        (12, 4),
        tmp_path,
        apply=diffuse_on_graph,
    )


@pytest.mark.parametrize("size, k, b", [(25, 8, 4), (25, 3, 3), (6, 8, 4), (2, 8, 4)])
def test_matches_a_brute_force_reference(size, k, b):
    x = points(size)
    expected = brute_force(x.astype("float64"), k, b)
    dense = convert_to_numpy(GaussianKernelGraph(k, b, format="dense")(x))
    np.testing.assert_allclose(dense, expected, atol=1e-5)
    senders, receivers, weights = (convert_to_numpy(a) for a in GaussianKernelGraph(k, b)(x))
    from_edges = np.zeros((size, size))
    np.add.at(from_edges, (receivers, senders), weights)
    np.testing.assert_allclose(from_edges, expected, atol=1e-5)
    np.testing.assert_allclose(
        graph.gaussian_knn_graph(x, k, b, format="dense"), expected, atol=1e-5
    )


def test_laplacian_invariants():
    dense = convert_to_numpy(GaussianKernelGraph(6, 3, format="dense")(points(40)))
    np.testing.assert_allclose(dense.sum(axis=1), 0, atol=1e-5)  # L 1 = 0
    np.testing.assert_allclose(dense, dense.T, atol=1e-6)
    assert np.linalg.eigvalsh(dense).min() > -1e-5  # positive semi-definite
    assert np.all(dense - np.diag(np.diag(dense)) <= 1e-7)  # non-positive off-diagonal


# TensorFlow only: a tf.function traced once for every batch size (input_signature None).
@pytest.mark.tensorflow
def test_batch_smaller_than_k_works_inside_a_compiled_model():
    import tensorflow as tf

    inputs = keras.Input((5,))
    outputs = GraphDiffusion(3, 0.2)(inputs, GaussianKernelGraph(8, 4)(inputs))
    model = keras.Model(inputs, outputs)
    compiled = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec((None, 5))])
    for batch in (1, 2, 3, 9, 40):
        x = points(batch)
        out = compiled(x).numpy()
        assert out.shape == (batch, 5) and np.all(np.isfinite(out))
        np.testing.assert_allclose(out.sum(axis=0), x.sum(axis=0), atol=1e-4)  # mass conserved


def test_mixed_precision_outputs():
    layer = GaussianKernelGraph(4, 2, dtype="mixed_float16")
    senders, receivers, weights = layer(points(10))
    assert keras.backend.standardize_dtype(weights.dtype) == "float16"
    assert keras.backend.standardize_dtype(senders.dtype) == "int32"


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_neighbors": 0}, "num_neighbors"),
        ({"bandwidth_neighbor": 0}, "bandwidth_neighbor"),
        ({"num_neighbors": 3, "bandwidth_neighbor": 4}, "bandwidth_neighbor"),
        ({"format": "csr"}, "format"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"Invalid value for `{name}`"):
        GaussianKernelGraph(**kwargs)


def test_wrong_rank():
    with pytest.raises(ValueError, match="expected rank 2"):
        GaussianKernelGraph()(np.zeros((3, 2, 2), "float32"))

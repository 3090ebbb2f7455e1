import numpy as np
import pytest
from keras.ops import convert_to_numpy

from keras_cd import graph
from tests.layers.test_gaussian_kernel_graph import brute_force


def test_offline_graph_matches_the_brute_force_definition():
    x = np.random.default_rng(1).normal(size=(60, 7))
    np.testing.assert_allclose(
        graph.gaussian_knn_graph(x, 8, 4, format="dense"), brute_force(x, 8, 4), atol=1e-6
    )


def test_edges_scale_with_n_times_k():
    x = np.random.default_rng(2).normal(size=(2000, 16)).astype("float32")
    senders, receivers, weights = graph.gaussian_knn_graph(x, 8, 4)
    assert len(weights) <= 2000 * (2 * 8 + 1)
    assert np.all(np.diff(receivers) >= 0)
    matrix = graph.gaussian_knn_graph(x, 8, 4, format="scipy")
    np.testing.assert_allclose(np.asarray(matrix.sum(axis=1)).ravel(), 0, atol=1e-5)


def test_bad_points():
    with pytest.raises(ValueError, match="Invalid value for `points`"):
        graph.gaussian_knn_graph(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="Invalid value for `bandwidth_neighbor`"):
        graph.gaussian_knn_graph(np.zeros((5, 3)), 2, 3)


def test_duplicate_points_get_their_twin_as_a_neighbour_and_no_self_edge():
    import keras_cd

    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 5)).astype("float32")
    x = np.concatenate([x, x])[rng.permutation(60)]  # every point has an exact twin
    # k = 5: the twin, then whole pairs of twins (a cut inside a pair would be a tie)
    offline = graph.gaussian_knn_graph(x, 5, 3, format="dense")
    in_batch = convert_to_numpy(keras_cd.GaussianKernelGraph(5, 3, format="dense")(x))
    np.testing.assert_allclose(offline, in_batch, atol=1e-5)
    np.testing.assert_allclose(offline, brute_force(x, 5, 3), atol=1e-6)
    adjacency = np.diag(np.diag(offline)) - offline  # the symmetrised weights
    twins = [np.flatnonzero((x == x[i]).all(axis=1) & (np.arange(60) != i))[0] for i in range(60)]
    assert all(adjacency[i, j] > 0 for i, j in enumerate(twins))

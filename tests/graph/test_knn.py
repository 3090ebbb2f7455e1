import numpy as np
import pytest

from keras_cd import graph
from tests.layers.test_gaussian_kernel_graph import brute_force


def test_offline_graph_matches_the_brute_force_definition():
    x = np.random.default_rng(1).normal(size=(60, 7))
    np.testing.assert_allclose(graph.gaussian_knn_graph(x, 8, 4, format="dense"),
                               brute_force(x, 8, 4), atol=1e-6)


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

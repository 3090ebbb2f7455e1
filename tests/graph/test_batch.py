"""keras_cd.graph.disjoint_union: a batch of graphs as one graph."""

import numpy as np
import pytest

from keras_cd import graph


def test_node_ids_are_offset_graph_by_graph():
    first = (np.array([0, 1]), np.array([1, 0]), np.array([0.5, 0.25]))
    second = (np.array([2]), np.array([0]), np.array([2.0]))
    senders, receivers, weights = graph.disjoint_union([first, second, first], [2, 3, 2])
    assert senders.tolist() == [0, 1, 4, 5, 6] and receivers.tolist() == [1, 0, 2, 6, 5]
    assert weights.tolist() == [0.5, 0.25, 2.0, 0.5, 0.25]
    assert (senders.dtype, receivers.dtype, weights.dtype) == (np.int32, np.int32, np.float32)
    same = graph.disjoint_union([first, first], 2)
    assert same[0].tolist() == [0, 1, 2, 3]


def test_bad_graphs_are_named():
    edge = (np.array([0]), np.array([1]), np.array([1.0]))
    with pytest.raises(ValueError, match="`num_nodes`: expected an int or one count per graph"):
        graph.disjoint_union([edge, edge], [2])
    with pytest.raises(ValueError, match=r"`graphs\[1\]`: receivers must be node ids in \[0, 1\)"):
        graph.disjoint_union([edge, edge], [2, 1])
    with pytest.raises(ValueError, match=r"`graphs\[0\]`: expected an edge list"):
        graph.disjoint_union([(np.array([0]), np.array([0]))], 2)
    with pytest.raises(ValueError, match="one entry per edge"):
        graph.disjoint_union([(np.array([0]), np.array([0, 1]), np.array([1.0]))], 2)

"""Batches of graphs as one graph: the disjoint union of edge lists.

Graph diffusion u_t = -L u (the diffusion half of COIN, Wang, Bao & Shi,
arXiv 2403.15726) on a batch of small graphs is diffusion on their disjoint
union, whose Laplacian is block-diagonal:
[`disjoint_union`][keras_cd.graph.disjoint_union] builds its edge list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def disjoint_union(
    graphs: Iterable[tuple[ArrayLike, ArrayLike, ArrayLike]], num_nodes: int | Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One edge list for a batch of graphs, node ids offset graph by graph.

    Graph b's nodes become rows `offset_b ... offset_b + n_b - 1` of the
    batch, `offset_b = n_0 + ... + n_{b-1}`, so for node rows stacked graph
    after graph, a diffusion or convolution on the union acts on each graph
    exactly as on that graph alone (no edge joins two graphs):
    `L_union = diag(L_0, L_1, ...)`.

    Args:
        graphs: sequence of edge lists `(senders, receivers, weights)`, one
            per graph (e.g. from `keras_cd.graph.laplacian(..., format="edges")`).
        num_nodes: int, the nodes of every graph, or a sequence of ints, one
            per graph.

    Returns:
        `(senders, receivers, weights)`: int32, int32, float32 arrays of
        length sum of the graphs' edge counts (empty arrays for no graph).

    Raises:
        ValueError: if `num_nodes` is a sequence whose length differs from
            the number of graphs, a graph is not three arrays of equal
            length, a node id falls outside [0, n_b) for its graph, or the
            union has more nodes than int32 ids can address.

    Example:
        >>> import numpy as np, keras_cd
        >>> edge = (np.array([0]), np.array([1]), np.array([0.5]))
        >>> senders, receivers, weights = keras_cd.graph.disjoint_union([edge, edge], 2)
        >>> senders.tolist(), receivers.tolist()  # graph 1's nodes 0, 1 are now 2, 3
        ([0, 2], [1, 3])
        >>> weights.tolist()
        [0.5, 0.5]
    """
    graphs = list(graphs)
    counts = [num_nodes] * len(graphs) if np.isscalar(num_nodes) else list(num_nodes)
    if len(counts) != len(graphs):
        raise ValueError(
            f"Invalid value for `num_nodes`: expected an int or one count per graph "
            f"({len(graphs)} graphs). Received: {len(counts)} counts."
        )
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    parts = ([], [], [])
    for index, (graph, count, offset) in enumerate(zip(graphs, counts, offsets)):
        if len(graph) != 3:
            raise ValueError(
                f"Invalid value for `graphs[{index}]`: expected an edge list "
                f"(senders, receivers, weights). Received: {len(graph)} arrays. Use "
                'keras_cd.graph.laplacian(adjacency, format="edges").'
            )
        senders, receivers, weights = (np.asarray(a).ravel() for a in graph)
        if not senders.shape == receivers.shape == weights.shape:
            raise ValueError(
                f"Invalid value for `graphs[{index}]`: senders, receivers and weights must "
                f"have one entry per edge. Received: lengths {senders.size}, "
                f"{receivers.size}, {weights.size}."
            )
        for name, ids in (("senders", senders), ("receivers", receivers)):
            if ids.size and (ids.min() < 0 or ids.max() >= count):
                raise ValueError(
                    f"Invalid value for `graphs[{index}]`: {name} must be node ids in "
                    f"[0, {count}). Received: ids from {ids.min()} to {ids.max()}. Check "
                    "`num_nodes`."
                )
        parts[0].append(senders.astype(np.int64) + offset)
        parts[1].append(receivers.astype(np.int64) + offset)
        parts[2].append(weights)
    if sum(counts) > np.iinfo(np.int32).max:
        raise ValueError(
            f"Invalid value for `num_nodes`: the union has {sum(counts)} nodes, more than "
            "int32 ids can address. Use smaller batches."
        )
    if not graphs:
        return (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32))
    senders, receivers, weights = (np.concatenate(p) for p in parts)
    return senders.astype(np.int32), receivers.astype(np.int32), weights.astype(np.float32)

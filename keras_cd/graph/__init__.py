"""Graphs over the data: Laplacians, eigenvalue bounds and Gaussian kNN graphs.

Offline work (building a Laplacian from an adjacency matrix, bounding its
spectrum) uses scipy.sparse; what `keras_cd.GraphDiffusion` takes is either a
dense (N, N) Laplacian or its nonzeros as an edge list
`(senders, receivers, weights)` with (L u)_i = sum over edges e with
receivers[e] = i of weights[e] * u[senders[e]]. A batch of graphs is one
graph, their disjoint union (`disjoint_union`).
"""

from keras_cd.graph.batch import disjoint_union
from keras_cd.graph.diffusion import diffuse, diffusion_rows
from keras_cd.graph.knn import gaussian_knn_graph
from keras_cd.graph.laplacian import (
    NORMALIZATIONS,
    gershgorin_bound,
    is_symmetric,
    laplacian,
    largest_eigenvalue,
)

__all__ = [
    "NORMALIZATIONS",
    "diffuse",
    "disjoint_union",
    "diffusion_rows",
    "gaussian_knn_graph",
    "gershgorin_bound",
    "is_symmetric",
    "laplacian",
    "largest_eigenvalue",
]

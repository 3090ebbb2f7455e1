"""Graphs over the data: Laplacians, eigenvalue bounds and Gaussian kNN graphs.

COIN (Wang, Bao & Shi, arXiv 2403.15726) smooths a base classifier's class
probabilities along a graph over the data by the heat equation u_t = -L u,
the diffusion half of the convection-diffusion equation. This package holds
what that needs outside a model: the Laplacian L of an adjacency matrix
([`laplacian`][keras_cd.graph.laplacian], with the normalizations listed in
`NORMALIZATIONS`: `"coin"`, `"symmetric"`, `"random_walk"`, `"none"`) or of a
Gaussian kNN graph ([`gaussian_knn_graph`][keras_cd.graph.gaussian_knn_graph]),
bounds on its largest eigenvalue for the stability of explicit steps
([`gershgorin_bound`][keras_cd.graph.gershgorin_bound],
[`largest_eigenvalue`][keras_cd.graph.largest_eigenvalue]), a symmetry test
for the implicit scheme ([`is_symmetric`][keras_cd.graph.is_symmetric]), the
exact diffusion operator ([`diffuse`][keras_cd.graph.diffuse],
[`diffusion_rows`][keras_cd.graph.diffusion_rows]) and batching of graphs
([`disjoint_union`][keras_cd.graph.disjoint_union]).

Offline work (building a Laplacian from an adjacency matrix, bounding its
spectrum) uses scipy.sparse; what `keras_cd.GraphDiffusion` takes is either a
dense (N, N) Laplacian or its nonzeros as an edge list
`(senders, receivers, weights)` with
`(L u)_i = sum over edges e with receivers[e] = i of weights[e] * u[senders[e]]`.
A batch of graphs is one
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

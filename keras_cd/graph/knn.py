"""Gaussian k-nearest-neighbor graphs over data points (offline, any size).

COIN (Wang, Bao & Shi, arXiv 2403.15726) diffuses class probabilities along a
graph over the data, by the heat equation u_t = -L u. Where the data come
without a graph, [`gaussian_knn_graph`][keras_cd.graph.gaussian_knn_graph]
builds one, a Gaussian kNN graph, and returns its Laplacian L; the layer
[`GaussianKernelGraph`][keras_cd.layers.GaussianKernelGraph] builds the same
graph over a batch inside a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from keras_cd import _validation
from keras_cd.graph.laplacian import _to_format

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

# Floor of the bandwidths and degrees divided by (duplicate points, isolated nodes).
EPSILON = 1e-12


def check_neighbors(num_neighbors, bandwidth_neighbor):
    """Returns `(num_neighbors, bandwidth_neighbor)` as ints after checking them.

    Args:
        num_neighbors: int >= 1, k.
        bandwidth_neighbor: int in [1, num_neighbors], b.

    Returns:
        `(num_neighbors, bandwidth_neighbor)`, two ints.

    Raises:
        ValueError: if either is not an int >= 1, or
            `bandwidth_neighbor > num_neighbors`.
    """
    num_neighbors = _validation.positive_int("num_neighbors", num_neighbors, "Use e.g. 8.")
    bandwidth_neighbor = _validation.positive_int(
        "bandwidth_neighbor", bandwidth_neighbor, "Use e.g. 4."
    )
    if bandwidth_neighbor > num_neighbors:
        raise ValueError(
            "Invalid value for `bandwidth_neighbor`: expected at most num_neighbors "
            f"({num_neighbors}), since the bandwidth is the distance to that neighbor. "
            f"Received: bandwidth_neighbor={bandwidth_neighbor}. Use e.g. num_neighbors // 2."
        )
    return num_neighbors, bandwidth_neighbor


def gaussian_weights_laplacian(rows, cols, distances, bandwidths, size):
    """Returns the Laplacian of Gaussian weights on the given pairs of points.

    L = diag(rowsum S) - S, for S the symmetrized, symmetrically normalized
    Gaussian weights w_ij = exp(-(d_ij / bandwidth_i)^2).

    Args:
        rows: (E,) int array, the first point i of each pair.
        cols: (E,) int array, the second point j of each pair.
        distances: (E,) float array, d_ij.
        bandwidths: (N,) float array, each point's bandwidth.
        size: int, the number of points N.

    Returns:
        The (N, N) Laplacian, a scipy.sparse matrix.
    """
    weights = np.exp(-((distances / np.maximum(bandwidths[rows], EPSILON)) ** 2))
    matrix = sp.csr_matrix((weights, (rows, cols)), shape=(size, size))
    degrees = np.asarray(matrix.sum(axis=1)).ravel()
    scale = sp.diags(np.where(degrees > 0, 1.0 / np.sqrt(np.maximum(degrees, EPSILON)), 0.0))
    normalized = scale @ matrix @ scale
    symmetric = (normalized + normalized.T) * 0.5
    return sp.diags(np.asarray(symmetric.sum(axis=1)).ravel()) - symmetric


def gaussian_knn_graph(
    points: ArrayLike,
    num_neighbors: int = 8,
    bandwidth_neighbor: int = 4,
    format: str = "edges",
    n_jobs: int | None = None,
    working_memory_mb: int = 128,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | np.ndarray | sp.csr_matrix:
    """Returns the Laplacian of a Gaussian kNN graph over `points`, without an N x N matrix.

    Same graph as `keras_cd.GaussianKernelGraph` (which builds it in-batch,
    inside a model): each point i links to its `num_neighbors` nearest other
    points with weight

        w_ij = exp(-(d_ij / d_i^(b))^2),

    d_i^(b) being the distance to its `bandwidth_neighbor`-th nearest
    neighbor; the weights are normalized symmetrically (D^-1/2 W D^-1/2),
    symmetrized ((W + W^T) / 2) and returned as the Laplacian
    L = diag(rowsum W) - W (L 1 = 0), the generator of the heat equation
    u_t = -L u that `keras_cd.GraphDiffusion` integrates. k is clipped to
    N - 1.

    The neighbors come from scikit-learn's `NearestNeighbors`, which works
    in chunks; everything after it is sparse, so memory grows like N * k.
    Needs scikit-learn (`pip install scikit-learn`).

    Args:
        points: (N, D) array, N >= 2.
        num_neighbors: int >= 1, k. Defaults to `8`.
        bandwidth_neighbor: int in [1, num_neighbors], b. Defaults to `4`.
        format: `"edges"`, `"dense"` or `"scipy"`, as in `laplacian`.
            Defaults to `"edges"`.
        n_jobs: int or None, parallel jobs of the neighbor search
            (scikit-learn's `n_jobs`). Defaults to `None`.
        working_memory_mb: int, memory in MiB for one chunk of pairwise distances
            (scikit-learn's `working_memory`). Defaults to `128`.

    Returns:
        L in the chosen `format`, as `keras_cd.graph.laplacian` returns it.

    Raises:
        ValueError: if `num_neighbors` or `bandwidth_neighbor` is not an
            int >= 1, `bandwidth_neighbor > num_neighbors`, or `points` is not
            an (N, D) array with N >= 2.

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> points = np.random.default_rng(0).normal(size=(20, 2)).astype("float32")
        >>> L = keras_cd.graph.gaussian_knn_graph(points, 4, 2, format="dense")
        >>> bool(np.allclose(L.sum(axis=1), 0, atol=1e-6)), bool(np.allclose(L, L.T))
        (True, True)
        >>> in_batch = keras_cd.layers.GaussianKernelGraph(4, 2, format="dense")(points)
        >>> bool(np.allclose(keras.ops.convert_to_numpy(in_batch), L, atol=1e-5))  # the same graph
        True
    """
    import sklearn
    from sklearn.neighbors import NearestNeighbors

    num_neighbors, bandwidth_neighbor = check_neighbors(num_neighbors, bandwidth_neighbor)
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or len(points) < 2:
        raise ValueError(
            f"Invalid value for `points`: expected an (N, D) array with N >= 2. "
            f"Received: shape {points.shape}. Flatten each point to a vector."
        )
    k = min(num_neighbors, len(points) - 1)
    search = NearestNeighbors(n_neighbors=k + 1, n_jobs=n_jobs).fit(points)
    with sklearn.config_context(working_memory=working_memory_mb):  # bounds the distance chunks
        distances, indices = search.kneighbors(points)
    # Drop each point itself BY INDEX: with duplicate points a twin at distance 0
    # can come first, and dropping the first column would keep a self-edge and
    # lose a real neighbor. Where the search did not return the point itself
    # (more than k twins), the farthest of the k + 1 is dropped instead.
    is_self = indices == np.arange(len(points))[:, None]
    dropped = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones(indices.shape, dtype=bool)
    keep[np.arange(len(points)), dropped] = False
    distances, indices = distances[keep].reshape(-1, k), indices[keep].reshape(-1, k)
    bandwidths = distances[:, min(bandwidth_neighbor, k) - 1]
    rows = np.repeat(np.arange(len(points)), k)
    matrix = gaussian_weights_laplacian(
        rows,
        indices.ravel(),
        distances.ravel().astype(np.float64),
        bandwidths.astype(np.float64),
        len(points),
    )
    return _to_format(matrix, format)

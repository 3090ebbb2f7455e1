"""Gaussian k-nearest-neighbour graphs over data points (offline, any size)."""

import numpy as np
import scipy.sparse as sp

from keras_cd import _validation
from keras_cd.graph.laplacian import _to_format

EPSILON = 1e-12


def check_neighbors(num_neighbors, bandwidth_neighbor):
    num_neighbors = _validation.positive_int("num_neighbors", num_neighbors, "Use e.g. 8.")
    bandwidth_neighbor = _validation.positive_int(
        "bandwidth_neighbor", bandwidth_neighbor, "Use e.g. 4."
    )
    if bandwidth_neighbor > num_neighbors:
        raise ValueError(
            "Invalid value for `bandwidth_neighbor`: expected at most num_neighbors "
            f"({num_neighbors}), since the bandwidth is the distance to that neighbour. "
            f"Received: bandwidth_neighbor={bandwidth_neighbor}. Use e.g. num_neighbors // 2."
        )
    return num_neighbors, bandwidth_neighbor


def gaussian_weights_laplacian(rows, cols, distances, bandwidths, size):
    """L = diag(rowsum S) - S for S the symmetrised, symmetrically normalised
    Gaussian weights w_ij = exp(-(d_ij / bandwidth_i)^2) on the given pairs."""
    weights = np.exp(-((distances / np.maximum(bandwidths[rows], EPSILON)) ** 2))
    matrix = sp.csr_matrix((weights, (rows, cols)), shape=(size, size))
    degrees = np.asarray(matrix.sum(axis=1)).ravel()
    scale = sp.diags(np.where(degrees > 0, 1.0 / np.sqrt(np.maximum(degrees, EPSILON)), 0.0))
    normalized = scale @ matrix @ scale
    symmetric = (normalized + normalized.T) * 0.5
    return sp.diags(np.asarray(symmetric.sum(axis=1)).ravel()) - symmetric


def gaussian_knn_graph(
    points,
    num_neighbors=8,
    bandwidth_neighbor=4,
    format="edges",
    n_jobs=None,
    working_memory_mb=128,
):
    """The Laplacian of a Gaussian kNN graph over `points`, built without an N x N matrix.

    Same graph as `keras_cd.GaussianKernelGraph` (which builds it in-batch,
    inside a model): each point i links to its `num_neighbors` nearest other
    points with weight w_ij = exp(-(d_ij / d_i^(b))^2), d_i^(b) being the
    distance to its `bandwidth_neighbor`-th nearest neighbour; the weights
    are normalised symmetrically (D^-1/2 W D^-1/2), symmetrised ((W + W^T)/2)
    and returned as the Laplacian L = diag(rowsum W) - W (L 1 = 0).

    The neighbours come from scikit-learn's `NearestNeighbors`, which works
    in chunks; everything after it is sparse, so memory grows like N * k.

    Args:
        points: (N, D) array.
        num_neighbors: int >= 1. Defaults to `8`.
        bandwidth_neighbor: int in [1, num_neighbors]. Defaults to `4`.
        format: `"edges"`, `"dense"` or `"scipy"`, as in `laplacian`.
        n_jobs: parallel jobs of the neighbour search (scikit-learn's).
        working_memory_mb: memory for one chunk of pairwise distances
            (scikit-learn's `working_memory`). Defaults to `128`.
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
    # lose a real neighbour. Where the search did not return the point itself
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

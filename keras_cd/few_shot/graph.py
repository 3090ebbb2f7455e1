"""The Gaussian kNN graph of a few-shot task, as the COIN reference code builds it.

COIN's few-shot classifier (Wang, Bao & Shi, 2024) diffuses its class
probabilities over this graph of the task's support and query points: its
Laplacian L is the operator of the diffusion steps u <- (I - sigma2 L) u.
Two conventions are offered (`TransductiveCOIN(graph=...)`):

- `"reference"` (default), the reference code's: each point counts ITSELF
  among its neighbors. With d_i^(k) the k-th smallest of row i's distances
  (d_ii = 0 is the first),

      W_ij = exp(-(d_ij / d_i^(4))^2)  if d_ij < d_i^(8),  else 0,

  so a point keeps a self-loop of weight 1, 6 other neighbors (the strict
  "<" drops the 8th smallest) and its bandwidth is the distance to its 3rd
  nearest other point. Then W <- D^-1/2 W D^-1/2 with D the row sums
  (self-loop included), W <- (W + W^T) / 2 and L = diag(rowsum W) - W.
- `"package"`: `keras_cd.graph.gaussian_knn_graph`, which leaves each point
  out of its own neighbors: 8 other neighbors (the 8th included),
  bandwidth the 4th nearest other point, no self-loop in the degrees.
  Same normalization and symmetrization. With the same `num_neighbors` and
  `bandwidth_neighbor` it links each point to 2 more neighbors, with
  wider kernels, and its normalized weights are larger (the degrees lack
  the self-loop's 1); `num_neighbors=6, bandwidth_neighbor=3` gives the
  reference's edges and bandwidths but still not its weights.

Both Laplacians have zero row sums (L 1 = 0): the self-loop cancels in
diag(rowsum W) - W, so it changes L only through the normalization.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
from keras import ops

from keras_cd import _backend, _validation

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

GRAPHS = ("reference", "package")
"""The graph conventions of `TransductiveCOIN(graph=...)` (see the module docstring)."""
TINY = 1e-12


def check_neighbors(num_neighbors, bandwidth_neighbor, num_points=None):
    """Validated `(num_neighbors, bandwidth_neighbor)` for tasks of `num_points` points.

    Args:
        num_neighbors: int, the k of the kNN graph.
        bandwidth_neighbor: int in [1, num_neighbors].
        num_points: int or None, the points of a task, an upper bound of
            `num_neighbors`. Defaults to `None` (no bound).

    Returns:
        `(num_neighbors, bandwidth_neighbor)` as ints.

    Raises:
        ValueError: for an invalid value.
    """
    from keras_cd.graph.knn import check_neighbors as check

    num_neighbors, bandwidth_neighbor = check(num_neighbors, bandwidth_neighbor)
    if num_points is not None and num_neighbors > num_points:
        _validation.invalid(
            "num_neighbors",
            f"at most the {num_points} points of a task (support + queries)",
            num_neighbors,
            "Use more queries per class, or fewer neighbors.",
        )
    return num_neighbors, bandwidth_neighbor


def laplacian_ops(points, num_neighbors=8, bandwidth_neighbor=4):
    """The reference Laplacian of each task in a batch, in `keras.ops` (compiles with the trainer).

    Args:
        points: (B, N, F) tensor, the preprocessed support + query features.
        num_neighbors: int, the k of "below the k-th smallest distance".
        bandwidth_neighbor: int, the bandwidth is the `bandwidth_neighbor`-th
            smallest distance.

    Returns:
        (B, N, N) float32 tensor L.
    """
    points = ops.cast(points, "float32")
    size = points.shape[1]
    gram = ops.matmul(points, ops.transpose(points, (0, 2, 1)))
    squares = ops.diagonal(gram, axis1=1, axis2=2)
    off_diagonal = 1.0 - ops.eye(size, dtype="float32")
    squared = ops.maximum(squares[:, :, None] + squares[:, None, :] - 2.0 * gram, 0.0)
    distances = ops.sqrt(squared * off_diagonal)  # d_ii = 0 exactly, as the reference's norm
    smallest = -ops.top_k(-distances, num_neighbors, sorted=True)[0]  # ascending
    cutoff = smallest[:, :, num_neighbors - 1 : num_neighbors]
    bandwidth = ops.maximum(smallest[:, :, bandwidth_neighbor - 1 : bandwidth_neighbor], TINY)
    weights = ops.where(distances < cutoff, ops.exp(-ops.square(distances / bandwidth)), 0.0)
    scale = 1.0 / ops.sqrt(ops.sum(weights, axis=2))  # degrees >= 1: the self-loop
    weights = scale[:, :, None] * weights * scale[:, None, :]
    weights = 0.5 * (weights + ops.transpose(weights, (0, 2, 1)))
    degrees = ops.sum(weights, axis=2)
    return degrees[:, :, None] * ops.eye(size, dtype="float32")[None] - weights


def reference_laplacian(
    points: ArrayLike, num_neighbors: int = 8, bandwidth_neighbor: int = 4
) -> np.ndarray:
    """The reference code's Laplacian L = D - W over the points of one task or a batch.

    See the module docstring for the construction (each point is its own
    first neighbor). Distances come from the Gram matrix in float32; a
    bandwidth of 0 (more than `bandwidth_neighbor - 1` copies of a point)
    is raised to 1e-12, where the reference divides by zero.

    Args:
        points: (N, F) or (T, N, F) array, preprocessed features
            (support + queries).
        num_neighbors: int in [bandwidth_neighbor, N]. Defaults to `8`.
        bandwidth_neighbor: int >= 1. Defaults to `4`.

    Returns:
        float32 array (N, N) or (T, N, N), symmetric, with zero row sums.

    Raises:
        ValueError: for `points` of another rank, or an invalid neighbor
            count.

    Example:
    >>> import numpy as np, keras_cd
    >>> L = keras_cd.few_shot.reference_laplacian(np.random.default_rng(0).normal(size=(20, 5)))
    >>> bool(np.allclose(L.sum(axis=1), 0, atol=1e-6)), bool(np.allclose(L, L.T))
    (True, True)
    """
    points = np.asarray(points, np.float32)
    single = points.ndim == 2
    batch = points[None] if single else points
    if batch.ndim != 3:
        _validation.invalid("points", "an (N, F) or (T, N, F) array", points.shape, "Reshape it.")
    num_neighbors, bandwidth_neighbor = check_neighbors(
        num_neighbors, bandwidth_neighbor, batch.shape[1]
    )
    compiled = _compiled_laplacian(num_neighbors, bandwidth_neighbor, batch.shape)
    with _backend.no_grad():
        result = _backend.numpy(compiled(ops.convert_to_tensor(batch)))
    return result[0] if single else result


@functools.lru_cache(maxsize=16)
def _compiled_laplacian(num_neighbors, bandwidth_neighbor, shape):
    """One compiled function per shape: the construction needs N as a Python int."""
    del shape  # part of the cache key only
    return _backend.compile(lambda points: laplacian_ops(points, num_neighbors, bandwidth_neighbor))


def package_laplacian(
    points: ArrayLike, num_neighbors: int = 8, bandwidth_neighbor: int = 4
) -> np.ndarray:
    """`keras_cd.graph.gaussian_knn_graph`'s dense Laplacian of each task (no self-neighbor).

    Args:
        points: (N, F) or (T, N, F) array.
        num_neighbors: int, each point's neighbors (itself excluded), as
            `gaussian_knn_graph`. Defaults to `8`.
        bandwidth_neighbor: int, the neighbor whose distance is the
            bandwidth, as `gaussian_knn_graph`. Defaults to `4`.

    Returns:
        float32 array (N, N) or (T, N, N).

    Example:
    >>> import numpy as np, keras_cd
    >>> points = np.random.default_rng(0).normal(size=(2, 20, 5))
    >>> L = keras_cd.few_shot.package_laplacian(points)
    >>> L.shape, bool(np.allclose(L.sum(axis=-1), 0, atol=1e-5))
    ((2, 20, 20), True)
    """
    from keras_cd.graph import gaussian_knn_graph

    points = np.asarray(points, np.float32)
    batch = points[None] if points.ndim == 2 else points
    result = np.stack(
        [gaussian_knn_graph(p, num_neighbors, bandwidth_neighbor, format="dense") for p in batch]
    )
    return result[0] if points.ndim == 2 else result

"""The `GaussianKernelGraph` layer: a Gaussian kNN graph Laplacian over a batch.

Holds [`GaussianKernelGraph`][keras_cd.layers.GaussianKernelGraph], which
builds, inside a model, the Laplacian L of a Gaussian k-nearest-neighbor
graph over the samples of a batch, the data graph on which
[`GraphDiffusion`][keras_cd.layers.GraphDiffusion] integrates the heat
equation u_t = -L u (the diffusion term of the convection-diffusion equation
of Wang, Bao & Shi, arXiv 2403.15726, on the data manifold). `FORMATS` lists
its output formats. The offline twin, for a whole data set at once, is
[`keras_cd.graph.gaussian_knn_graph`][keras_cd.graph.gaussian_knn_graph].
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_cd import _validation
from keras_cd.graph.knn import EPSILON, check_neighbors

# Output formats: an edge list (senders, receivers, weights), or a dense (B, B) matrix.
FORMATS = ("edges", "dense")


@keras.saving.register_keras_serializable(package="keras_cd")
class GaussianKernelGraph(keras.layers.Layer):
    """In-batch Gaussian k-nearest-neighbor graph Laplacian, for `GraphDiffusion`.

    Builds, from the feature vectors of a batch (as transductive few-shot
    learning does for the support and query samples), the graph

        w_ij = exp(-(d_ij / d_i^(b))^2)   for j among the k nearest neighbors of i,

    with d_ij the Euclidean distance and d_i^(b) the distance from i to its
    b-th nearest neighbor (`bandwidth_neighbor`); normalizes it
    symmetrically, W <- D^-1/2 W D^-1/2 (D the row sums), symmetrizes it,
    W <- (W + W^T) / 2, and returns its Laplacian L = diag(W 1) - W, which
    has zero row sums. k is clipped to the batch size minus one, so a batch
    smaller than k (such as the last, split batch under tf.distribute) works.
    The result is the in-batch twin of `keras_cd.graph.gaussian_knn_graph`.
    The layer has no weights; distances are computed in float32 and the
    Laplacian is returned in the layer's compute dtype.

    Args:
        num_neighbors: int >= 1, k. Defaults to `8`.
        bandwidth_neighbor: int in [1, num_neighbors], b. Defaults to `4`.
        format: `"edges"` for `(senders, receivers, weights)` with B * (2k + 1)
            entries (each neighbor pair in both directions, plus every node's
            diagonal entry), or `"dense"` for a (B, B) matrix. Defaults to
            `"edges"`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: (B, D) tensor of features, one row per sample.

    Input shape:
        `(batch, features)`.

    Output shape:
        With `format="dense"`, `(batch, batch)`; with `format="edges"`, a
        tuple of three 1D tensors `(senders, receivers, weights)` (int32,
        int32 and the compute dtype), what `GraphDiffusion` takes as its
        Laplacian.

    Raises:
        ValueError: if `num_neighbors` or `bandwidth_neighbor` is not an
            int >= 1, `bandwidth_neighbor > num_neighbors`, or `format` is not
            one of `FORMATS` (at construction); if the input is not of rank 2
            (when the layer is built).

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> points = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
        >>> L = keras_cd.layers.GaussianKernelGraph(4, 2, format="dense")(points)
        >>> L = keras.ops.convert_to_numpy(L)
        >>> L.shape
        (6, 6)
        >>> bool(np.allclose(L.sum(axis=1), 0, atol=1e-6))  # L 1 = 0
        True
        >>> bool(np.allclose(L, L.T))  # symmetric
        True
    """

    def __init__(
        self,
        num_neighbors: int = 8,
        bandwidth_neighbor: int = 4,
        format: str = "edges",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_neighbors, self.bandwidth_neighbor = check_neighbors(
            num_neighbors, bandwidth_neighbor
        )
        self.format = _validation.one_of(
            "format", format, FORMATS, 'Use format="edges" or format="dense".'
        )

    def build(self, input_shape) -> None:
        """Checks that the input has rank 2; the layer has no weights."""
        _validation.input_rank(
            self,
            input_shape,
            2,
            "rank 2 (batch, features)",
            "Flatten each point to a feature vector first.",
        )

    def call(self, inputs):
        """Returns the Laplacian of the Gaussian kNN graph over the rows of `inputs`."""
        x = ops.cast(inputs, "float32")
        size = ops.shape(x)[0]
        squares = ops.sum(x * x, axis=-1)
        distances2 = squares[:, None] - 2.0 * ops.matmul(x, ops.transpose(x)) + squares[None, :]
        distances2 = ops.maximum(distances2, 0.0) + ops.eye(size) * 1e30  # never yourself
        # At most size - 1 neighbors; a batch of one takes itself (at the
        # 1e30 distance), which gives it the zero Laplacian it should have.
        static_size = inputs.shape[0]
        if static_size is not None:  # JAX (and any static batch): k as a Python int
            k = max(min(self.num_neighbors, static_size - 1), 1)
        else:
            k = ops.maximum(ops.minimum(self.num_neighbors, size - 1), 1)
        negative, neighbors = ops.top_k(-distances2, k)
        distances = ops.sqrt(ops.maximum(-negative, 0.0))
        bandwidth = ops.take(distances, ops.minimum(self.bandwidth_neighbor, k) - 1, axis=1)
        weights = ops.exp(-ops.square(distances / ops.maximum(bandwidth, EPSILON)[:, None]))
        degrees = ops.sum(weights, axis=1)
        rows = ops.reshape(ops.repeat(ops.arange(size)[:, None], k, axis=1), (-1,))
        cols = ops.reshape(neighbors, (-1,))
        inverse_root = 1.0 / ops.sqrt(ops.maximum(degrees, EPSILON))
        half = (
            0.5
            * ops.reshape(weights, (-1,))
            * ops.take(inverse_root, rows)
            * ops.take(inverse_root, cols)
        )
        receivers = ops.concatenate([rows, cols])
        senders = ops.concatenate([cols, rows])
        values = ops.concatenate([half, half])
        row_sums = ops.segment_sum(values, receivers, num_segments=size)
        nodes = ops.arange(size)
        senders = ops.cast(ops.concatenate([senders, nodes]), "int32")
        receivers = ops.cast(ops.concatenate([receivers, nodes]), "int32")
        values = ops.cast(ops.concatenate([-values, row_sums]), self.compute_dtype)
        if self.format == "edges":
            return senders, receivers, values
        flat = ops.segment_sum(values, receivers * size + senders, num_segments=size * size)
        return ops.reshape(flat, (size, size))

    def compute_output_spec(
        self, inputs
    ) -> keras.KerasTensor | tuple[keras.KerasTensor, keras.KerasTensor, keras.KerasTensor]:
        """Returns the symbolic output: a (B, B) tensor, or three (None,) edge tensors."""
        if self.format == "dense":
            return keras.KerasTensor((inputs.shape[0], inputs.shape[0]), dtype=self.compute_dtype)
        return (
            keras.KerasTensor((None,), dtype="int32"),
            keras.KerasTensor((None,), dtype="int32"),
            keras.KerasTensor((None,), dtype=self.compute_dtype),
        )

    def compute_output_shape(self, input_shape) -> tuple:
        """Returns `(batch, batch)`, or `((None,), (None,), (None,))` for an edge list."""
        if self.format == "dense":
            return (input_shape[0], input_shape[0])
        return ((None,), (None,), (None,))

    def get_config(self) -> dict:
        """Returns the layer's config: the base layer's plus every constructor argument."""
        config = super().get_config()
        config.update(
            {
                "num_neighbors": self.num_neighbors,
                "bandwidth_neighbor": self.bandwidth_neighbor,
                "format": self.format,
            }
        )
        return config

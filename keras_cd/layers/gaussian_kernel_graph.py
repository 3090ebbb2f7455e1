import keras
from keras import ops

from keras_cd import _validation
from keras_cd.graph.knn import EPSILON, check_neighbors

FORMATS = ("edges", "dense")


@keras.saving.register_keras_serializable(package="keras_cd")
class GaussianKernelGraph(keras.layers.Layer):
    """In-batch Gaussian k-nearest-neighbour graph Laplacian, for `GraphDiffusion`.

    Builds, from the feature vectors of a batch (as transductive few-shot
    learning does for the support and query samples), the graph

        w_ij = exp(-(d_ij / d_i^(b))^2)   for j among the k nearest neighbours of i,

    with d_ij the Euclidean distance and d_i^(b) the distance from i to its
    b-th nearest neighbour (`bandwidth_neighbor`); normalises it
    symmetrically, W <- D^-1/2 W D^-1/2 (D the row sums), symmetrises it,
    W <- (W + W^T) / 2, and returns its Laplacian L = diag(W 1) - W, which
    has zero row sums. k is clipped to the batch size minus one, so a batch
    smaller than k (such as the last, split batch under tf.distribute) works.
    The result is the in-batch twin of `keras_cd.graph.gaussian_knn_graph`.

    Args:
        num_neighbors: int >= 1, k. Defaults to `8`.
        bandwidth_neighbor: int in [1, k], b. Defaults to `4`.
        format: `"edges"` for `(senders, receivers, weights)` with B * (2k + 1)
            entries, or `"dense"` for a (B, B) matrix. Defaults to `"edges"`.
        **kwargs: base layer keyword arguments.

    Call arguments:
        inputs: (B, D) features.

    Output:
        What `GraphDiffusion` takes as its Laplacian.

    Example:

    >>> import numpy as np, keras, keras_cd
    >>> points = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    >>> L = keras_cd.GaussianKernelGraph(4, 2, format="dense")(points)
    >>> bool(np.allclose(keras.ops.convert_to_numpy(L).sum(axis=1), 0, atol=1e-6))
    True
    """

    def __init__(self, num_neighbors=8, bandwidth_neighbor=4, format="edges", **kwargs):
        super().__init__(**kwargs)
        self.num_neighbors, self.bandwidth_neighbor = check_neighbors(
            num_neighbors, bandwidth_neighbor
        )
        self.format = _validation.one_of(
            "format", format, FORMATS, 'Use format="edges" or format="dense".'
        )

    def build(self, input_shape):
        _validation.input_rank(
            self,
            input_shape,
            2,
            "rank 2 (batch, features)",
            "Flatten each point to a feature vector first.",
        )

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        size = ops.shape(x)[0]
        squares = ops.sum(x * x, axis=-1)
        distances2 = squares[:, None] - 2.0 * ops.matmul(x, ops.transpose(x)) + squares[None, :]
        distances2 = ops.maximum(distances2, 0.0) + ops.eye(size) * 1e30  # never yourself
        # At most size - 1 neighbours; a batch of one takes itself (at the
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

    def compute_output_spec(self, inputs):
        if self.format == "dense":
            return keras.KerasTensor((inputs.shape[0], inputs.shape[0]), dtype=self.compute_dtype)
        return (
            keras.KerasTensor((None,), dtype="int32"),
            keras.KerasTensor((None,), dtype="int32"),
            keras.KerasTensor((None,), dtype=self.compute_dtype),
        )

    def compute_output_shape(self, input_shape):
        if self.format == "dense":
            return (input_shape[0], input_shape[0])
        return ((None,), (None,), (None,))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_neighbors": self.num_neighbors,
                "bandwidth_neighbor": self.bandwidth_neighbor,
                "format": self.format,
            }
        )
        return config

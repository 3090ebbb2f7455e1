import keras
from keras import ops

from keras_cd import _validation


def is_sparse(tensor):
    """Whether `tensor` is a sparse tensor: a tf.SparseTensor or a JAX BCOO matrix
    (without importing either package)."""
    return hasattr(tensor, "indices") and (
        hasattr(tensor, "dense_shape") or type(tensor).__name__ == "BCOO"
    )


def sparse_parts(matrix):
    """`(indices (nnz, 2), values (nnz,), number of rows)` of a sparse `matrix`
    (a tf.SparseTensor or a JAX BCOO)."""
    if hasattr(matrix, "dense_shape"):
        return matrix.indices, matrix.values, ops.cast(matrix.dense_shape[0], "int32")
    return matrix.indices, matrix.data, matrix.shape[0]


def sparse_matmul(matrix, values, entries=None):
    """`matrix @ values` for a dense tensor or a sparse `matrix` (`is_sparse`).

    A sparse matrix is applied through its nonzeros, (M v)_i = sum over the
    nonzeros (i, j) of M_ij v_j, by gather + segment_sum, which compiles under
    XLA (tf.sparse's matmul does not) and runs the same on every backend that
    has sparse inputs. `entries` replaces the sparse matrix's values (e.g.
    the same values after dropout).
    """
    if not is_sparse(matrix):
        return ops.matmul(ops.cast(matrix, values.dtype), values)
    indices, stored, num_rows = sparse_parts(matrix)
    entries = stored if entries is None else entries
    rows, cols = indices[:, 0], indices[:, 1]
    contributions = ops.cast(entries, values.dtype)[:, None] * ops.take(values, cols, axis=0)
    return ops.segment_sum(contributions, rows, num_segments=num_rows)


@keras.saving.register_keras_serializable(package="keras_cd")
class PrecomputedDiffusion(keras.layers.Layer):
    """Graph diffusion read at chosen nodes through precomputed operator rows.

    With a fixed step size, K steps of heat diffusion on a graph
    (`keras_cd.GraphDiffusion`) are one linear map u_T = P u_0, e.g.
    P = (I - sigma2 L)^K for the explicit scheme. When only some nodes are
    read (the labelled ones in a loss, a validation set), their rows
    P[rows] can be computed once per graph with
    `keras_cd.graph.diffusion_rows`, and this layer returns

        u_T[rows] = P[rows] u_0,

    one (R, N) x (N, C) product instead of K sparse products (and K more in
    the backward pass) per training step. The result is the same as
    `GraphDiffusion` read at those rows (to float32 rounding); sigma2 cannot
    be learned through it, and the layer has no weights.

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726) (COIN)

    Args:
        **kwargs: base layer keyword arguments.

    Call arguments:
        inputs: (N, C) tensor u_0, one row per graph node.
        operator_rows: (R, N) tensor P[rows] (dense, or a tf.SparseTensor on
            the TensorFlow backend).

    Output shape:
        (R, C).

    Example:

    >>> import numpy as np, keras, keras_cd
    >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    >>> L = keras_cd.graph.laplacian(path, "none", self_loops=False, format="scipy")
    >>> rows = keras_cd.graph.diffusion_rows(L, [0, 2], num_steps=200, sigma2=0.1)
    >>> u = np.array([[3.0], [0.0], [0.0]], "float32")
    >>> out = keras_cd.layers.PrecomputedDiffusion()(u, rows.toarray())
    >>> np.round(keras.ops.convert_to_numpy(out).ravel(), 3).tolist()  # nodes 0 and 2 of [1, 1, 1]
    [1.0, 1.0]
    """

    def build(self, inputs_shape, operator_rows_shape=None):
        _validation.input_rank(
            self,
            inputs_shape,
            2,
            "rank 2 (nodes, channels)",
            "Pass one row per graph node, e.g. u[:, None] for one channel.",
        )

    def call(self, inputs, operator_rows):
        return sparse_matmul(operator_rows, inputs)

    def compute_output_shape(self, inputs_shape, operator_rows_shape=None):
        rows = None if operator_rows_shape is None else operator_rows_shape[0]
        return (rows, inputs_shape[-1])

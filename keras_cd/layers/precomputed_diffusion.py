"""The `PrecomputedDiffusion` layer: graph diffusion through precomputed operator rows.

With a fixed step size, K steps of heat diffusion u_t = -L u on a graph (the
diffusion half of COIN in Wang, Bao & Shi, arXiv 2403.15726) are one linear
map u_K = P u_0, e.g. P = (I - sigma2 L)^K for the explicit scheme. This
module holds [`PrecomputedDiffusion`][keras_cd.layers.PrecomputedDiffusion],
which applies rows of P computed offline by
[`keras_cd.graph.diffusion_rows`][keras_cd.graph.diffusion_rows], and the
helpers `is_sparse`, `sparse_parts` and `sparse_matmul` that multiply by a
dense or sparse matrix on every backend.
"""

import keras
from keras import ops

from keras_cd import _validation


def is_sparse(tensor):
    """Returns whether `tensor` is a sparse tensor (a tf.SparseTensor or a JAX BCOO).

    Neither TensorFlow nor JAX is imported to find out.

    Args:
        tensor: any object.

    Returns:
        bool, True for a tf.SparseTensor or a JAX BCOO matrix.
    """
    return hasattr(tensor, "indices") and (
        hasattr(tensor, "dense_shape") or type(tensor).__name__ == "BCOO"
    )


def sparse_parts(matrix):
    """Returns the nonzeros of a sparse `matrix` (a tf.SparseTensor or a JAX BCOO).

    Args:
        matrix: a sparse matrix, see `is_sparse`.

    Returns:
        `(indices, values, num_rows)`: the (nnz, 2) integer indices (row,
        column) of the nonzeros, their (nnz,) values and the number of rows.
    """
    if hasattr(matrix, "dense_shape"):
        return matrix.indices, matrix.values, ops.cast(matrix.dense_shape[0], "int32")
    return matrix.indices, matrix.data, matrix.shape[0]


def sparse_matmul(matrix, values, entries=None):
    """Returns `matrix @ values` for a dense tensor or a sparse `matrix` (`is_sparse`).

    A sparse matrix is applied through its nonzeros,
    `(M v)_i = sum over the nonzeros (i, j) of M_ij v_j`, by gather +
    segment_sum, which compiles under
    XLA (tf.sparse's matmul does not) and runs the same on every backend that
    has sparse inputs.

    Args:
        matrix: (R, N) dense tensor or array, or a sparse matrix.
        values: (N, C) tensor.
        entries: None, or (nnz,) values that replace the sparse matrix's
            stored values (e.g. the same values after dropout); ignored for a
            dense `matrix`. Defaults to `None`.

    Returns:
        The (R, C) product, in the dtype of `values`.
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
    read (the labeled ones in a loss, a validation set), their rows
    P[rows] can be computed once per graph with
    `keras_cd.graph.diffusion_rows`, and this layer returns

        u_T[rows] = P[rows] u_0,

    one (R, N) x (N, C) product instead of K sparse products (and K more in
    the backward pass) per training step. The result is the same as
    `GraphDiffusion` read at those rows (to float32 rounding); sigma2 cannot
    be learned through it, and the layer has no weights.

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726) (COIN)

    The layer has no arguments of its own: it takes the base layer keyword
    arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: (N, C) tensor u_0, one row per graph node.
        operator_rows: (R, N) tensor P[rows] (dense, or a tf.SparseTensor on
            the TensorFlow backend).

    Input shape:
        `inputs`: `(nodes, channels)`; `operator_rows`: `(rows, nodes)`.

    Output shape:
        `(rows, channels)`: u_K at the chosen nodes.

    Raises:
        ValueError: if `inputs` is not of rank 2 (when the layer is built).

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> L = keras_cd.graph.laplacian(path, "none", self_loops=False, format="scipy")
        >>> rows = keras_cd.graph.diffusion_rows(L, [0, 2], num_steps=200, sigma2=0.1)
        >>> u = np.array([[3.0], [0.0], [0.0]], "float32")
        >>> out = keras_cd.layers.PrecomputedDiffusion()(u, rows.toarray())
        >>> np.round(keras.ops.convert_to_numpy(out).ravel(), 3).tolist()  # nodes 0, 2 of [1, 1, 1]
        [1.0, 1.0]
    """

    def build(self, inputs_shape, operator_rows_shape=None) -> None:
        """Checks that `inputs` has rank 2; the layer has no weights."""
        _validation.input_rank(
            self,
            inputs_shape,
            2,
            "rank 2 (nodes, channels)",
            "Pass one row per graph node, e.g. u[:, None] for one channel.",
        )

    def call(self, inputs, operator_rows):
        """Returns `operator_rows @ inputs`: u_K at the chosen rows."""
        return sparse_matmul(operator_rows, inputs)

    def compute_output_shape(self, inputs_shape, operator_rows_shape=None) -> tuple:
        """Returns `(rows, channels)`."""
        rows = None if operator_rows_shape is None else operator_rows_shape[0]
        return (rows, inputs_shape[-1])

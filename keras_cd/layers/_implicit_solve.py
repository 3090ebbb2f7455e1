"""The implicit diffusion step x = (I + c L)^-1 b, with its exact gradient.

Conjugate gradients (matrix-vector products only, a fixed number of
iterations, so it exports and compiles like the explicit step) computes x;
the gradient is not backpropagated through the iterations but given by
implicit differentiation of A x = b, A = I + c L:

    dx = A^-1 (db - dA x)   =>   grad_b = lam,  grad_c = -lam . (L x),
                                 grad_L = -c lam x^T,   lam = A^-T g,

one more conjugate-gradient solve (the adjoint) per backward step. For an
edge list, grad_L is read at the edges only: grad_w_e = -c lam[r_e] . x[s_e].
"""

import keras
import numpy as np
from keras import ops


def is_edge_list(laplacian):
    """Returns whether `laplacian` is an edge list `(senders, receivers, weights)`."""
    return isinstance(laplacian, (tuple, list)) and len(laplacian) == 3


def is_sparse(laplacian):
    """Returns whether `laplacian` is a tf.SparseTensor (without importing TensorFlow)."""
    return hasattr(laplacian, "indices") and hasattr(laplacian, "dense_shape")


def _dense(gradient):
    """TensorFlow passes the gradient of a gather as IndexedSlices: densify it."""
    if hasattr(gradient, "indices") and hasattr(gradient, "dense_shape"):
        import tensorflow as tf

        return tf.convert_to_tensor(gradient)
    return gradient


def conjugate_gradient(operator, rhs, iterations):
    """Solves A x = rhs for a symmetric positive definite A, column by column.

    Runs `iterations` conjugate-gradient iterations from x = rhs. Each column
    j stops updating once its step denominators fall to rounding level of ITS
    OWN right-hand side, eps^2 * ||b_j||^2 (eps of the dtype), so a column
    1e6 times smaller than another is solved to the same relative accuracy;
    an all-zero column stays zero.

    Args:
        operator: function v -> A v on (N, C) tensors.
        rhs: (N, C) tensor b.
        iterations: int, the number of iterations.

    Returns:
        The (N, C) approximation of A^-1 rhs.
    """
    eps = float(np.finfo(keras.backend.standardize_dtype(rhs.dtype)).eps)
    floor = eps * eps * ops.sum(rhs * rhs, axis=0)

    def ratio(numerator, denominator):
        ok = denominator > floor
        return ops.where(ok, numerator / ops.where(ok, denominator, 1), 0)

    x = rhs
    residual = rhs - operator(x)
    direction = residual
    norm = ops.sum(residual * residual, axis=0)
    for _ in range(iterations):
        image = operator(direction)
        alpha = ratio(norm, ops.sum(direction * image, axis=0))
        x = x + alpha * direction
        residual = residual - alpha * image
        new_norm = ops.sum(residual * residual, axis=0)
        direction = residual + ratio(new_norm, norm) * direction
        norm = new_norm
    return x


def implicit_step(rhs, coefficient, laplacian, iterations):
    """Returns (I + coefficient * L)^-1 rhs, differentiable in rhs, coefficient and L.

    Args:
        rhs: (N, C) tensor or array.
        coefficient: scalar, the step size c.
        laplacian: an edge list `(senders, receivers, weights)` (gradient
            w.r.t. the weights), a dense (N, N) tensor (gradient w.r.t. the
            matrix) or a tf.SparseTensor (held constant). L must be symmetric.
        iterations: int, conjugate-gradient iterations of the solve and of
            the adjoint solve in the backward pass.

    Returns:
        The (N, C) solution x, in the dtype of `rhs`.
    """
    rhs = ops.convert_to_tensor(rhs)  # a NumPy array (stateless_call) is no torch.autograd input
    dtype = rhs.dtype
    coefficient = ops.cast(coefficient, dtype)
    if is_edge_list(laplacian):
        senders, receivers, weights = laplacian
        senders, receivers = ops.cast(senders, "int32"), ops.cast(receivers, "int32")
        num_nodes = ops.shape(rhs)[0]
        values = [ops.cast(weights, dtype)]

        def apply(v, weights):
            return ops.segment_sum(
                ops.expand_dims(weights, -1) * ops.take(v, senders, axis=0),
                receivers,
                num_segments=num_nodes,
            )

        def value_gradients(adjoint, solution, c):
            return [
                -c
                * ops.sum(
                    ops.take(adjoint, receivers, axis=0) * ops.take(solution, senders, axis=0),
                    axis=1,
                )
            ]
    elif is_sparse(laplacian):
        matrix, values = ops.cast(laplacian, dtype), []

        def apply(v):
            return ops.matmul(matrix, v)

        def value_gradients(adjoint, solution, c):
            return []
    else:
        values = [ops.cast(laplacian, dtype)]

        def apply(v, matrix):
            return ops.matmul(matrix, v)

        def value_gradients(adjoint, solution, c):
            return [-c * ops.matmul(adjoint, ops.transpose(solution))]

    @ops.custom_gradient
    def solve(b, c, *operator_values):
        def operator(v):
            return v + c * apply(v, *operator_values)

        solution = conjugate_gradient(operator, b, iterations)

        def gradient(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            upstream = _dense(upstream)
            adjoint = conjugate_gradient(operator, upstream, iterations)  # A^T = A
            grad_c = -ops.sum(adjoint * apply(solution, *operator_values))
            return (adjoint, grad_c, *value_gradients(adjoint, solution, c))

        return solution, gradient

    return solve(rhs, coefficient, *values)

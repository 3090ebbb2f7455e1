import warnings

import keras
from keras import ops

from keras_cd import _validation

SCHEMES = ("explicit", "implicit")


def _is_edge_list(laplacian):
    return isinstance(laplacian, (tuple, list)) and len(laplacian) == 3


@keras.saving.register_keras_serializable(package="keras_cd")
class GraphDiffusion(keras.layers.Layer):
    """Heat diffusion on a graph over the samples: COIN's diffusion half.

    Integrates u_t = -L u for a total time t = num_steps * sigma2, the
    diffusion term of the convection-diffusion equation on the data graph,
    from u(0) = the input (e.g. a base classifier's scores per node):

        explicit (the paper's):  u <- u - sigma2 * L u,          num_steps times
        implicit (stable):       u <- (I + sigma2 * L)^-1 u,     num_steps times

    Explicit Euler is stable only while sigma2 * lambda_max(L) <= 2; past it
    the top eigenmode grows by |1 - sigma2 * lambda_max| per step. Give
    `lambda_max` (see `keras_cd.graph.largest_eigenvalue`) and the layer warns
    when that bound is violated. The implicit scheme is unconditionally stable
    for a symmetric positive semi-definite L; each step solves its system by
    `solver_iterations` conjugate-gradient iterations (matrix-vector products
    only, so it exports and compiles like the explicit one).

    L is an (N, N) tensor (matmul; a tf.SparseTensor works on the TensorFlow
    backend) or its nonzeros as an edge list
    `(senders, receivers, weights)`: (L u)_i = sum_e [receivers_e = i]
    weights_e u_{senders_e}, computed by gather + segment_sum, which exports to
    ONNX and compiles under XLA (unlike tf.sparse).

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726) (COIN)

    Args:
        num_steps: int >= 0, number of steps; 0 makes the layer the identity.
        sigma2: float >= 0, step size (diffusion time per step).
        trainable_sigma2: bool, learn sigma2 (kept >= 0). Defaults to `False`.
        scheme: `"explicit"` or `"implicit"`. Defaults to `"explicit"`.
        lambda_max: float or None, the largest eigenvalue of the Laplacians
            this layer will see, for the stability check. Defaults to `None`.
        solver_iterations: int >= 1, CG iterations per implicit step.
            Defaults to `10`; the error falls by about (sqrt(k) - 1) / (sqrt(k) + 1)
            per iteration, k = 1 + sigma2 * lambda_max.
        **kwargs: base layer keyword arguments.

    Call arguments:
        inputs: (N, C) tensor u, one row per graph node.
        laplacian: (N, N) tensor, or a tuple `(senders, receivers, weights)`
            of shapes (E,), (E,), (E,).

    Output shape:
        Same as `inputs`.

    Example:

    >>> import numpy as np, keras_cd
    >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    >>> L = keras_cd.graph.laplacian(path, "none", self_loops=False, format="edges")
    >>> u = np.array([[3.0], [0.0], [0.0]], "float32")
    >>> out = keras_cd.GraphDiffusion(num_steps=200, sigma2=0.1)(u, L)
    >>> np.round(np.asarray(out).ravel(), 3).tolist()  # mass 3 spreads evenly
    [1.0, 1.0, 1.0]
    """

    def __init__(self, num_steps, sigma2, trainable_sigma2=False, scheme="explicit",
                 lambda_max=None, solver_iterations=10, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
            raise ValueError(f"Invalid value for `num_steps`: expected an integer >= 0. "
                             f"Received: num_steps={num_steps!r}. Use e.g. num_steps=20 "
                             "(0 turns diffusion off).")
        self.num_steps = num_steps
        self.sigma2 = _validation.non_negative_float(
            "sigma2", sigma2, "Use a diffusion step sigma2 >= 0, e.g. 0.1.")
        self.trainable_sigma2 = bool(trainable_sigma2)
        self.scheme = _validation.one_of(
            "scheme", scheme, SCHEMES,
            'Use scheme="explicit" (the paper) or "implicit" (unconditionally stable).')
        self.lambda_max = None if lambda_max is None else _validation.non_negative_float(
            "lambda_max", lambda_max, "Use keras_cd.graph.largest_eigenvalue(L), or None.")
        self.solver_iterations = _validation.positive_int(
            "solver_iterations", solver_iterations, "Use e.g. 30.")
        self._warn_if_unstable()

    def _warn_if_unstable(self):
        if self.scheme != "explicit" or self.lambda_max is None or not self.num_steps:
            return
        product = self.sigma2 * self.lambda_max
        if product > 2:
            growth = abs(1 - product) ** self.num_steps
            warnings.warn(
                "Unstable explicit diffusion: sigma2 * lambda_max = "
                f"{self.sigma2:g} * {self.lambda_max:.4g} = {product:.4g} > 2, so the "
                f"top eigenmode grows by |1 - {product:.4g}| per step ({growth:.3g}x over "
                f"{self.num_steps} steps). Use sigma2 <= {2 / self.lambda_max:.4g} with more "
                'steps for the same diffusion time, or scheme="implicit".',
                UserWarning, stacklevel=3)

    def build(self, inputs_shape, laplacian_shape=None):
        _validation.input_rank(self, inputs_shape, 2, "rank 2 (nodes, channels)")
        if self.trainable_sigma2:
            self.sigma2_weight = self.add_weight(
                name="sigma2", shape=(), trainable=True,
                initializer=keras.initializers.Constant(self.sigma2),
                constraint=keras.constraints.NonNeg())

    def _step_size(self, dtype):
        if self.trainable_sigma2:
            return ops.cast(self.sigma2_weight, dtype)
        return ops.cast(self.sigma2, dtype)

    def call(self, inputs, laplacian):
        if self.num_steps == 0:
            return inputs
        step = self._step_size(inputs.dtype)
        if self.scheme == "explicit":  # u <- (I - sigma2 L) u
            operator = self._operator(inputs, laplacian, -step)
            u = inputs
            for _ in range(self.num_steps):
                u = operator(u)
            return u
        operator = self._operator(inputs, laplacian, step)  # solve (I + sigma2 L) u' = u
        u = inputs
        for _ in range(self.num_steps):
            u = self._solve(operator, u)
        return u

    @staticmethod
    def _operator(inputs, laplacian, c):
        """The map v -> v + c * L v.

        For an edge list it is ONE gather + segment_sum over the edges of L
        plus a self-loop of weight 1 on every node. Folding the identity into
        the edges matters for backpropagation on TensorFlow: with
        `v + c * L v` as two branches, both branches' gradients are
        IndexedSlices when the loss reads only some nodes (tf.gather), and
        their sum is kept as ever longer IndexedSlices, step after step (a
        20-step COIN backward pass was 4x slower that way, measured).
        """
        dtype = inputs.dtype
        if not _is_edge_list(laplacian):
            matrix = ops.cast(laplacian, dtype)
            return lambda v: v + c * ops.matmul(matrix, v)
        senders, receivers, weights = laplacian
        num_nodes = ops.shape(inputs)[0]
        nodes = ops.arange(num_nodes, dtype="int32")
        senders = ops.concatenate([ops.cast(senders, "int32"), nodes])
        receivers = ops.concatenate([ops.cast(receivers, "int32"), nodes])
        coefficients = ops.expand_dims(ops.concatenate(
            [c * ops.cast(weights, dtype), ops.ones_like(nodes, dtype=dtype)]), -1)
        return lambda v: ops.segment_sum(coefficients * ops.take(v, senders, axis=0),
                                         receivers, num_segments=num_nodes)

    def _solve(self, operator, rhs):
        """Conjugate gradients for operator(x) = rhs, column by column.

        The step coefficients are held constant for backpropagation, so the
        gradient is that of the fixed polynomial q(A) ~ A^-1 the iterations
        built, which for a symmetric A is again ~ A^-1 applied to the incoming
        gradient, with no division by vanishing residuals.
        """
        x = rhs
        residual = rhs - operator(x)
        direction = residual
        norm = ops.sum(residual * residual, axis=0)
        floor = 1e-12 * ops.maximum(ops.max(norm), 1e-30)  # converged: stop updating

        def ratio(numerator, denominator):
            safe = ops.where(denominator > floor, denominator, 1)
            return ops.stop_gradient(ops.where(denominator > floor, numerator / safe, 0))

        for _ in range(self.solver_iterations):
            image = operator(direction)
            alpha = ratio(norm, ops.sum(direction * image, axis=0))
            x = x + alpha * direction
            residual = residual - alpha * image
            new_norm = ops.sum(residual * residual, axis=0)
            direction = residual + ratio(new_norm, norm) * direction
            norm = new_norm
        return x

    def compute_output_shape(self, inputs_shape, laplacian_shape=None):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update({"num_steps": self.num_steps, "sigma2": self.sigma2,
                       "trainable_sigma2": self.trainable_sigma2, "scheme": self.scheme,
                       "lambda_max": self.lambda_max, "solver_iterations": self.solver_iterations})
        return config

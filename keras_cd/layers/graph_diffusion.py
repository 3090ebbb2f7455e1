"""The `GraphDiffusion` layer: heat diffusion on a graph over the samples (COIN).

In COIN (Wang, Bao & Shi, arXiv 2403.15726) the diffusion half of the
convection-diffusion equation acts on the data graph: a base classifier's
scores u(0) on the nodes are smoothed by the graph heat equation

    u_t = -L u,

with L a graph Laplacian. This module holds
[`GraphDiffusion`][keras_cd.layers.GraphDiffusion], which integrates it with
explicit or implicit Euler steps, `SCHEMES`, the names of those schemes, and
`warn_if_unstable`, the stability warning of the explicit scheme
(sigma2 * lambda_max(L) <= 2).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from keras_cd import _random, _validation
from keras_cd.layers import _implicit_solve as _graph

if TYPE_CHECKING:
    import scipy.sparse
    from numpy.typing import ArrayLike

# Time-stepping schemes: explicit Euler (the paper's) or implicit Euler (unconditionally stable).
SCHEMES = ("explicit", "implicit")


def _concrete(laplacian):
    """The Laplacian as numpy arrays when its values are known here, else None."""
    parts = laplacian if _graph.is_edge_list(laplacian) else [laplacian]
    try:
        arrays = [p if isinstance(p, np.ndarray) else ops.convert_to_numpy(p) for p in parts]
    except Exception:  # symbolic: a KerasTensor, or traced by tf.function / jax.jit
        return None
    return arrays if _graph.is_edge_list(laplacian) else arrays[0]


def warn_if_unstable(name, num_steps, sigma2, lambda_max, trainable_sigma2=False, stacklevel=2):
    """Warns when explicit steps of size sigma2 are unstable: sigma2 * lambda_max > 2.

    An explicit step u <- u - sigma2 L u multiplies the eigenmode of
    eigenvalue lambda by 1 - sigma2 * lambda, so the top mode grows once
    sigma2 * lambda_max > 2. The warning says by how much over `num_steps`
    steps and which sigma2 is stable.

    Args:
        name: str, the layer or model named in the warning.
        num_steps: int, the number of steps; 0 never warns.
        sigma2: float, the step size.
        lambda_max: float or None, the largest eigenvalue of L; None never
            warns.
        trainable_sigma2: bool, whether sigma2 is learned (the warning then
            says that the learned value is kept at the limit). Defaults to
            `False`.
        stacklevel: int, the `stacklevel` of `warnings.warn`, counted from
            the caller of this function. Defaults to `2`.

    Warns:
        UserWarning: when sigma2 * lambda_max > 2.

    Example:
        >>> import warnings
        >>> from keras_cd.layers.graph_diffusion import warn_if_unstable
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_if_unstable("demo", num_steps=10, sigma2=0.5, lambda_max=3.0)  # 1.5 <= 2
        ...     warn_if_unstable("demo", num_steps=10, sigma2=1.0, lambda_max=3.0)  # 3.0 > 2
        >>> len(caught), caught[0].category.__name__
        (1, 'UserWarning')
    """
    if lambda_max is None or not num_steps:
        return
    product = sigma2 * lambda_max
    if product > 2:
        growth = abs(1 - product) ** num_steps
        learned = (
            " A learned sigma2 is kept at or below that limit from the first training step on."
            if trainable_sigma2
            else ""
        )
        warnings.warn(
            f"Unstable explicit diffusion in `{name}`: sigma2 * lambda_max = "
            f"{sigma2:g} * {lambda_max:.4g} = {product:.4g} > 2, so the "
            f"top eigenmode grows by |1 - {product:.4g}| per step ({growth:.3g}x over "
            f"{num_steps} steps). Use sigma2 <= {2 / lambda_max:.4g} with more "
            f'steps for the same diffusion time, or scheme="implicit".{learned}',
            UserWarning,
            stacklevel=stacklevel + 1,
        )


@keras.saving.register_keras_serializable(package="keras_cd")
class GraphDiffusion(keras.layers.Layer):
    """Heat diffusion on a graph over the samples: COIN's diffusion half.

    Integrates u_t = -L u for a total time t = num_steps * sigma2, the
    diffusion term of the convection-diffusion equation on the data graph,
    from u(0) = the input (e.g. a base classifier's scores per node):

        explicit (the paper's):  u <- u - sigma2 * L u,          num_steps times
        implicit (stable):       u <- (I + sigma2 * L)^-1 u,     num_steps times

    Explicit Euler is stable only while sigma2 * lambda_max(L) <= 2; past it
    the top eigenmode grows by |1 - sigma2 * lambda_max| per step. The layer
    warns when that bound is violated: against `lambda_max` when given (see
    `keras_cd.graph.largest_eigenvalue`), else against an estimate from the
    first concrete (eager or numpy) Laplacian it is called with (Gershgorin's
    bound first, Lanczos only when that bound cannot prove stability). A
    learned sigma2 is kept in [0, 2 / lambda_max] once lambda_max is known.

    The implicit scheme is unconditionally stable for a symmetric positive
    semi-definite L (all of `keras_cd.graph.laplacian`'s normalizations but
    `"random_walk"`): the step (I + sigma2 L)^-1 then has eigenvalues
    1 / (1 + sigma2 lambda) in (0, 1]. Each step solves its system by
    `solver_iterations` conjugate-gradient iterations (matrix-vector products
    only, so it exports and compiles like the explicit one), which need L
    symmetric: a concrete non-symmetric Laplacian is refused with an error (a
    traced one cannot be inspected). Gradients are exact (implicit
    differentiation: one adjoint solve per step), for the input, sigma2 and
    the Laplacian's values alike.

    L is an (N, N) tensor (matmul; a tf.SparseTensor works on the TensorFlow
    backend) or its nonzeros as an edge list `(senders, receivers, weights)`:

        (L u)_i = sum over the edges e with receivers_e = i of weights_e u_{senders_e},

    computed by gather + segment_sum, which exports to ONNX and compiles
    under XLA (unlike tf.sparse).

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726) (COIN)

    Args:
        num_steps: int >= 0, number of steps; 0 makes the layer the identity.
        sigma2: float >= 0, step size (diffusion time per step); the initial
            value when `trainable_sigma2=True`.
        trainable_sigma2: bool, learn sigma2 (kept >= 0, and <= 2 / lambda_max
            for the explicit scheme once lambda_max is known). Defaults to
            `False`.
        scheme: `"explicit"` or `"implicit"`. Defaults to `"explicit"`.
        lambda_max: float or None, the largest eigenvalue of the Laplacians
            this layer will see, for the stability check. Defaults to `None`.
        solver_iterations: int >= 1, CG iterations per implicit step.
            Defaults to `10`; the error falls by about (sqrt(k) - 1) / (sqrt(k) + 1)
            per iteration, k = 1 + sigma2 * lambda_max.
        dropout: float in [0, 1), dropout rate on u before each step, in
            training. Defaults to `0.0`.
        seed: int or None, seed of the dropout masks. Defaults to `None`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: (N, C) tensor u, one row per graph node.
        laplacian: (N, N) tensor, or a tuple `(senders, receivers, weights)`
            of shapes (E,), (E,), (E,).
        training: bool, whether dropout applies. Defaults to `None` (no).

    Input shape:
        `inputs`: `(nodes, channels)`; `laplacian`: `(nodes, nodes)`, or
        three `(edges,)` tensors.

    Output shape:
        Same as `inputs`.

    Raises:
        ValueError: if an argument is invalid (`num_steps` not an int >= 0,
            `solver_iterations` not an int >= 1, `sigma2` or `lambda_max`
            negative, `dropout` not in [0, 1), `scheme` not one of `SCHEMES`,
            `trainable_sigma2` not a bool, `seed` neither None nor an int);
            if `inputs` is not of rank 2 (when the layer is built); with
            `scheme="implicit"`, if a concrete Laplacian is not symmetric
            (when the layer is called).

    Warns:
        UserWarning: with `scheme="explicit"`, when sigma2 * lambda_max > 2
            (at construction for a given `lambda_max`, else on the first call
            with a concrete Laplacian).

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> L = keras_cd.graph.laplacian(path, "none", self_loops=False, format="edges")
        >>> u = np.array([[3.0], [0.0], [0.0]], "float32")
        >>> out = keras_cd.layers.GraphDiffusion(num_steps=200, sigma2=0.1)(u, L)
        >>> np.round(keras.ops.convert_to_numpy(out).ravel(), 3).tolist()  # mass 3 spreads evenly
        [1.0, 1.0, 1.0]
        >>> # Implicit steps are stable at any size (explicit ones need sigma2 <= 2 / 3 here).
        >>> implicit = keras_cd.layers.GraphDiffusion(5, sigma2=10.0, scheme="implicit")
        >>> np.round(keras.ops.convert_to_numpy(implicit(u, L)).ravel(), 3).tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(
        self,
        num_steps: int,
        sigma2: float,
        trainable_sigma2: bool = False,
        scheme: str = "explicit",
        lambda_max: float | None = None,
        solver_iterations: int = 10,
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_steps = _validation.non_negative_int(
            "num_steps", num_steps, "Use e.g. num_steps=20 (0 turns diffusion off)."
        )
        self.sigma2 = _validation.non_negative_float(
            "sigma2", sigma2, "Use a diffusion step sigma2 >= 0, e.g. 0.1."
        )
        self.trainable_sigma2 = _validation.boolean("trainable_sigma2", trainable_sigma2)
        self.scheme = _validation.one_of(
            "scheme",
            scheme,
            SCHEMES,
            'Use scheme="explicit" (the paper) or "implicit" (unconditionally stable).',
        )
        self.lambda_max = (
            None
            if lambda_max is None
            else _validation.non_negative_float(
                "lambda_max", lambda_max, "Use keras_cd.graph.largest_eigenvalue(L), or None."
            )
        )
        self.solver_iterations = _validation.positive_int(
            "solver_iterations", solver_iterations, "Use e.g. 30."
        )
        self.dropout = _validation.rate("dropout", dropout, "Use e.g. dropout=0.25, or 0.")
        self.seed = _validation.optional_seed("seed", seed)
        if self.dropout:  # only then: models without dropout keep their variables
            self.seed_generator = _random.ReplicaSeedGenerator(self.seed)
        self._estimated_lambda_max = None  # from the first concrete Laplacian, when not given
        self._checked_graph = None
        self._warn_if_unstable(self.lambda_max, stacklevel=3)

    def stable_sigma2_limit(self) -> float | None:
        """Returns the largest stable explicit step size, 2 / lambda_max, if known.

        lambda_max is the one given to the constructor, else the one estimated
        from the first concrete Laplacian the layer was called with. When that
        estimate was taken from a Laplacian on which a fixed sigma2 is provably
        stable, it is Gershgorin's upper bound and this limit a conservative
        one.

        Returns:
            float, 2 / lambda_max; None for the implicit scheme (stable for
            every step size) or while lambda_max is unknown.
        """
        lambda_max = self.lambda_max if self.lambda_max is not None else self._estimated_lambda_max
        if self.scheme != "explicit" or not lambda_max:
            return None
        return 2.0 / lambda_max

    def _warn_if_unstable(self, lambda_max, stacklevel):
        if self.scheme == "explicit":
            warn_if_unstable(
                self.name,
                self.num_steps,
                self.sigma2,
                lambda_max,
                self.trainable_sigma2,
                stacklevel + 1,
            )

    def _check_graph(self, laplacian):
        """Checks a concrete (eager or numpy) Laplacian once.

        Symmetry for the implicit scheme, stability for the explicit one when
        lambda_max was not given. Traced Laplacians (inside fit or a compiled
        function) cannot be read and are not checked: pass `lambda_max` for
        those.
        """
        needs_symmetry = self.scheme == "implicit"
        needs_spectrum = self.scheme == "explicit" and self.lambda_max is None
        if (
            not self.num_steps
            or not (needs_symmetry or needs_spectrum)
            or _graph.is_sparse(laplacian)
        ):
            return
        arrays = _concrete(laplacian)
        if arrays is None:
            return
        parts = arrays if _graph.is_edge_list(laplacian) else [arrays]
        key = tuple((a.shape, hash(np.ascontiguousarray(a).tobytes())) for a in parts)
        if key == self._checked_graph:
            return
        from keras_cd.graph.laplacian import _as_scipy, stability_lambda_max

        matrix = _as_scipy(tuple(arrays) if _graph.is_edge_list(laplacian) else arrays)
        if needs_symmetry:
            self.check_symmetric(matrix, f"`{self.name}`")
        if needs_spectrum:
            self._estimated_lambda_max = stability_lambda_max(
                matrix, self.sigma2, exact=self.trainable_sigma2
            )
            self._warn_if_unstable(self._estimated_lambda_max, stacklevel=4)
        self._checked_graph = key

    @staticmethod
    def check_symmetric(
        laplacian: ArrayLike
        | scipy.sparse.spmatrix
        | scipy.sparse.sparray
        | tuple[ArrayLike, ArrayLike, ArrayLike],
        where: str = "GraphDiffusion",
    ) -> None:
        """Raises a ValueError unless `laplacian` is symmetric.

        The implicit scheme's conjugate-gradient solver needs a symmetric L;
        symmetry is tested by `keras_cd.graph.is_symmetric` (relative
        tolerance 1e-6).

        Args:
            laplacian: (N, N) NumPy array, scipy.sparse matrix or edge list
                `(senders, receivers, weights)`.
            where: str, what the error message names as the caller. Defaults
                to `"GraphDiffusion"`.

        Raises:
            ValueError: if `laplacian` is not symmetric.

        Example:
            >>> import numpy as np, keras_cd
            >>> directed = np.array([[1.0, -1.0], [0.0, 0.0]])
            >>> keras_cd.layers.GraphDiffusion.check_symmetric(np.eye(2))  # passes
            >>> keras_cd.layers.GraphDiffusion.check_symmetric(directed)
            Traceback (most recent call last):
            ...
            ValueError: Invalid value for `laplacian` in GraphDiffusion: the implicit ...
        """
        from keras_cd.graph import is_symmetric

        if not is_symmetric(laplacian):
            raise ValueError(
                f"Invalid value for `laplacian` in {where}: the implicit scheme's "
                "conjugate-gradient solver needs a symmetric Laplacian. Received: a "
                'non-symmetric one (e.g. normalization="random_walk", or a directed graph). '
                'Use a symmetric normalization ("coin", "symmetric" or "none"), symmetrize the '
                'graph ((A + A^T) / 2), or use scheme="explicit".'
            )

    def _constrain_sigma2(self, value):
        """Keeps a learned sigma2 in [0, 2 / lambda_max] (explicit scheme, lambda_max known)."""
        limit = self.stable_sigma2_limit()
        return ops.maximum(value, 0) if limit is None else ops.clip(value, 0, limit)

    def build(self, inputs_shape, laplacian_shape=None) -> None:
        """Checks that `inputs` has rank 2; creates the `sigma2` weight if it is learned."""
        _validation.input_rank(
            self,
            inputs_shape,
            2,
            "rank 2 (nodes, channels)",
            "Pass one row per graph node, e.g. u[:, None] for one channel.",
        )
        if self.trainable_sigma2:
            self.sigma2_weight = self.add_weight(
                name="sigma2",
                shape=(),
                trainable=True,
                initializer=self._initial_sigma2,
                constraint=self._constrain_sigma2,
            )

    def _step_size(self, dtype):
        if self.trainable_sigma2:
            return ops.cast(self.sigma2_weight, dtype)
        return ops.convert_to_tensor(self.sigma2, dtype=dtype)  # not via float32

    def _initial_sigma2(self, shape, dtype=None):
        return ops.full(shape, self.sigma2, dtype=dtype)

    def call(self, inputs, laplacian, training: bool | None = None):
        """Returns u after `num_steps` diffusion steps from u(0) = `inputs`."""
        if self.num_steps == 0:
            return inputs
        self._check_graph(laplacian)
        step = self._step_size(inputs.dtype)
        if training and self.dropout:
            drop = lambda v: _random.dropout(v, self.dropout, self.seed_generator)  # noqa: E731
        else:
            drop = lambda v: v  # noqa: E731
        u = inputs
        if self.scheme == "explicit":  # u <- (I - sigma2 L) u
            operator = self._operator(inputs, laplacian, -step)
            for _ in range(self.num_steps):
                u = operator(drop(u))
            return u
        for _ in range(self.num_steps):  # solve (I + sigma2 L) u' = u
            u = _graph.implicit_step(drop(u), step, laplacian, self.solver_iterations)
        return u

    @staticmethod
    def _operator(inputs, laplacian, c):
        """The map v -> v + c * L v.

        For an edge list it is ONE gather + segment_sum over the edges of L
        plus a self-loop of weight 1 on every node. Folding the identity into
        the edges matters for backpropagation on TensorFlow: with
        `v + c * L v` as two branches, both branches' gradients are
        IndexedSlices when the loss reads only some nodes (tf.gather), and
        their sum is kept as ever longer IndexedSlices, step after step.
        """
        dtype = inputs.dtype
        if not _graph.is_edge_list(laplacian):
            matrix = ops.cast(laplacian, dtype)
            return lambda v: v + c * ops.matmul(matrix, v)
        senders, receivers, weights = laplacian
        num_nodes = ops.shape(inputs)[0]
        nodes = ops.arange(num_nodes, dtype="int32")
        senders = ops.concatenate([ops.cast(senders, "int32"), nodes])
        receivers = ops.concatenate([ops.cast(receivers, "int32"), nodes])
        coefficients = ops.expand_dims(
            ops.concatenate([c * ops.cast(weights, dtype), ops.ones_like(nodes, dtype=dtype)]), -1
        )
        return lambda v: ops.segment_sum(
            coefficients * ops.take(v, senders, axis=0), receivers, num_segments=num_nodes
        )

    def compute_output_shape(self, inputs_shape, laplacian_shape=None) -> tuple:
        """Returns `inputs_shape`: diffusion keeps the shape."""
        return inputs_shape

    def get_config(self) -> dict:
        """Returns the layer's config: the base layer's plus every constructor argument."""
        config = super().get_config()
        config.update(
            {
                "num_steps": self.num_steps,
                "sigma2": self.sigma2,
                "trainable_sigma2": self.trainable_sigma2,
                "scheme": self.scheme,
                "lambda_max": self.lambda_max,
                "solver_iterations": self.solver_iterations,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config

"""The `DenseCDBlock` layer: a convection-diffusion residual block for feature vectors.

Holds [`DenseCDBlock`][keras_cd.layers.DenseCDBlock], one operator-splitting
step of the stochastic differential equation dX = F(X) dt + sigma dW on
vectors: a residual MLP branch is the convection (forward Euler) step and a
[`DiffusionNoise`][keras_cd.layers.DiffusionNoise] layer the diffusion step.
By Feynman-Kac, a stack of such blocks approximates the solution of the
convection-diffusion equation u_t = F . grad u + (sigma^2 / 2) Laplacian u of
Wang, Bao & Shi (arXiv 2403.15726).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from keras_cd import _validation
from keras_cd.layers.diffusion_noise import MODES, DiffusionNoise


@keras.saving.register_keras_serializable(package="keras_cd")
class DenseCDBlock(keras.layers.Layer):
    """Convection-diffusion residual block for feature vectors.

    One operator-splitting step of dX = F(X) dt + sigma dW on vectors:

        convection:  x <- P(x) + dt * F(x),   F(x) = W2 a(W1 x + b1) + b2
        diffusion:   x <- x + sigma * sqrt(dt) * eps,   eps ~ N(0, I)

    with `a` the activation and P the identity, or a bias-free linear map
    when the input width differs from `units`. A stack of K blocks with
    dt = T / K is the Euler-Maruyama scheme for that SDE, and by Feynman-Kac
    the mean of g(x_K) over the noise approximates u(x, T), the solution of
    u_t = F . grad u + (sigma^2 / 2) Laplacian u with u(., 0) = g, with an
    error of order dt (weak order 1). With `sigma=0` the block is a plain
    residual MLP block.

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726)

    Args:
        units: int >= 1, width of the block's output and hidden layer.
        dt: float >= 0, step size. Defaults to `1.0`.
        sigma: float >= 0, diffusion coefficient. Defaults to `0.1`.
        activation: activation `a` of the velocity field. Defaults to
            `"relu"`.
        mode: `"additive"` or `"relative"` noise, see `DiffusionNoise`.
            Defaults to `"additive"`.
        seed: int or None, seed of the diffusion noise. Defaults to `None`.
        kernel_regularizer: regularizer of the dense kernels. Defaults to `None`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: 2D tensor `(batch, features)`.
        training: bool. Noise is on when `True` or inside
            `keras_cd.monte_carlo()`.

    Input shape:
        `(batch, features)`.

    Output shape:
        `(batch, units)`.

    Raises:
        ValueError: if `units` is not an int >= 1, `dt` or `sigma` is
            negative or not finite, `mode` is not `"additive"` or
            `"relative"`, or `seed` is neither None nor an int (at
            construction); if the input is not of rank 2 or its number of
            features is unknown (when the block is built).

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> block = keras_cd.layers.DenseCDBlock(3, dt=0.5, sigma=0.2, seed=0)
        >>> x = np.ones((4, 3), "float32")
        >>> y = keras.ops.convert_to_numpy(block(x))
        >>> y.shape
        (4, 3)
        >>> velocity = keras.ops.convert_to_numpy(block.dense2(block.dense1(x)))
        >>> bool(np.allclose(y, x + 0.5 * velocity))  # inference: x + dt * F(x), no noise
        True
    """

    def __init__(
        self,
        units: int,
        dt: float = 1.0,
        sigma: float = 0.1,
        activation: str | Callable | None = "relu",
        mode: str = "additive",
        seed: int | None = None,
        kernel_regularizer: keras.regularizers.Regularizer | str | dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _validation.positive_int(
            "units", units, "Use the width of the block, e.g. 64."
        )
        self.dt = _validation.non_negative_float("dt", dt, "Use a step size dt >= 0, e.g. dt=1.0.")
        self.sigma = _validation.non_negative_float(
            "sigma", sigma, "Use sigma >= 0 (sigma=0 turns diffusion off)."
        )
        self.activation = keras.activations.get(activation)
        self.mode = _validation.one_of(
            "mode", mode, MODES, 'Use mode="additive" or mode="relative".'
        )
        self.seed = _validation.optional_seed("seed", seed)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def _dense(self, name, use_bias=True, activation=None):
        return keras.layers.Dense(
            self.units,
            activation=activation,
            use_bias=use_bias,
            kernel_regularizer=self.kernel_regularizer,
            name=name,
            dtype=self.dtype_policy,
        )

    def build(self, input_shape) -> None:
        """Creates the dense sublayers, the projection and the diffusion for `input_shape`."""
        _validation.input_rank(
            self,
            input_shape,
            2,
            "rank 2 (batch, features)",
            "Flatten the input to (batch, features); use `keras_cd.CDBlock` for images.",
        )
        if input_shape[-1] is None:
            raise ValueError(
                f"Invalid input shape for `{type(self).__name__}` (name={self.name!r}): "
                "expected a known number of features. Received: "
                f"input_shape={tuple(input_shape)}. Give the last axis a "
                "fixed size, e.g. keras.Input((16,))."
            )
        hidden_shape = (input_shape[0], self.units)
        self.dense1 = self._dense("dense1", activation=self.activation)
        self.dense1.build(input_shape)
        self.dense2 = self._dense("dense2")
        self.dense2.build(hidden_shape)
        if input_shape[-1] != self.units:
            self.projection = self._dense("projection", use_bias=False)
            self.projection.build(input_shape)
        else:
            self.projection = None
        self.diffusion = DiffusionNoise(
            self.sigma,
            dt=self.dt,
            mode=self.mode,
            seed=self.seed,
            name="diffusion",
            dtype=self.dtype_policy,
        )
        self.diffusion.build(hidden_shape)

    def call(self, inputs, training: bool | None = None):
        """Returns the convection step P(x) + dt * F(x), followed by the diffusion step."""
        shortcut = inputs if self.projection is None else self.projection(inputs)
        velocity = self.dense2(self.dense1(inputs))
        convected = shortcut + ops.cast(self.dt, velocity.dtype) * velocity
        return self.diffusion(convected, training=training)

    def compute_output_shape(self, input_shape) -> tuple:
        """Returns `(batch, units)`."""
        return (input_shape[0], self.units)

    def get_config(self) -> dict:
        """Returns the layer's config: the base layer's plus every constructor argument."""
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "dt": self.dt,
                "sigma": self.sigma,
                "activation": keras.activations.serialize(self.activation),
                "mode": self.mode,
                "seed": self.seed,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config

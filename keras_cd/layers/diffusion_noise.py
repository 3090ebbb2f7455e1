"""The `DiffusionNoise` layer: the diffusion half of a convection-diffusion step.

Wang, Bao & Shi (arXiv 2403.15726) read a residual network as the
characteristics of the convection-diffusion equation

    u_t = v . grad u + (sigma^2 / 2) Laplacian u.

A residual block is the convection step (forward Euler along the velocity
field v); this module holds its diffusion step,
[`DiffusionNoise`][keras_cd.layers.DiffusionNoise], which adds the Brownian
increment sigma * sqrt(dt) * eps of one Euler-Maruyama step of
dX = v(X, t) dt + sigma dW to the residual stream. `MODES` lists the noise
modes it accepts.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_cd import _noise, _validation
from keras_cd._random import ReplicaSeedGenerator

# The noise modes: a fixed scale, or a scale proportional to each sample's standard deviation.
MODES = ("additive", "relative")


@keras.saving.register_keras_serializable(package="keras_cd")
class DiffusionNoise(keras.layers.Layer):
    """One stochastic diffusion step: Gaussian noise on the residual stream.

    In the convection-diffusion view of a network (Wang, Bao & Shi), the
    diffusion half of an operator-splitting step moves every feature by a
    Brownian increment:

        x <- x + sigma * sqrt(dt) * s(x) * eps,    eps ~ N(0, I),

    with s(x) = 1 (`mode="additive"`) or s(x) = the standard deviation of
    each sample's features (`mode="relative"`, the EnResNet variant). A stack
    of such steps interleaved with residual (convection) steps is the
    Euler-Maruyama scheme for dX = v(X, t) dt + sigma dW, and by Feynman-Kac
    the expected output solves the convection-diffusion equation
    u_t = v . grad u + (sigma^2 / 2) Laplacian u.

    Unlike `keras.layers.GaussianNoise`, any `sigma >= 0` is accepted, and
    the noise is not tied to `training` alone: inside
    `keras_cd.monte_carlo()` it also stays on at inference (without putting
    BatchNormalization into training mode). Under `tf.distribute`, every
    replica draws independent noise.

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726)
        - [Wang, Yin & Osher, 2019 (EnResNet)](https://arxiv.org/abs/1911.09210)

    Args:
        sigma: float >= 0, diffusion coefficient. `0` makes the layer the
            identity.
        dt: float >= 0, the step size; the noise standard deviation is
            `sigma * sqrt(dt)`. Defaults to `1.0`.
        mode: `"additive"` or `"relative"`. Defaults to `"additive"`.
        seed: int or None, seed of the noise. Defaults to `None`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: tensor of any rank (rank >= 2 for `mode="relative"`,
            the first axis being the batch).
        training: bool. Noise is added when `True` or inside
            `keras_cd.monte_carlo()`; otherwise the layer is the identity.
        monte_carlo: bool, `True` adds noise at inference too, whatever the
            switch (input smoothing: `keras_cd.smoothing` builds its noisy
            copies this way). Defaults to `None` (follow the switch).

    Input shape:
        Arbitrary.

    Output shape:
        Same as the input.

    Raises:
        ValueError: if `sigma` or `dt` is negative or not a finite number, `mode`
            is not one of `MODES`, or `seed` is neither None nor an int (at
            construction); if the input has rank < 2 with `mode="relative"`
            (when the layer is built).

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> layer = keras_cd.layers.DiffusionNoise(sigma=2.0, dt=0.25, seed=1)
        >>> x = np.zeros((1000, 100), "float32")
        >>> bool(np.all(keras.ops.convert_to_numpy(layer(x)) == x))  # inference: the identity
        True
        >>> noise = keras.ops.convert_to_numpy(layer(x, training=True))
        >>> round(float(noise.std()), 1)  # sigma * sqrt(dt)
        1.0
    """

    def __init__(
        self,
        sigma: float,
        dt: float = 1.0,
        mode: str = "additive",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sigma = _validation.non_negative_float(
            "sigma", sigma, "Use sigma >= 0 (sigma=0 turns diffusion off)."
        )
        self.dt = _validation.non_negative_float("dt", dt, "Use a step size dt >= 0, e.g. dt=1.0.")
        self.mode = _validation.one_of(
            "mode",
            mode,
            MODES,
            'Use mode="additive" (fixed scale) or mode="relative" (scaled '
            "by each sample's standard deviation).",
        )
        self.seed = _validation.optional_seed("seed", seed)
        self.seed_generator = ReplicaSeedGenerator(self.seed)
        self.switch = _noise.MonteCarloSwitch()  # follows keras_cd.monte_carlo()
        self.supports_masking = True

    @property
    def noise_stddev(self) -> float:
        """The standard deviation `sigma * sqrt(dt)` of one step's noise."""
        return self.sigma * math.sqrt(self.dt)

    def build(self, input_shape) -> None:
        """Checks the input rank: rank >= 2 for `mode="relative"`; the layer has no weights."""
        if self.mode == "relative":
            _validation.input_rank(
                self,
                input_shape,
                range(2, 10**6),
                'rank >= 2 (batch, features...) for mode="relative"',
                'Add a batch axis, or use mode="additive" for unbatched inputs.',
            )

    def call(self, inputs, training: bool | None = None, monte_carlo: bool | None = None):
        """Returns `inputs` plus one step's noise when noise is on, else `inputs`."""
        if self.noise_stddev == 0:
            return inputs
        return _noise.perturb(
            inputs,
            self._noise_scale,
            self.seed_generator,
            self.switch,
            training=training,
            monte_carlo=monte_carlo,
        )

    def _noise_scale(self, inputs):
        """The noise's standard deviation: sigma sqrt(dt), times each sample's std if relative."""
        if self.mode != "relative":
            return self.noise_stddev
        feature_axes = tuple(range(1, len(inputs.shape)))
        # Statistics in float32 at least: float16 overflows on x**2.
        low = self.compute_dtype in ("float16", "bfloat16")
        wide = ops.cast(inputs, "float32") if low else inputs
        return self.noise_stddev * ops.std(wide, axis=feature_axes, keepdims=True)

    def compute_output_shape(self, input_shape) -> tuple:
        """Returns `input_shape`: the noise keeps the shape."""
        return input_shape

    def get_config(self) -> dict:
        """Returns the layer's config: the base layer's plus `sigma`, `dt`, `mode`, `seed`."""
        config = super().get_config()
        config.update({"sigma": self.sigma, "dt": self.dt, "mode": self.mode, "seed": self.seed})
        return config

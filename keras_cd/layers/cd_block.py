"""The `CDBlock` layer: a convection-diffusion residual block for images.

Holds [`CDBlock`][keras_cd.layers.CDBlock], one operator-splitting step of
the convection-diffusion equation of Wang, Bao & Shi (arXiv 2403.15726),

    u_t = v . grad u + (sigma^2 / 2) Laplacian u,

on feature maps: a pre-activation ResNet branch is the convection (forward
Euler) step, and a [`DiffusionNoise`][keras_cd.layers.DiffusionNoise] layer
is the diffusion step. [`cd_resnet`][keras_cd.models.cd_resnet] stacks these
blocks into the CIFAR ResNet family.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_cd import _validation
from keras_cd.layers.diffusion_noise import MODES, DiffusionNoise


@keras.saving.register_keras_serializable(package="keras_cd")
class CDBlock(keras.layers.Layer):
    """Convection-diffusion residual block for images (one splitting step).

    One step of operator splitting for the convection-diffusion equation
    u_t = v . grad u + (sigma^2 / 2) Laplacian u, read along the
    characteristics x(t) of the network's feature flow:

        convection:  x <- P(x) + dt * F(x)
        diffusion:   x <- x + sigma * sqrt(dt) * eps,   eps ~ N(0, I)

    F is the pre-activation residual branch of He et al. (2016),
    BN-ReLU-Conv3x3-BN-ReLU-Conv3x3, so the convection step is the forward
    Euler step along the velocity field F. P is the identity, or, when
    `strides` or the number of channels change, a 1x1 convolution applied to
    the pre-activated input (BN-ReLU), as in the pre-activation ResNet.
    The diffusion step is a `keras_cd.layers.DiffusionNoise`; with `sigma=0`
    the block is exactly a pre-activation ResNet block (same weights, same
    output).

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726)
        - [He et al., 2016, Identity Mappings in Deep Residual Networks](
          https://arxiv.org/abs/1603.05027)

    Args:
        filters: int >= 1, number of output channels.
        strides: int >= 1, stride of the first convolution and of the
            projection. Defaults to `1`.
        dt: float >= 0, step size of both half steps. Defaults to `1.0`.
        sigma: float >= 0, diffusion coefficient. Defaults to `0.1`.
        mode: `"additive"` or `"relative"` noise, see `DiffusionNoise`.
            Defaults to `"additive"`.
        seed: int or None, seed of the diffusion noise. Defaults to `None`.
        kernel_regularizer: regularizer of the convolution kernels (e.g.
            `keras.regularizers.L2(5e-5)`: He et al.'s weight decay 1e-4).
            Defaults to `None`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: 4D tensor `(batch, height, width, channels)`.
        training: bool, training mode of BatchNormalization and of the noise.
            Noise also stays on inside `keras_cd.monte_carlo()`.

    Input shape:
        `(batch, height, width, channels)` (channels last).

    Output shape:
        `(batch, ceil(height / strides), ceil(width / strides), filters)`.

    Raises:
        ValueError: if `filters` or `strides` is not an int >= 1, `dt` or
            `sigma` is negative or not finite, `mode` is not `"additive"` or
            `"relative"`, or `seed` is neither None nor an int (at
            construction); if the input is not of rank 4 or its number of
            channels is unknown (when the block is built).

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> block = keras_cd.layers.CDBlock(32, strides=2, sigma=0.1, seed=0)
        >>> x = np.random.default_rng(0).normal(size=(2, 16, 16, 16)).astype("float32")
        >>> y = keras.ops.convert_to_numpy(block(x))
        >>> y.shape  # half the height and width, `filters` channels
        (2, 8, 8, 32)
        >>> bool(np.all(y == keras.ops.convert_to_numpy(block(x))))  # inference: no noise
        True
        >>> with keras_cd.monte_carlo():  # noise on, BatchNormalization in inference mode
        ...     bool(np.any(y != keras.ops.convert_to_numpy(block(x))))
        True
    """

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        dt: float = 1.0,
        sigma: float = 0.1,
        mode: str = "additive",
        seed: int | None = None,
        kernel_regularizer: keras.regularizers.Regularizer | str | dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = _validation.positive_int(
            "filters", filters, "Use the number of output channels, e.g. 16."
        )
        self.strides = _validation.positive_int(
            "strides", strides, "Use strides=1 (same size) or 2 (downsample)."
        )
        self.dt = _validation.non_negative_float("dt", dt, "Use a step size dt >= 0, e.g. dt=1.0.")
        self.sigma = _validation.non_negative_float(
            "sigma", sigma, "Use sigma >= 0 (sigma=0 is a plain ResNet block)."
        )
        self.mode = _validation.one_of(
            "mode", mode, MODES, 'Use mode="additive" or mode="relative".'
        )
        self.seed = _validation.optional_seed("seed", seed)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def _conv(self, kernel_size, strides, name):
        return keras.layers.Conv2D(
            self.filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            kernel_regularizer=self.kernel_regularizer,
            name=name,
            dtype=self.dtype_policy,
        )

    def _batch_norm(self, name):
        return keras.layers.BatchNormalization(name=name, dtype=self.dtype_policy)

    def build(self, input_shape) -> None:
        """Creates the sublayers (BN, convolutions, projection, diffusion) for `input_shape`."""
        _validation.input_rank(
            self,
            input_shape,
            4,
            "rank 4 (batch, height, width, channels)",
            "Reshape images to (batch, height, width, channels); use "
            "`keras_cd.DenseCDBlock` for feature vectors.",
        )
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"Invalid input shape for `{type(self).__name__}` (name={self.name!r}): "
                "expected a known number of channels. Received: "
                f"input_shape={tuple(input_shape)}. Give the channel axis a "
                "fixed size, e.g. keras.Input((None, None, 3))."
            )
        self.bn1 = self._batch_norm("bn1")
        self.bn1.build(input_shape)
        self.conv1 = self._conv(3, self.strides, "conv1")
        self.conv1.build(input_shape)
        mid_shape = self.conv1.compute_output_shape(input_shape)
        self.bn2 = self._batch_norm("bn2")
        self.bn2.build(mid_shape)
        self.conv2 = self._conv(3, 1, "conv2")
        self.conv2.build(mid_shape)
        if self.strides != 1 or channels != self.filters:
            self.projection = self._conv(1, self.strides, "projection")
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
        self.diffusion.build(mid_shape)

    def call(self, inputs, training: bool | None = None):
        """Returns the convection step P(x) + dt * F(x), followed by the diffusion step."""
        preactivated = ops.relu(self.bn1(inputs, training=training))
        if self.projection is None:
            shortcut = inputs
        else:
            shortcut = self.projection(preactivated)
        velocity = self.conv1(preactivated)
        velocity = ops.relu(self.bn2(velocity, training=training))
        velocity = self.conv2(velocity)
        convected = shortcut + ops.cast(self.dt, velocity.dtype) * velocity
        return self.diffusion(convected, training=training)

    def compute_output_shape(self, input_shape) -> tuple:
        """Returns `(batch, ceil(height / strides), ceil(width / strides), filters)`."""
        batch, height, width, _ = input_shape

        def reduced(size):
            return None if size is None else -(-size // self.strides)

        return (batch, reduced(height), reduced(width), self.filters)

    def get_config(self) -> dict:
        """Returns the layer's config: the base layer's plus every constructor argument."""
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "dt": self.dt,
                "sigma": self.sigma,
                "mode": self.mode,
                "seed": self.seed,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config

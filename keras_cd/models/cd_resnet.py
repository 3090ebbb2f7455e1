"""`cd_resnet`: the CIFAR ResNet family built from convection-diffusion blocks.

Holds the model factory [`cd_resnet`][keras_cd.models.cd_resnet], the
network of the image-classification experiments of Wang, Bao & Shi (arXiv
2403.15726): He et al.'s CIFAR ResNet whose residual blocks are
[`CDBlock`][keras_cd.layers.CDBlock]s, so that the network integrates the
stochastic differential equation dX = F(X, t) dt + sigma dW by
Euler-Maruyama steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_cd import _validation
from keras_cd.layers.cd_block import CDBlock
from keras_cd.layers.diffusion_noise import MODES


def cd_resnet(
    depth: int = 20,
    num_classes: int = 10,
    sigma: float = 0.1,
    dt: float = 1.0,
    mode: str = "additive",
    input_shape: Sequence[int | None] = (32, 32, 3),
    seed: int | None = None,
    weight_decay: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """The CIFAR ResNet family of He et al. built from `keras_cd.CDBlock`s.

    A 3x3 convolution with 16 filters, three stages of n = (depth - 2) / 6
    convection-diffusion blocks with 16, 32 and 64 filters (the first block
    of stages 2 and 3 downsamples by 2 with a 1x1 projection shortcut), a
    final BN-ReLU, global average pooling and a softmax classifier. Each block
    is one Euler-Maruyama step

        x <- P(x) + dt * F(x) + sigma * sqrt(dt) * eps,

    so the network integrates dX = F(X, t) dt + sigma dW over 3n steps, and
    `sigma=0` is the plain pre-activation ResNet (same weights, same outputs;
    0.27M parameters for depth 20, 0.85M for depth 56, as in He et al.). The
    classifier computes in float32 also under a mixed-precision policy.

    Reference:
        - [He et al., 2016, Deep Residual Learning](
          https://arxiv.org/abs/1512.03385), section 4.2 (CIFAR-10)
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726)

    Args:
        depth: int, 6n + 2 with n >= 1 (8, 20, 32, 44, 56, 110, ...).
            Defaults to `20`.
        num_classes: int >= 2, number of classes. Defaults to `10`.
        sigma: float >= 0, diffusion coefficient of every block.
            Defaults to `0.1`.
        dt: float >= 0, step size of every block. Defaults to `1.0`.
        mode: `"additive"` or `"relative"` noise. Defaults to `"additive"`.
        input_shape: image shape `(height, width, channels)`.
            Defaults to `(32, 32, 3)`.
        seed: int or None; block i uses seed `seed + i`. Defaults to `None`.
        weight_decay: float >= 0, coupled L2 weight decay on every kernel
            (convolutions and the classifier, not BatchNorm), as in He et
            al.: the gradient gains `weight_decay * w` (an L2 regularizer of
            factor `weight_decay / 2`, in `model.losses`). He et al. use
            1e-4. Defaults to `0.0`.
        name: str or None, model name. Defaults to `None`:
            `"cd_resnet{depth}"`.

    Returns:
        A functional `keras.Model` from images `(batch, height, width,
        channels)` to class probabilities `(batch, num_classes)` (float32,
        softmax).

    Raises:
        ValueError: if `depth` is not 6n + 2 with n >= 1, `num_classes` is not
            an int >= 2, `mode` is not `"additive"` or `"relative"`, `seed` is
            neither None nor an int, `weight_decay` is negative, or
            `input_shape` does not have 3 entries (and, from the blocks, if
            `sigma` or `dt` is negative).

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> model = keras_cd.models.cd_resnet(depth=20, sigma=0.0, input_shape=(8, 8, 3))
        >>> round(model.count_params() / 1e6, 2)  # He et al.'s ResNet-20
        0.27
        >>> probabilities = keras.ops.convert_to_numpy(model(np.zeros((2, 8, 8, 3))))
        >>> probabilities.shape, bool(np.allclose(probabilities.sum(axis=-1), 1.0))
        ((2, 10), True)
    """
    depth_fix = "Use depth=20 for ResNet-20."
    depth = _validation.integer(
        "depth", depth, depth_fix, minimum=8, expected="6n + 2 with n >= 1 (20, 32, 44, 56, 110)"
    )
    if (depth - 2) % 6:
        _validation.invalid("depth", "6n + 2 with n >= 1 (20, 32, 44, 56, 110)", depth, depth_fix)
    num_classes = _validation.integer(
        "num_classes", num_classes, "Use the number of classes, e.g. 10.", minimum=2
    )
    _validation.one_of("mode", mode, MODES, 'Use mode="additive" or mode="relative".')
    seed = _validation.optional_seed("seed", seed)
    weight_decay = _validation.non_negative_float(
        "weight_decay", weight_decay, "Use e.g. weight_decay=1e-4 (He et al.), or 0."
    )
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    if len(tuple(input_shape)) != 3:
        raise ValueError(
            "Invalid value for `input_shape`: expected (height, width, "
            f"channels). Received: input_shape={input_shape!r}. "
            "Use e.g. input_shape=(32, 32, 3)."
        )
    blocks_per_stage = (depth - 2) // 6
    inputs = keras.Input(tuple(input_shape), name="images")
    x = keras.layers.Conv2D(
        16,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
        name="stem",
    )(inputs)
    index = 0
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(blocks_per_stage):
            strides = 2 if stage > 0 and block == 0 else 1
            x = CDBlock(
                filters,
                strides=strides,
                dt=dt,
                sigma=sigma,
                mode=mode,
                seed=None if seed is None else seed + index,
                kernel_regularizer=regularizer,
                name=f"stage{stage + 1}_block{block + 1}",
            )(x)
            index += 1
    x = keras.layers.BatchNormalization(name="final_bn")(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    # Softmax in float32 also under mixed precision.
    outputs = keras.layers.Dense(
        num_classes,
        activation="softmax",
        dtype="float32",
        kernel_regularizer=regularizer,
        name="classifier",
    )(x)
    return keras.Model(inputs, outputs, name=name or f"cd_resnet{depth}")

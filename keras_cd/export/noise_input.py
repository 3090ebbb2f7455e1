"""Monte-Carlo inference with the diffusion noise as an explicit input.

One Monte-Carlo pass of a convection-diffusion network is one Euler-Maruyama
path of dX = v(X, t) dt + sigma dW; by Feynman-Kac the mean over paths
approximates the solution of u_t = v . grad u + (sigma^2 / 2) Laplacian u
(Wang, Bao & Shi, arXiv 2403.15726). ONNX and SavedModel graphs carry no
reliable random ops, so [`with_noise_input`][keras_cd.export.with_noise_input]
turns the network into one with the standard normal draws eps as an input, of
[`noise_width`][keras_cd.export.noise_width] columns; `NOISE_INPUT_NAME` is
that input's name.
"""

from __future__ import annotations

import keras

from keras_cd._noise import NoiseFeed, feed_noise
from keras_cd.export._common import example_inputs

# The name of the noise input of `with_noise_input`'s model.
NOISE_INPUT_NAME = "noise"


class _NoiseFedModel(keras.layers.Layer):
    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def call(self, inputs):
        *model_inputs, noise = inputs
        with feed_noise(NoiseFeed(noise)):
            return self.model(
                model_inputs[0] if len(model_inputs) == 1 else model_inputs, training=False
            )

    def compute_output_spec(self, inputs):
        *model_inputs, _ = inputs
        return self.model.compute_output_spec(
            model_inputs[0] if len(model_inputs) == 1 else model_inputs
        )


def noise_width(model: keras.Model) -> int:
    """Returns the number of columns of standard normal noise one Monte-Carlo pass uses.

    Every active diffusion layer takes as many columns as one sample of its
    input has entries, in call order. Found by one eager call of `model` on a
    batch of random inputs, which therefore needs static feature shapes.

    Args:
        model: a `keras.Model`.

    Returns:
        int, the width of the `noise` input of `with_noise_input(model)`; 0
        when no diffusion layer is active (every sigma is 0).

    Raises:
        ValueError: if a diffusion layer's input has an unknown feature
            dimension.

    Example:
        >>> import keras, keras_cd
        >>> inputs = keras.Input((4,))
        >>> hidden = keras_cd.layers.DiffusionNoise(1.0)(inputs)
        >>> model = keras.Model(inputs, keras_cd.layers.DiffusionNoise(0.5)(hidden))
        >>> keras_cd.export.noise_width(model)  # 4 columns per diffusion layer
        8
    """
    # An eager call: symbolic shape inference would skip the layers' call().
    inputs = example_inputs(model, batch_size=1)
    feed = NoiseFeed()
    with feed_noise(feed):
        model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    return feed.width


def with_noise_input(model: keras.Model) -> keras.Model:
    """Returns a model that takes `(inputs..., noise)` and runs one Monte-Carlo pass.

    `noise` has shape `(batch, noise_width(model))` and holds standard normal
    draws; each diffusion layer reads its eps from it in call order instead of
    drawing. BatchNormalization and Dropout run in inference mode. The result
    has no random ops, so it exports to ONNX and SavedModel, and averaging its
    outputs over fresh noise is Monte-Carlo (Feynman-Kac) inference.

    Args:
        model: a `keras.Model` with at least one active diffusion layer.

    Returns:
        A functional `keras.Model` with the inputs of `model` followed by
        `noise`, and the outputs of `model`, named
        `"{model.name}_monte_carlo"`.

    Raises:
        ValueError: if `model` has no active diffusion layer (every sigma is
            0), or a diffusion layer's input has an unknown feature
            dimension.

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> inputs = keras.Input((4,))
        >>> hidden = keras_cd.layers.DiffusionNoise(1.0)(inputs)
        >>> model = keras.Model(inputs, keras_cd.layers.DiffusionNoise(0.5)(hidden))
        >>> one_pass = keras_cd.export.with_noise_input(model)
        >>> x, noise = np.zeros((1, 4), "float32"), np.ones((1, 8), "float32")
        >>> keras.ops.convert_to_numpy(one_pass([x, noise])).tolist()  # x + 1.0 eps1 + 0.5 eps2
        [[1.5, 1.5, 1.5, 1.5]]
    """
    width = noise_width(model)
    if width == 0:
        raise ValueError(
            "Invalid model for Monte-Carlo export: it has no active diffusion "
            "layer (every sigma is 0). Export it with monte_carlo=False."
        )
    inputs = [keras.Input(t.shape[1:], dtype=t.dtype, name=t.name) for t in model.inputs]
    noise = keras.Input((width,), name=NOISE_INPUT_NAME)
    outputs = _NoiseFedModel(model, name="monte_carlo_pass")(inputs + [noise])
    return keras.Model(inputs + [noise], outputs, name=f"{model.name}_monte_carlo")

"""Monte-Carlo inference with the diffusion noise as an explicit input."""

import keras

from keras_cd._noise import NoiseFeed, feed_noise
from keras_cd.export._common import example_inputs

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


def noise_width(model):
    """Columns of standard normal noise one Monte-Carlo pass of `model` uses."""
    # An eager call: symbolic shape inference would skip the layers' call().
    inputs = example_inputs(model, batch_size=1)
    feed = NoiseFeed()
    with feed_noise(feed):
        model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    return feed.width


def with_noise_input(model):
    """Returns a model that takes `(inputs..., noise)` and runs one Monte-Carlo pass.

    `noise` has shape `(batch, noise_width(model))` and holds standard normal
    draws; each diffusion layer reads its eps from it in call order instead of
    drawing. BatchNormalization and Dropout run in inference mode. The result
    has no random ops, so it exports to ONNX and SavedModel, and averaging its
    outputs over fresh noise is Monte-Carlo (Feynman-Kac) inference.
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

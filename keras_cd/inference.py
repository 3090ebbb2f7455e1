"""The Monte-Carlo inference switch.

By default keras_cd networks are deterministic at inference: every diffusion
layer is the identity unless ``training=True``. Inside ``monte_carlo()`` the
diffusion noise stays on at inference, while BatchNormalization and Dropout
keep their inference behaviour (moving statistics, no dropout). Averaging the
outputs of such passes is the Feynman-Kac estimate of the solution of the
convection-diffusion equation that the network discretises.
"""

import contextlib

import numpy as np

from keras_cd import _validation
from keras_cd._sampling import mean_and_standard_error

# A plain module-level counter, not a thread-local: MirroredStrategy runs each
# replica's function in a thread of its own, and they must all see the switch.
_monte_carlo_depth = 0


def monte_carlo_enabled():
    """Returns True inside a `keras_cd.monte_carlo()` block."""
    return _monte_carlo_depth > 0


def _reset_compiled_functions(models):
    for model in models:
        if not hasattr(model, "make_predict_function"):
            raise ValueError(
                "Invalid value for `models`: expected Keras models. "
                f"Received: {model!r} (of type {type(model).__name__}). "
                "Pass the models whose `predict`/`evaluate` should see the "
                "switch, e.g. `keras_cd.monte_carlo(model)`."
            )
        # Compiled predict/test functions are traced with the switch as it
        # was at trace time; dropping them makes Keras trace them again.
        model.predict_function = None
        model.test_function = None


@contextlib.contextmanager
def monte_carlo(*models):
    """Keeps diffusion noise on at inference (Monte-Carlo / Feynman-Kac mode).

    Inside the block every keras_cd diffusion layer draws fresh noise on each
    call, also with `training=False`, while BatchNormalization uses its moving
    statistics and Dropout stays off. On leaving the block inference is
    deterministic and noise-free again.

    Eager calls (`model(x)`) see the switch directly. `model.predict` and
    `model.evaluate` run a function that Keras traced once; pass those models
    to the context manager so that their compiled functions are traced again
    on entry and on exit. A `tf.function` or `jax.jit` of your own is traced
    with the switch as it was at its first call.

    Args:
        *models: Keras models whose compiled `predict`/`evaluate` functions
            should follow the switch. Optional.

    Example:

    >>> import numpy as np, keras, keras_cd
    >>> block = keras_cd.DenseCDBlock(4, sigma=1.0, seed=0)
    >>> x = np.ones((2, 4), "float32")
    >>> bool(np.all(block(x) == block(x)))  # deterministic by default
    True
    >>> with keras_cd.monte_carlo():
    ...     bool(np.any(block(x) != block(x)))  # fresh noise per call
    True
    """
    global _monte_carlo_depth
    _reset_compiled_functions(models)
    _monte_carlo_depth += 1
    try:
        yield
    finally:
        _monte_carlo_depth -= 1
        _reset_compiled_functions(models)


def feynman_kac_predict(model, x, num_samples, batch_size=1024):
    """Feynman-Kac inference: the mean output of a CD network over its own noise.

    Runs `num_samples` Monte-Carlo passes of `model` on every row of `x`
    inside `monte_carlo(model)` (diffusion noise on; BatchNormalization and
    Dropout in inference mode), vectorised as batches of repeated rows, and
    returns `(mean, standard_error)`, each shaped like `model(x)`. By
    Feynman-Kac the mean approximates u(x, T), the solution of the
    convection-diffusion equation the network discretises; the standard
    error of that estimate falls like 1 / sqrt(num_samples).

    Example:

    >>> import numpy as np, keras, keras_cd
    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras_cd.DiffusionNoise(2.0, seed=0)(inputs))
    >>> mean, error = keras_cd.inference.feynman_kac_predict(model, np.ones((1, 3)), 10000)
    >>> bool(np.all(np.abs(mean - 1.0) < 5 * error)), bool(np.all(np.abs(error - 0.02) < 0.002))
    (True, True)
    """
    num_samples = _validation.integer("num_samples", num_samples, "Use e.g. num_samples=100.",
                                      minimum=2)
    batch_size = _validation.positive_int("batch_size", batch_size, "Use e.g. batch_size=1024.")
    x = np.asarray(x, dtype=model.inputs[0].dtype)
    with monte_carlo(model):
        return mean_and_standard_error(model.predict_on_batch, x, num_samples, batch_size)


class NoiseFeed:
    """Hands out slices of one explicit noise tensor to the diffusion layers.

    Used to export Monte-Carlo inference: ONNX and SavedModel graphs stay
    free of random ops, and the server passes standard normal noise of shape
    `(batch, width)` as an input. Each `DiffusionNoise` call takes the next
    `prod(shape[1:])` columns, in call order. With `noise=None` it only counts
    the width needed.
    """

    def __init__(self, noise=None):
        self.noise = noise
        self.width = 0

    def take(self, shape, dtype):
        from keras import ops

        if any(size is None for size in shape[1:]):
            raise ValueError(
                "Invalid model for an explicit noise input: every diffusion "
                "layer needs a static feature shape. Received: a noise shape "
                f"{tuple(shape)}. Build the model with fixed input sizes, "
                "e.g. keras.Input((32, 32, 3))."
            )
        size = 1
        for dim in shape[1:]:
            size *= int(dim)
        start, self.width = self.width, self.width + size
        if self.noise is None:  # counting pass
            return None
        chunk = self.noise[:, start:self.width]
        return ops.cast(ops.reshape(chunk, (-1,) + tuple(int(d) for d in shape[1:])), dtype)


_noise_feed = None


def current_noise_feed():
    """The active `NoiseFeed`, or None."""
    return _noise_feed


@contextlib.contextmanager
def feed_noise(feed):
    """Makes every diffusion layer read its noise from `feed` (a NoiseFeed)."""
    global _noise_feed
    previous, _noise_feed = _noise_feed, feed
    try:
        yield feed
    finally:
        _noise_feed = previous

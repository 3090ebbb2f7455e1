"""The Monte-Carlo inference switch and Feynman-Kac inference.

By default keras_cd networks are deterministic at inference: every diffusion
layer is the identity unless `training=True`. Inside
[`monte_carlo()`][keras_cd.inference.monte_carlo] the diffusion noise stays
on at inference, while BatchNormalization and Dropout keep their inference
behavior (moving statistics, no dropout). A network of K convection-diffusion
steps of size dt = T / K is the Euler-Maruyama scheme for
dX = v(X, t) dt + sigma dW, and by Feynman-Kac the mean of its output g(X_T)
over the noise approximates u(x, T), the solution of the
convection-diffusion equation

    u_t = v . grad u + (sigma^2 / 2) Laplacian u,   u(., 0) = g,

of Wang, Bao & Shi (arXiv 2403.15726).
[`feynman_kac_predict`][keras_cd.inference.feynman_kac_predict] and
[`feynman_kac_model`][keras_cd.inference.feynman_kac_model] compute that mean.
"""

from __future__ import annotations

# First: a missing backend package gets an error that says how to fix it.
from keras_cd import _keras  # noqa: F401

# isort: split
import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from keras_cd import _noise, _validation
from keras_cd._sampling import mean_and_standard_error


def monte_carlo_enabled() -> bool:
    """Returns whether a `keras_cd.monte_carlo()` block is active.

    Returns:
        bool, True inside a `keras_cd.monte_carlo()` block (in any thread),
        False outside.

    Example:
        >>> import keras_cd
        >>> keras_cd.inference.monte_carlo_enabled()
        False
        >>> with keras_cd.monte_carlo():
        ...     keras_cd.inference.monte_carlo_enabled()
        True
    """
    return _noise.monte_carlo_enabled()


@contextlib.contextmanager
def monte_carlo(*models: keras.layers.Layer) -> Iterator[None]:
    """Keeps diffusion noise on at inference (Monte-Carlo / Feynman-Kac mode).

    Inside the block every keras_cd diffusion layer draws fresh noise on each
    call, also with `training=False`, while BatchNormalization uses its moving
    statistics and Dropout stays off. On leaving the block inference is
    deterministic and noise-free again.

    The switch is layer state read when a function runs, not when it is
    traced: `model(x)`, `model.predict`, `model.evaluate` and a `tf.function`
    of your own follow it without being traced again, before, inside and
    after the block. Under `jax.jit` of your own, pass the model's state in,
    as Keras does: `model.stateless_call(trainable_variables,
    non_trainable_variables, x)` inside the jitted function (a stateful
    `model(x)` inside `jax.jit` freezes the switch's value at trace time, as
    it does every variable's).

    Blocks nest; the noise stays on until the outermost one is left. The
    switch is process-wide: it holds in every thread (the replicas of a
    `tf.distribute.MirroredStrategy` included).

    Args:
        *models: optional Keras layers or models, accepted for compatibility;
            every diffusion layer follows the switch whether its model is
            passed or not.

    Yields:
        None.

    Raises:
        ValueError: if one of `models` is not a Keras layer or model.

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> block = keras_cd.layers.DenseCDBlock(4, sigma=1.0, seed=0)
        >>> x = np.ones((2, 4), "float32")
        >>> read = keras.ops.convert_to_numpy  # a NumPy array on every backend
        >>> bool(np.all(read(block(x)) == read(block(x))))  # deterministic by default
        True
        >>> with keras_cd.monte_carlo():
        ...     bool(np.any(read(block(x)) != read(block(x))))  # fresh noise per call
        True
    """
    for model in models:
        if not isinstance(model, keras.layers.Layer):
            raise ValueError(
                "Invalid value for `models`: expected Keras models. "
                f"Received: {model!r} (of type {type(model).__name__}). "
                "Call `keras_cd.monte_carlo()` (models are optional)."
            )
    with _noise.monte_carlo():
        yield


def feynman_kac_predict(
    model: keras.Model, x: Any, num_samples: int, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Feynman-Kac inference: the mean output of a CD network over its own noise.

    Runs `num_samples` Monte-Carlo passes of `model` on every row of `x`
    inside `monte_carlo(model)` (diffusion noise on; BatchNormalization and
    Dropout in inference mode), vectorized as batches of repeated rows. By
    Feynman-Kac the mean approximates u(x, T), the solution of the
    convection-diffusion equation the network discretizes; the standard
    error of that estimate falls like 1 / sqrt(num_samples). Memory stays
    bounded by one batch whatever `num_samples` is.

    Args:
        model: a Keras model with one input.
        x: array or tensor, a batch of inputs `(m, ...)`.
        num_samples: int >= 2, Monte-Carlo passes per input.
        batch_size: int >= 1, rows (copies of inputs) per forward pass.
            Defaults to `1024`.

    Returns:
        `(mean, standard_error)`: two float64 NumPy arrays, each shaped like
        `model(x)`; the standard error is the sample standard deviation
        over sqrt(num_samples).

    Raises:
        ValueError: if `num_samples` is not an int >= 2 or `batch_size` is
            not an int >= 1.

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> inputs = keras.Input((3,))
        >>> model = keras.Model(inputs, keras_cd.layers.DiffusionNoise(2.0, seed=0)(inputs))
        >>> mean, error = keras_cd.inference.feynman_kac_predict(model, np.ones((1, 3)), 400)
        >>> np.round(error, 1).tolist()  # sigma / sqrt(num_samples) = 2 / 20
        [[0.1, 0.1, 0.1]]
        >>> bool(np.all(np.abs(mean - 1.0) < 5 * error))  # E[x + sigma * eps] = x
        True
    """
    num_samples = _validation.integer(
        "num_samples", num_samples, "Use e.g. num_samples=100.", minimum=2
    )
    batch_size = _validation.positive_int("batch_size", batch_size, "Use e.g. batch_size=1024.")
    x = np.asarray(keras.ops.convert_to_numpy(x), dtype=model.inputs[0].dtype)
    with monte_carlo(model):
        return mean_and_standard_error(model.predict_on_batch, x, num_samples, batch_size)


def feynman_kac_model(model: keras.Model, num_samples: int) -> keras.Model:
    """A model whose output is the mean of `num_samples` passes of `model`.

    Inside `keras_cd.monte_carlo()` each pass draws its own diffusion noise,
    so the output is the Feynman-Kac estimate of u(x, T) in one call (and
    one compiled function): `evaluate` it with labels to score Monte-Carlo
    inference, which keeps every prediction next to its own label whatever
    order a distribution strategy gives the data. Outside the block every
    pass is the same deterministic one. Build it (and `compile` it) under
    the strategy scope of `model`, if any.

    Args:
        model: a Keras model with one input.
        num_samples: int >= 1, passes averaged per call.

    Returns:
        A functional `keras.Model` with the input and output shapes of
        `model`, named `"{model.name}_feynman_kac_{num_samples}"`.

    Raises:
        ValueError: if `num_samples` is not an int >= 1, or `model` is not a
            `keras.Model` with one input.

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> inputs = keras.Input((400,))
        >>> model = keras.Model(inputs, keras_cd.layers.DiffusionNoise(1.0, seed=0)(inputs))
        >>> averaged = keras_cd.inference.feynman_kac_model(model, 4)
        >>> x = np.zeros((1, 400), "float32")
        >>> bool(np.all(keras.ops.convert_to_numpy(averaged(x)) == 0))  # outside: no noise
        True
        >>> with keras_cd.monte_carlo():
        ...     mean = keras.ops.convert_to_numpy(averaged(x))
        >>> round(float(mean.std()), 1)  # the mean of 4 passes: std 1 / sqrt(4)
        0.5
    """
    num_samples = _validation.positive_int("num_samples", num_samples, "Use e.g. 16.")
    if not isinstance(model, keras.Model) or len(model.inputs) != 1:
        raise ValueError(
            "Invalid value for `model`: expected a keras.Model with one input. Received: "
            f"{model!r}. Wrap a multi-input model in a single-input one first."
        )
    inputs = keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype)
    passes = [model(inputs, training=False) for _ in range(num_samples)]
    outputs = passes[0] if num_samples == 1 else keras.layers.Average()(passes)
    return keras.Model(inputs, outputs, name=f"{model.name}_feynman_kac_{num_samples}")

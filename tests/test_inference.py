import keras
import numpy as np
import pytest

import keras_cd
from keras_cd.inference import feynman_kac_predict


def test_feynman_kac_mean_and_standard_error_of_a_quadratic_readout():
    # u = E[(x + sigma * eps)^2] = x^2 + sigma^2, per feature.
    inputs = keras.Input((2,))
    noisy = keras_cd.DiffusionNoise(1.5, dt=0.5, seed=0)(inputs)
    model = keras.Model(inputs, keras.ops.square(noisy))
    x = np.array([[0.0, 1.0], [2.0, -1.0]], "float32")
    mean, error = feynman_kac_predict(model, x, 50_000, batch_size=8192)
    exact = x.astype("float64") ** 2 + 1.5**2 * 0.5
    np.testing.assert_array_less(np.abs(mean - exact), 4.5 * error)
    # Var[(x + s e)^2] = 4 x^2 s^2 + 2 s^4 with s^2 = 1.125
    np.testing.assert_allclose(error, np.sqrt((4 * x**2 * 1.125 + 2 * 1.125**2) / 50_000), rtol=0.05)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x**2)  # deterministic afterwards


def test_feynman_kac_uses_moving_statistics_while_the_noise_is_on():
    # noise -> BatchNormalization with known moving statistics: the expectation is
    # gamma (x - mu) / sqrt(var + eps) + beta, and the standard error
    # gamma s / sqrt(var + eps) / sqrt(n). With batch statistics (training mode) the
    # repeated rows of one input would normalise to ~0 instead.
    s = 0.8
    inputs = keras.Input((2,))
    norm = keras.layers.BatchNormalization(epsilon=1e-3)
    model = keras.Model(inputs, norm(keras_cd.DiffusionNoise(s, seed=2)(inputs)))
    gamma, beta, mu, var = (np.array(v, "float32") for v in ([2.0, 0.5], [0.1, -1.0], [1.0, -3.0], [4.0, 0.25]))
    norm.set_weights([gamma, beta, mu, var])
    x = np.array([[3.0, -2.0], [0.0, 1.0]], "float32")
    n = 20_000
    mean, error = feynman_kac_predict(model, x, n, batch_size=4096)
    scale = gamma / np.sqrt(var + 1e-3)
    np.testing.assert_array_less(np.abs(mean - (scale * (x - mu) + beta)), 4.5 * error)
    np.testing.assert_allclose(error, np.broadcast_to(scale * s / np.sqrt(n), x.shape), rtol=0.05)
    assert np.all(np.abs(mean - beta) > 0.5)  # not the batch-statistics answer (~beta)


def test_error_shrinks_like_one_over_sqrt_n():
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras_cd.DiffusionNoise(1.0, seed=1)(inputs))
    sizes = np.array([100, 400, 1600, 6400])
    errors = [float(feynman_kac_predict(model, np.zeros((1, 1)), int(n))[1][0, 0]) for n in sizes]
    assert -0.6 < np.polyfit(np.log(sizes), np.log(errors), 1)[0] < -0.4


@pytest.mark.parametrize("kwargs, name", [({"num_samples": 1}, "num_samples"),
                                          ({"num_samples": 10, "batch_size": 0}, "batch_size")])
def test_bad_arguments(kwargs, name):
    inputs = keras.Input((1,))
    model = keras.Model(inputs, inputs)
    with pytest.raises(ValueError, match=f"Invalid value for `{name}`"):
        feynman_kac_predict(model, np.zeros((1, 1)), **kwargs)

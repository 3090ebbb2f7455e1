import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

import keras_cd
from keras_cd.inference import feynman_kac_predict
from tests.on_backend import run_on_backend


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
    np.testing.assert_allclose(
        error, np.sqrt((4 * x**2 * 1.125 + 2 * 1.125**2) / 50_000), rtol=0.05
    )
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
    gamma, beta, mu, var = (
        np.array(v, "float32") for v in ([2.0, 0.5], [0.1, -1.0], [1.0, -3.0], [4.0, 0.25])
    )
    norm.set_weights([gamma, beta, mu, var])
    x = np.array([[3.0, -2.0], [0.0, 1.0]], "float32")
    n = 20_000
    mean, error = feynman_kac_predict(model, x, n, batch_size=4096)
    scale = gamma / np.sqrt(var + 1e-3)
    np.testing.assert_array_less(np.abs(mean - (scale * (x - mu) + beta)), 4.5 * error)
    np.testing.assert_allclose(error, np.broadcast_to(scale * s / np.sqrt(n), x.shape), rtol=0.05)
    assert np.all(np.abs(mean - beta) > 0.5)  # not the batch-statistics answer (~beta)


def test_inputs_may_be_backend_tensors_that_carry_gradients():
    # Another layer's output: on PyTorch a tensor that requires grad, which NumPy refuses.
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras_cd.DiffusionNoise(1.0, seed=0)(inputs))
    x = keras.layers.Dense(2)(np.ones((3, 2), "float32"))
    mean, error = feynman_kac_predict(model, x, 400)
    np.testing.assert_array_less(np.abs(mean - convert_to_numpy(x)), 4.5 * error)


def test_error_shrinks_like_one_over_sqrt_n():
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras_cd.DiffusionNoise(1.0, seed=1)(inputs))
    sizes = np.array([100, 400, 1600, 6400])
    errors = [float(feynman_kac_predict(model, np.zeros((1, 1)), int(n))[1][0, 0]) for n in sizes]
    assert -0.6 < np.polyfit(np.log(sizes), np.log(errors), 1)[0] < -0.4


@pytest.mark.parametrize(
    "kwargs, name",
    [({"num_samples": 1}, "num_samples"), ({"num_samples": 10, "batch_size": 0}, "batch_size")],
)
def test_bad_arguments(kwargs, name):
    inputs = keras.Input((1,))
    model = keras.Model(inputs, inputs)
    with pytest.raises(ValueError, match=f"Invalid value for `{name}`"):
        feynman_kac_predict(model, np.zeros((1, 1)), **kwargs)


def spread(model, x, calls=2):
    outputs = [np.asarray(model.predict(x, verbose=0)) for _ in range(calls)]
    return max(np.abs(a - outputs[0]).max() for a in outputs[1:]), outputs[0]


def test_compiled_predict_follows_the_switch_without_being_traced_again():
    model = keras_cd.models.cd_resnet(depth=8, sigma=0.2, input_shape=(8, 8, 1))
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
    plain_spread, plain = spread(model, x)  # traced here, with the switch off
    compiled = model.predict_function
    with keras_cd.monte_carlo():
        noisy_spread, noisy = spread(model, x)
    after_spread, after = spread(model, x)
    assert plain_spread == 0 and after_spread == 0
    assert noisy_spread > 1e-3 and np.abs(noisy - plain).max() > 1e-3
    np.testing.assert_array_equal(after, plain)
    assert model.predict_function is compiled  # the same compiled function throughout


# TensorFlow only: a user's own tf.function (on JAX, jax.jit: JAX_SCRIPT below).
@pytest.mark.tensorflow
def test_a_users_tf_function_follows_the_switch():
    import tensorflow as tf

    block = keras_cd.DenseCDBlock(4, sigma=1.0, seed=0)
    x = np.ones((3, 4), "float32")
    block(x)  # built outside, so that tracing creates no variables
    step = tf.function(lambda v: block(v), jit_compile=True)
    plain = np.asarray(step(x))
    with keras_cd.monte_carlo():
        first, second = np.asarray(step(x)), np.asarray(step(x))
    assert np.abs(first - plain).max() > 1e-3 and np.abs(first - second).max() > 1e-3
    np.testing.assert_array_equal(np.asarray(step(x)), plain)
    assert step.experimental_get_tracing_count() == 1


def test_the_switch_is_state_not_a_weight(tmp_path):
    model = keras_cd.models.cd_resnet(depth=8, sigma=0.2, input_shape=(8, 8, 1))
    switches = [v for v in model.non_trainable_variables if "monte_carlo_switch" in v.path]
    assert len(switches) == 3  # one per CDBlock
    assert not any(any(w is s for s in switches) for w in model.weights)
    with keras_cd.monte_carlo():
        model.save(tmp_path / "m.keras")  # saved inside the block ...
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.zeros((2, 8, 8, 1), "float32")
    # ... loads deterministic
    np.testing.assert_array_equal(convert_to_numpy(loaded(x)), convert_to_numpy(loaded(x)))


JAX_SCRIPT = """
import numpy as np, keras, keras_cd, jax
assert keras.backend.backend() == "jax"
model = keras_cd.models.cd_resnet(depth=8, sigma=0.2, input_shape=(8, 8, 1))
x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
plain = model.predict(x, verbose=0)
assert np.array_equal(plain, model.predict(x, verbose=0))
with keras_cd.monte_carlo():
    first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
assert np.abs(first - second).max() > 1e-3, "Monte-Carlo predict after a plain predict is noisy"
assert np.array_equal(model.predict(x, verbose=0), plain), "plain predict afterwards is not"
mean, error = keras_cd.inference.feynman_kac_predict(model, x, 8)
assert np.all(error > 0)
step = jax.jit(lambda t, n, v: model.stateless_call(t, n, v)[0])
state = lambda: ([v.value for v in model.trainable_variables],
                 [v.value for v in model.non_trainable_variables])
assert np.array_equal(np.asarray(step(*state(), x)), plain)
with keras_cd.monte_carlo():
    assert np.abs(np.asarray(step(*state(), x)) - plain).max() > 1e-3
print("jax ok")
"""


@pytest.mark.slow  # end to end (a fresh process or a whole search): make test-slow
def test_monte_carlo_switch_on_the_jax_backend():
    run_on_backend(JAX_SCRIPT, "jax ok")

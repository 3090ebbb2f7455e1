"""The fast Gaussian sampler behind DiffusionNoise (Box-Muller, vectorised).

The sampler's statistics run on every backend (its uniforms are
`keras.random.uniform` off TensorFlow); the tests of TensorFlow's own paths
(a tf.function with a dynamic batch, Philox under XLA, the integer-hash
uniforms of the dropout masks) are marked `tensorflow`."""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy
from scipy import stats

from keras_cd._random import gaussian_like


@pytest.mark.parametrize(
    "shape",
    [(200, 50, 16), (200, 50, 15), (100_001,), (7, 3, 3, 9)],
    ids=["pairs-on-last-axis", "odd-last-axis", "odd-flat", "small-odd"],
)
def test_samples_are_standard_normal_with_the_input_shape(shape):
    noise = convert_to_numpy(
        gaussian_like(np.zeros(shape, "float32"), 1.0, keras.random.SeedGenerator(4))
    )
    assert noise.shape == shape and noise.dtype == np.float32
    values = noise.ravel().astype("float64")
    n = values.size
    assert abs(values.mean()) < 5 / np.sqrt(n)
    assert abs(values.std() - 1) < 5 / np.sqrt(2 * n)
    if n >= 10_000:
        assert stats.kstest(values[:100_000], "norm").pvalue > 1e-3
        # Kurtosis 3 and the tails of a Gaussian, not just two moments.
        assert abs(np.mean(values**4) - 3) < 0.1
        assert np.mean(np.abs(values) > 3) == pytest.approx(2 * stats.norm.sf(3), rel=0.2)


def test_the_two_members_of_each_pair_are_independent():
    # z1 = r cos(theta) and z2 = r sin(theta) share r: with a wrong radius
    # law they would be uncorrelated but dependent (corr of squares != 0).
    noise = convert_to_numpy(
        gaussian_like(np.zeros((100_000, 2), "float32"), 1.0, keras.random.SeedGenerator(1))
    ).astype("float64")
    first, second = noise[:, 0], noise[:, 1]
    limit = 5 / np.sqrt(len(noise))
    assert abs(np.corrcoef(first, second)[0, 1]) < limit
    assert abs(np.corrcoef(first**2, second**2)[0, 1]) < limit
    assert stats.kstest(first**2 + second**2, "chi2", args=(2,)).pvalue > 1e-3


def test_stddev_scales_and_seed_reproduces():
    x = np.zeros((500, 40), "float32")
    a = convert_to_numpy(gaussian_like(x, 3.0, keras.random.SeedGenerator(9)))
    b = convert_to_numpy(gaussian_like(x, 3.0, keras.random.SeedGenerator(9)))
    c = convert_to_numpy(gaussian_like(x, 3.0, keras.random.SeedGenerator(10)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.std() == pytest.approx(3.0, rel=0.02)


@pytest.mark.tensorflow  # a tf.function traced once for every batch size
@pytest.mark.parametrize("channels", [8, 5])
def test_dynamic_batch_inside_a_graph(channels):
    import tensorflow as tf

    generator = keras.random.SeedGenerator(2)

    @tf.function(input_signature=[tf.TensorSpec((None, channels), "float32")])
    def draw(x):
        return gaussian_like(x, 1.0, generator)

    for batch in (1, 3, 2000):
        noise = draw(tf.zeros((batch, channels))).numpy()
        assert noise.shape == (batch, channels)
    assert noise.std() == pytest.approx(1.0, rel=0.05)


@pytest.mark.tensorflow  # TensorFlow's stateless Philox under tf.function(jit_compile=True)
def test_uniform_under_xla_is_uniform_and_seeded():
    # keras_cd asks for Philox explicitly: Keras' default ("auto_select") is
    # a much slower algorithm under XLA on CPU (see keras_cd._random.uniform).
    import tensorflow as tf

    from keras_cd._random import uniform

    draws = []
    for seed in (5, 5, 6):
        generator = keras.random.SeedGenerator(seed)
        draws.append(
            tf.function(lambda g=generator: uniform((1000, 7), g), jit_compile=True)().numpy()
        )
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.allclose(draws[0], draws[2])
    assert 0 <= draws[0].min() and draws[0].max() < 1
    assert stats.kstest(draws[0].ravel(), "uniform").pvalue > 1e-3


@pytest.mark.tensorflow  # hash_uniform's tf.bitwise hash (keras.random.uniform elsewhere)
def test_hash_uniforms_are_uniform_independent_and_seeded():
    import tensorflow as tf

    from keras_cd._random import hash_uniform

    draw = tf.function(lambda seed: hash_uniform((200, 500), seed), jit_compile=True)
    u = np.asarray(draw(tf.constant([3, 7], "int64")))
    assert u.shape == (200, 500) and u.min() >= 0 and u.max() < 1
    assert stats.kstest(u.ravel(), "uniform").pvalue > 1e-3
    flat = u.ravel()
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.01  # neighbours independent
    np.testing.assert_array_equal(u, np.asarray(draw(tf.constant([3, 7], "int64"))))
    for other in ([3, 8], [4, 7]):  # either seed word changes the whole draw
        v = np.asarray(draw(tf.constant(other, "int64")))
        assert abs(np.corrcoef(flat, v.ravel())[0, 1]) < 0.01
    keep = (u >= 0.7).mean()  # a dropout rate of 0.7 keeps 30%
    assert keep == pytest.approx(0.3, abs=0.005)

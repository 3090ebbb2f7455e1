import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy
from scipy import stats

import keras_cd
from keras_cd.layers import DiffusionNoise
from tests.layer_contract import check_layer_contract


@pytest.mark.parametrize("mode", ["additive", "relative"])
def test_layer_contract(mode, tmp_path):
    check_layer_contract(
        DiffusionNoise,
        {"sigma": 0.3, "dt": 0.5, "mode": mode, "seed": 3},
        (8, 5, 4),
        tmp_path,
    )


@pytest.mark.parametrize("sigma, dt", [(0.1, 1.0), (2.0, 0.25), (5.0, 0.01), (3.0, 4.0)])
def test_noise_is_gaussian_with_mean_zero_and_std_sigma_sqrt_dt(sigma, dt):
    layer = DiffusionNoise(sigma, dt=dt, seed=11)
    x = np.zeros((1000, 500), "float32")
    noise = convert_to_numpy(layer(x, training=True)).astype("float64").ravel()
    expected_std = sigma * np.sqrt(dt)
    n = noise.size
    assert abs(noise.mean()) < 5 * expected_std / np.sqrt(n)
    # The sample std has standard error std / sqrt(2n).
    assert abs(noise.std() - expected_std) < 5 * expected_std / np.sqrt(2 * n)
    assert layer.noise_stddev == pytest.approx(expected_std)
    # Gaussian, not merely the right two moments.
    assert stats.kstest(noise[:100_000] / expected_std, "norm").pvalue > 1e-3


def test_sigma_above_one_is_accepted():
    # keras.layers.GaussianNoise rejects stddev > 1; diffusion must not.
    noise = convert_to_numpy(
        DiffusionNoise(25.0, seed=0)(np.zeros((400, 250), "float32"), training=True)
    )
    assert noise.std() == pytest.approx(25.0, rel=0.01)


def test_relative_mode_scales_each_sample_by_its_own_std(rng):
    scales = np.array([1.0, 10.0, 0.1], "float32")
    x = (rng.normal(size=(3, 200_000)) * scales[:, None]).astype("float32")
    layer = DiffusionNoise(0.5, dt=0.36, mode="relative", seed=5)
    noise = convert_to_numpy(layer(x, training=True)).astype("float64") - x
    per_sample = noise.std(axis=1) / x.std(axis=1)
    np.testing.assert_allclose(per_sample, 0.5 * 0.6, rtol=0.01)


def test_relative_mode_uses_all_feature_axes(rng):
    x = np.stack([rng.normal(size=(100, 100, 3)), 7 * rng.normal(size=(100, 100, 3))]).astype(
        "float32"
    )
    noise = convert_to_numpy(DiffusionNoise(1.0, mode="relative", seed=2)(x, training=True)) - x
    np.testing.assert_allclose(
        noise.reshape(2, -1).std(axis=1) / x.reshape(2, -1).std(axis=1), 1.0, rtol=0.02
    )


def test_inference_is_noise_free_by_default(rng):
    layer = DiffusionNoise(3.0, seed=1)
    x = rng.normal(size=(16, 8)).astype("float32")
    np.testing.assert_array_equal(convert_to_numpy(layer(x)), x)
    np.testing.assert_array_equal(convert_to_numpy(layer(x, training=False)), x)


def test_sigma_zero_is_the_identity_in_training(rng):
    x = rng.normal(size=(16, 8)).astype("float32")
    np.testing.assert_array_equal(convert_to_numpy(DiffusionNoise(0.0)(x, training=True)), x)
    np.testing.assert_array_equal(
        convert_to_numpy(DiffusionNoise(1.0, dt=0.0)(x, training=True)), x
    )


def test_fresh_noise_each_call_and_reproducible_from_seed():
    x = np.zeros((40, 1000), "float32")
    first, second = DiffusionNoise(1.0, seed=42), DiffusionNoise(1.0, seed=42)
    a1, a2 = convert_to_numpy(first(x, training=True)), convert_to_numpy(first(x, training=True))
    b1 = convert_to_numpy(second(x, training=True))
    assert not np.allclose(a1, a2)
    np.testing.assert_array_equal(a1, b1)
    other = convert_to_numpy(DiffusionNoise(1.0, seed=43)(x, training=True))
    # Independent streams: |corr| within 5 standard errors of 0.
    assert abs(np.corrcoef(a1.ravel(), other.ravel())[0, 1]) < 5 / np.sqrt(x.size)


def test_monte_carlo_switch_turns_noise_on_at_inference_only_inside():
    layer = DiffusionNoise(1.0, seed=7)
    x = np.zeros((64, 64), "float32")
    with keras_cd.monte_carlo():
        with keras_cd.monte_carlo():  # nesting keeps it on
            nested = convert_to_numpy(layer(x))
        inside = convert_to_numpy(layer(x, training=False))
    after = convert_to_numpy(layer(x))
    assert nested.std() == pytest.approx(1.0, rel=0.05)
    assert inside.std() == pytest.approx(1.0, rel=0.05)
    assert not np.allclose(nested, inside)
    np.testing.assert_array_equal(after, x)


def test_monte_carlo_switch_reaches_compiled_predict():
    inputs = keras.Input((32,))
    model = keras.Model(inputs, DiffusionNoise(1.0, seed=3)(inputs))
    x = np.zeros((128, 32), "float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)  # traced noise-free
    with keras_cd.monte_carlo(model):
        noisy = model.predict(x, verbose=0)
    assert noisy.std() == pytest.approx(1.0, rel=0.05)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)


def test_monte_carlo_keeps_dropout_in_inference_mode():
    inputs = keras.Input((100,))
    dropped = keras.layers.Dropout(0.5)(inputs)
    model = keras.Model(inputs, DiffusionNoise(1.0, seed=0)(dropped))
    x = np.full((200, 100), 100.0, "float32")
    with keras_cd.monte_carlo():
        out = convert_to_numpy(model(x))
    # Dropout on would zero half the entries (or scale them to 200).
    assert (out - x).std() == pytest.approx(1.0, rel=0.05)


def test_monte_carlo_rejects_non_models():
    with pytest.raises(ValueError, match="Invalid value for `models`"):
        with keras_cd.monte_carlo("model"):
            pass


def test_mixed_float16_noise_statistics():
    layer = DiffusionNoise(2.0, dt=0.25, mode="relative", seed=0, dtype="mixed_float16")
    x = (300.0 * np.random.default_rng(0).normal(size=(4, 50_000))).astype("float32")
    rounded = x.astype("float16").astype("float32")
    noise = convert_to_numpy(layer(x, training=True)).astype("float32") - rounded
    np.testing.assert_allclose(noise.std(axis=1) / x.std(axis=1), 1.0, rtol=0.03)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"sigma": -0.1}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"sigma": float("inf")}, "sigma"),
        ({"sigma": "0.1"}, "sigma"),
        ({"sigma": 0.1, "dt": -1.0}, "dt"),
        ({"sigma": 0.1, "dt": float("nan")}, "dt"),
        ({"sigma": 0.1, "mode": "multiplicative"}, "mode"),
        ({"sigma": 0.1, "seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments_name_the_argument_the_value_and_the_fix(kwargs, argument):
    with pytest.raises(ValueError) as info:
        DiffusionNoise(**kwargs)
    message = str(info.value)
    assert f"Invalid value for `{argument}`" in message
    assert f"Received: {argument}=" in message
    assert "Use" in message or "Pass" in message


def test_relative_mode_rejects_rank_one_input():
    with pytest.raises(ValueError, match=r"rank >= 2.*Received: input_shape=\(5,\)"):
        DiffusionNoise(0.1, mode="relative")(np.zeros((5,), "float32"))

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

import keras_cd
from keras_cd import CDBlock
from tests.layer_contract import check_layer_contract


def conv2d_same(x, kernel, strides):
    """Reference NHWC convolution with TensorFlow's "same" padding."""
    kh, kw, _, _ = kernel.shape
    _, height, width, _ = x.shape
    out_h, out_w = -(-height // strides), -(-width // strides)
    pad_h = max((out_h - 1) * strides + kh - height, 0)
    pad_w = max((out_w - 1) * strides + kw - width, 0)
    x = np.pad(
        x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
    )
    out = np.zeros(x.shape[:1] + (out_h, out_w, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + strides * out_h : strides, j : j + strides * out_w : strides, :]
            out += patch @ kernel[i, j]
    return out


def float64(variable):
    return convert_to_numpy(variable).astype("float64")


def batch_norm(x, bn):
    gamma, beta, mean, var = (float64(w) for w in bn.weights)
    return gamma * (x - mean) / np.sqrt(var + bn.epsilon) + beta


def randomize_batch_norm(block, rng):
    for bn in (block.bn1, block.bn2):
        for weight, low, high in zip(bn.weights, (0.5, -0.5, -0.5, 0.5), (1.5, 0.5, 0.5, 2.0)):
            weight.assign(rng.uniform(low, high, size=weight.shape).astype("float32"))


def residual_by_hand(block, x, dt):
    relu = lambda v: np.maximum(v, 0)
    pre = relu(batch_norm(x, block.bn1))
    shortcut = (
        x
        if block.projection is None
        else conv2d_same(pre, float64(block.projection.kernel), block.strides)
    )
    h = conv2d_same(pre, float64(block.conv1.kernel), block.strides)
    h = conv2d_same(relu(batch_norm(h, block.bn2)), float64(block.conv2.kernel), 1)
    return shortcut + dt * h


@pytest.mark.parametrize("filters, strides", [(6, 1), (8, 2), (12, 1)])
def test_layer_contract(filters, strides, tmp_path):
    check_layer_contract(
        CDBlock,
        {"filters": filters, "strides": strides, "dt": 0.5, "sigma": 0.2, "seed": 1},
        (4, 6, 6, 6),
        tmp_path,
    )


@pytest.mark.parametrize("filters, strides, dt", [(4, 1, 1.0), (8, 2, 0.3), (6, 1, 0.5)])
def test_sigma_zero_block_equals_the_residual_computed_by_hand(filters, strides, dt, rng):
    x = rng.normal(size=(3, 7, 8, 4)).astype("float32")
    block = CDBlock(filters, strides=strides, dt=dt, sigma=0.0)
    block.build(x.shape)
    randomize_batch_norm(block, rng)
    assert (block.projection is None) == (strides == 1 and filters == 4)
    expected = residual_by_hand(block, x.astype("float64"), dt)
    for training in (False, None):
        np.testing.assert_allclose(
            convert_to_numpy(block(x, training=training)), expected, atol=1e-4
        )


def test_diffusion_does_not_change_the_deterministic_block(rng):
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    plain, diffusive = CDBlock(5, sigma=0.0), CDBlock(5, sigma=0.7, seed=0)
    plain.build(x.shape)
    diffusive.build(x.shape)
    diffusive.set_weights(plain.get_weights())
    np.testing.assert_array_equal(convert_to_numpy(plain(x)), convert_to_numpy(diffusive(x)))
    with keras_cd.monte_carlo():
        # sigma=0 stays deterministic; sigma>0 now diffuses.
        np.testing.assert_array_equal(
            convert_to_numpy(plain(x)), convert_to_numpy(plain(x, training=False))
        )
        assert not np.allclose(convert_to_numpy(plain(x)), convert_to_numpy(diffusive(x)))


def test_monte_carlo_adds_noise_on_top_of_moving_statistics(rng):
    x = rng.normal(size=(32, 8, 8, 4)).astype("float32")
    block = CDBlock(4, sigma=0.5, dt=0.64, seed=3)
    block.build(x.shape)
    randomize_batch_norm(block, rng)
    deterministic = convert_to_numpy(block(x))
    with keras_cd.monte_carlo():
        first, second = convert_to_numpy(block(x)), convert_to_numpy(block(x))
    # BatchNorm kept its moving statistics: what is left is pure noise.
    for draw in (first, second):
        difference = draw - deterministic
        assert abs(difference.mean()) < 0.01
        assert difference.std() == pytest.approx(0.5 * 0.8, rel=0.02)
    assert not np.allclose(first, second)
    # In training mode BatchNorm uses batch statistics instead (checked without noise).
    plain = CDBlock(4, sigma=0.0, dt=0.64)
    plain.build(x.shape)
    plain.set_weights(block.get_weights())
    np.testing.assert_array_equal(convert_to_numpy(plain(x)), deterministic)
    assert np.abs(convert_to_numpy(plain(x, training=True)) - deterministic).max() > 0.1


def test_output_shape_with_unknown_spatial_size():
    inputs = keras.Input((None, None, 3))
    assert tuple(CDBlock(16, strides=2)(inputs).shape) == (None, None, None, 16)
    assert CDBlock(16, strides=2).compute_output_shape((2, 7, 9, 3)) == (2, 4, 5, 16)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"filters": 0}, "filters"),
        ({"filters": -3}, "filters"),
        ({"filters": 2.5}, "filters"),
        ({"filters": 4, "strides": 0}, "strides"),
        ({"filters": 4, "sigma": -1.0}, "sigma"),
        ({"filters": 4, "sigma": float("inf")}, "sigma"),
        ({"filters": 4, "dt": -0.1}, "dt"),
        ({"filters": 4, "dt": float("nan")}, "dt"),
        ({"filters": 4, "mode": "gaussian"}, "mode"),
    ],
)
def test_bad_arguments_raise_with_the_fix(kwargs, argument):
    with pytest.raises(
        ValueError, match=rf"Invalid value for `{argument}`.*Received: {argument}=.*Use"
    ):
        CDBlock(**kwargs)


@pytest.mark.parametrize("shape", [(2, 8, 3), (2, 4, 4, 4, 3)])
def test_wrong_input_rank_raises(shape):
    with pytest.raises(ValueError, match=r"expected rank 4.*Received: input_shape="):
        CDBlock(4)(np.zeros(shape, "float32"))

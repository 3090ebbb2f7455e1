import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

import keras_cd
from keras_cd import DenseCDBlock
from tests.layer_contract import check_layer_contract


@pytest.mark.parametrize("units, activation", [(5, "relu"), (7, "tanh")])
def test_layer_contract(units, activation, tmp_path):
    check_layer_contract(
        DenseCDBlock,
        {"units": units, "dt": 0.5, "sigma": 0.2, "activation": activation, "seed": 4},
        (8, 5),
        tmp_path,
    )


@pytest.mark.parametrize("in_features, units, dt", [(6, 6, 1.0), (3, 6, 0.25)])
def test_sigma_zero_block_equals_the_residual_computed_by_hand(in_features, units, dt, rng):
    x = rng.normal(size=(10, in_features)).astype("float32")
    block = DenseCDBlock(units, dt=dt, sigma=0.0, activation="tanh")
    block.build(x.shape)
    for weight in block.trainable_weights:  # non-zero biases too
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    w1, b1, w2, b2 = (
        convert_to_numpy(v).astype("float64")
        for v in (block.dense1.kernel, block.dense1.bias, block.dense2.kernel, block.dense2.bias)
    )
    projection = None if block.projection is None else block.projection.kernel
    shortcut = x if projection is None else x @ convert_to_numpy(projection).astype("float64")
    expected = shortcut + dt * (np.tanh(x @ w1 + b1) @ w2 + b2)
    np.testing.assert_allclose(convert_to_numpy(block(x, training=True)), expected, atol=1e-5)
    assert (block.projection is None) == (in_features == units)


def test_noise_on_top_of_the_deterministic_step(rng):
    x = rng.normal(size=(20_000, 4)).astype("float32")
    block = DenseCDBlock(4, dt=0.25, sigma=2.0, seed=9)
    deterministic = convert_to_numpy(block(x))
    with keras_cd.monte_carlo():
        difference = convert_to_numpy(block(x)) - deterministic
    assert difference.std() == pytest.approx(2.0 * 0.5, rel=0.02)


def test_activation_is_serialized_by_name():
    config = DenseCDBlock(3, activation="gelu").get_config()
    assert config["activation"] == "gelu"
    assert DenseCDBlock.from_config(config).activation is keras.activations.gelu


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"units": 0}, "units"),
        ({"units": "8"}, "units"),
        ({"units": 4, "sigma": -0.5}, "sigma"),
        ({"units": 4, "sigma": float("nan")}, "sigma"),
        ({"units": 4, "dt": float("-inf")}, "dt"),
        ({"units": 4, "mode": None}, "mode"),
    ],
)
def test_bad_arguments_raise_with_the_fix(kwargs, argument):
    with pytest.raises(
        ValueError, match=rf"Invalid value for `{argument}`.*Received: {argument}=.*Use"
    ):
        DenseCDBlock(**kwargs)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4)])
def test_wrong_input_rank_raises(shape):
    with pytest.raises(ValueError, match=r"DenseCDBlock.*expected rank 2.*Received: input_shape="):
        DenseCDBlock(4)(np.zeros(shape, "float32"))

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy

import keras_cd
from keras_cd.models import cd_resnet


@pytest.mark.parametrize(
    "depth, millions", [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7)]
)
def test_parameter_counts_match_he_et_al(depth, millions):
    model = cd_resnet(depth=depth, sigma=0.0)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # He et al. count option-A (zero-padding) shortcuts; the two 1x1 projections
    # here add 16 * 32 + 32 * 64 = 2,560 weights, below their rounding.
    assert abs(trainable / 1e6 - millions) < (0.01 if depth < 110 else 0.05)
    if depth == 20:
        assert trainable == 269_722 + 2_560  # ResNet-20 (option A) is 269,722


def test_structure_has_three_stages_of_cd_blocks():
    model = cd_resnet(depth=20, sigma=0.2, seed=5)
    blocks = [layer for layer in model.layers if isinstance(layer, keras_cd.CDBlock)]
    assert len(blocks) == 9
    assert [b.filters for b in blocks] == [16] * 3 + [32] * 3 + [64] * 3
    assert [b.strides for b in blocks] == [1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert [b.seed for b in blocks] == list(range(5, 14))
    assert all(b.sigma == 0.2 for b in blocks)
    assert model.output_shape == (None, 10)


def test_sigma_zero_is_the_plain_resnet_with_the_same_weights(rng):
    x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    diffusive = cd_resnet(depth=8, sigma=0.5, seed=0)
    plain = cd_resnet(depth=8, sigma=0.0)
    plain.set_weights(diffusive.get_weights())
    np.testing.assert_array_equal(convert_to_numpy(plain(x)), convert_to_numpy(diffusive(x)))
    with keras_cd.monte_carlo():
        np.testing.assert_array_equal(convert_to_numpy(plain(x)), convert_to_numpy(plain(x)))
        assert not np.allclose(convert_to_numpy(plain(x)), convert_to_numpy(diffusive(x)))
    probabilities = convert_to_numpy(plain(x))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_saves_and_loads_without_custom_objects(tmp_path, rng):
    model = cd_resnet(depth=8, num_classes=3, input_shape=(16, 16, 1), sigma=0.1, seed=1)
    x = rng.normal(size=(2, 16, 16, 1)).astype("float32")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_mixed_precision_keeps_float32_probabilities(rng):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = cd_resnet(depth=8, sigma=0.1)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    out = model(rng.normal(size=(2, 32, 32, 3)).astype("float32"), training=True)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"depth": 21}, "depth"),
        ({"depth": 2}, "depth"),
        ({"num_classes": 1}, "num_classes"),
        ({"mode": "x"}, "mode"),
        ({"input_shape": (32, 32)}, "input_shape"),
        ({"sigma": -1.0}, "sigma"),
    ],
)
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"Invalid value for `{argument}`"):
        cd_resnet(**kwargs)


def test_weight_decay_is_coupled_l2_on_every_kernel():
    model = keras_cd.models.cd_resnet(depth=8, input_shape=(8, 8, 1), weight_decay=1e-3)
    kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
    assert len(model.losses) == len(kernels) == 1 + 3 * 2 + 2 + 1  # stem, blocks, projections, head
    expected = 1e-3 / 2 * sum(float(np.sum(np.square(convert_to_numpy(w)))) for w in kernels)
    assert float(convert_to_numpy(sum(model.losses))) == pytest.approx(expected, rel=1e-5)
    assert not keras_cd.models.cd_resnet(depth=8, input_shape=(8, 8, 1)).losses

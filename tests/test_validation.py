"""One validation vocabulary: NumPy scalars work wherever Python ones do, and
every error names the argument (or the layer) that raised it."""

import keras
import numpy as np
import pytest

import keras_cd
from keras_cd import _validation
from keras_cd.checkpoint import ResumableCheckpoint


def test_numpy_scalars_are_accepted_by_every_public_constructor(tmp_path):
    noise = keras_cd.DiffusionNoise(np.float32(0.5), dt=np.float64(0.25), seed=np.int64(3))
    assert (noise.sigma, noise.dt, noise.seed) == (0.5, 0.25, 3)
    assert type(noise.seed) is int  # stored as Python values: configs stay JSON-serialisable
    keras_cd.CDBlock(
        np.int64(8),
        strides=np.int32(2),
        dt=np.float32(0.5),
        sigma=np.float32(0.1),
        seed=np.int64(1),
    )(np.zeros((1, 8, 8, 4), "float32"))
    keras_cd.DenseCDBlock(np.int64(4), dt=np.float32(0.5), sigma=np.float64(0.1), seed=np.int32(1))(
        np.zeros((2, 4), "float32")
    )
    keras_cd.GaussianKernelGraph(np.int64(3), np.int64(2))(np.random.rand(6, 2).astype("float32"))
    assert (
        keras_cd.models.cd_resnet(
            depth=np.int64(8), num_classes=np.int64(3), input_shape=(8, 8, 1)
        ).output.shape[-1]
        == 3
    )
    assert ResumableCheckpoint(tmp_path, keep=np.int64(3)).keep == 3
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras_cd.DiffusionNoise(1.0, seed=0)(inputs))
    mean, _ = keras_cd.inference.feynman_kac_predict(
        model, np.zeros((1, 2)), np.int64(8), batch_size=np.int32(4)
    )
    assert mean.shape == (1, 2)
    smoothed = keras_cd.smoothing.SmoothedClassifier(
        keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")]),
        np.float32(0.5),
        np.int64(3),
        batch_size=np.int64(8),
        seed=np.int64(0),
    )
    assert smoothed.predict(
        np.zeros((1, 2), "float32"), np.int64(20), alpha=np.float32(0.5)
    ).shape == (1,)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: keras_cd.DiffusionNoise(True), "sigma"),
        (lambda: keras_cd.DiffusionNoise(0.1, seed=1.5), "seed"),
        (lambda: keras_cd.DenseCDBlock(np.float32(4.0)), "units"),
        (lambda: keras_cd.GraphDiffusion(2, 0.1, trainable_sigma2="yes"), "trainable_sigma2"),
        (lambda: keras_cd.GraphDiffusion(2, 0.1, scheme=1), "scheme"),
        (lambda: keras_cd.models.cd_resnet(depth=np.int64(9)), "depth"),
        (lambda: keras_cd.models.cd_resnet(depth=20.0), "depth"),
        (lambda: ResumableCheckpoint("x", keep=np.float64(2)), "keep"),
    ],
)
def test_bad_values_name_the_argument_expected_received_and_fix(call, name):
    with pytest.raises(
        ValueError, match=rf"Invalid value for `{name}`: expected .* Received: {name}="
    ):
        call()


@pytest.mark.parametrize(
    "layer, bad_input",
    [
        (keras_cd.GraphDiffusion(2, 0.1), np.zeros((3,), "float32")),
        (keras_cd.GaussianKernelGraph(2, 1), np.zeros((2, 3, 4), "float32")),
        (keras_cd.DenseCDBlock(4), np.zeros((2, 4, 4, 1), "float32")),
        (keras_cd.CDBlock(4), np.zeros((2, 4), "float32")),
    ],
)
def test_rank_errors_name_the_layer_that_raised_them(layer, bad_input):
    extra = [np.eye(3, dtype="float32")] if isinstance(layer, keras_cd.GraphDiffusion) else []
    with pytest.raises(ValueError) as info:
        layer(bad_input, *extra)
    message = str(info.value)
    assert f"Invalid input shape for `{type(layer).__name__}`" in message
    others = {"CDBlock", "DenseCDBlock", "GraphDiffusion", "GaussianKernelGraph"} - {
        type(layer).__name__
    }
    # A fix may point elsewhere, but the layer named as the culprit is the one that raised.
    assert not any(f"for `{other}`" in message for other in others)
    if "Graph" in type(layer).__name__:  # no advice to use an image or vector block instead
        assert "CDBlock" not in message


def test_number_intervals():
    assert _validation.number("x", np.float32(0.5), "", low=0, high=1) == 0.5
    for bad in (float("nan"), float("inf"), 1.0, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match=r"expected a number in \[0, 1\)"):
            _validation.rate("x", bad)

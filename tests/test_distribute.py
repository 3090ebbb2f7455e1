"""Independent diffusion noise on every tf.distribute replica.

Keras' SeedGenerator state is mirrored under MirroredStrategy, so a plain
`keras.random.normal` draws the same noise on every replica. keras_cd folds
the replica id into the seed. TensorFlow fixes its devices at start-up, so the
two logical CPU devices are made in a fresh interpreter.
"""

import subprocess
import sys
import textwrap

import keras
import pytest

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.distribute needs the TensorFlow backend"
)

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import keras_cd

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2

    with strategy.scope():
        inputs = keras.Input((256,))
        noise = keras_cd.DiffusionNoise(1.0, seed=7)(inputs)
        block = keras_cd.DenseCDBlock(256, sigma=0.5, seed=8)(inputs)
        model = keras.Model(inputs, [noise, block])

    zeros = np.zeros((4, 256), "float32")  # each replica gets 2 identical rows
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(zeros))

    @tf.function
    def step(x):
        return strategy.run(lambda v: model(v, training=True), args=(x,))

    for batch in dataset:
        noise, block = step(batch)
    for name, values in (("noise", noise), ("block", block)):
        a, b = (np.asarray(v) for v in strategy.experimental_local_results(values))
        assert a.shape == b.shape == (2, 256), a.shape
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
        corr = np.corrcoef((a - a.mean()).ravel(), (b - b.mean()).ravel())[0, 1]
        print(name, "max|a-b|", float(np.abs(a - b).max()), "corr", float(corr))
        assert not np.allclose(a, b), name + ": replicas drew the same noise"
        assert abs(corr) < 0.2, (name, corr)

    # The same model trains under the strategy (the seed state updates in sync).
    with strategy.scope():
        trainable = keras.Sequential([
            keras.Input((8,)), keras_cd.DenseCDBlock(8, sigma=0.3, seed=1),
            keras.layers.Dense(1)])
        trainable.compile(optimizer="sgd", loss="mse")
    history = trainable.fit(np.ones((16, 8), "float32"), np.ones((16, 1), "float32"),
                            batch_size=8, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    print("OK")
    """
)


@pytest.mark.slow  # a fresh interpreter with two logical CPUs (set before TensorFlow starts)
def test_replicas_draw_independent_noise():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr[-4000:]


def test_make_strategy_errors_and_the_chief():
    from keras_cd import distribute

    with pytest.raises(ValueError, match="Invalid value for `name`"):
        distribute.make_strategy("gpu")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multiworker")
    import tensorflow as tf

    assert distribute.is_chief(tf.distribute.get_strategy())

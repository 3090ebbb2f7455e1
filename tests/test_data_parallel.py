"""On JAX, data-parallel inference over several devices draws independent noise
per device (keras.distribution.DataParallel; CPU devices forced by XLA_FLAGS)."""

import pytest

from tests.on_backend import run_on_backend

SCRIPT = """
import numpy as np, jax, keras, keras_cd
assert len(jax.devices()) == 2, jax.devices()
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
model = keras_cd.models.cd_resnet(depth=8, sigma=0.5, input_shape=(8, 8, 1), seed=0)
x = np.repeat(np.random.default_rng(0).normal(size=(1, 8, 8, 1)), 8, axis=0).astype("float32")
plain = model.predict(x, batch_size=8, verbose=0)
assert np.abs(plain - plain[0]).max() < 1e-5  # identical rows, no noise: identical outputs
with keras_cd.monte_carlo():
    noisy = model.predict(x, batch_size=8, verbose=0)
first, second = noisy[:4], noisy[4:]  # the two devices' shards of the batch
assert np.abs(first - second).max() > 1e-3, "both devices drew the same noise"
assert min(np.abs(noisy[i] - noisy[j]).max() for i in range(8) for j in range(i)) > 1e-4
print("independent noise per device")
"""


@pytest.mark.slow
def test_data_parallel_noise_is_independent_per_device():
    run_on_backend(
        SCRIPT,
        "independent noise per device",
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )

"""The core runs without TensorFlow: `pip install keras-cd[jax]` needs no TensorFlow."""

import pytest

from tests.on_backend import run_on_backend

WITHOUT_TENSORFLOW = """
import sys

class NoTensorFlow:  # `import tensorflow` fails, as on a machine without it
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("TensorFlow is not installed here")

sys.meta_path.insert(0, NoTensorFlow())
import numpy as np, keras, keras_cd
assert keras.backend.backend() == "jax"
model = keras_cd.models.cd_resnet(depth=8, sigma=0.2, input_shape=(8, 8, 1), weight_decay=1e-4)
x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
y = np.array([0, 1, 2, 3])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
model.fit(x, y, epochs=1, verbose=0)
mean, error = keras_cd.inference.feynman_kac_predict(model, x, 4)
assert np.all(error > 0)
edges = keras_cd.graph.laplacian(np.ones((5, 5)) - np.eye(5), "coin")
coin = keras_cd.models.coin_classifier(3, 2, num_steps=3, sigma2=0.2, laplacian=edges, seed=0)
probabilities = coin([np.ones((5, 3), "float32"), *edges])
np.testing.assert_allclose(np.asarray(probabilities).sum(axis=1), 1.0, atol=1e-5)
implicit = keras_cd.GraphDiffusion(2, 1.0, scheme="implicit")(np.eye(5, dtype="float32"), edges)
smoothed = keras_cd.smoothing.SmoothedClassifier(model, 0.25, 10, batch_size=64, seed=0)
assert smoothed.predict(x[:1], 64, alpha=0.5).shape == (1,)
try:
    keras_cd.distribute.make_strategy("mirrored")
except RuntimeError as error:
    assert "needs the TensorFlow backend" in str(error)
else:
    raise AssertionError("make_strategy ran without TensorFlow")
assert "tensorflow" not in sys.modules
print("core ok without tensorflow")
"""


@pytest.mark.slow
def test_the_core_runs_on_jax_without_tensorflow():
    run_on_backend(WITHOUT_TENSORFLOW, "core ok without tensorflow")


MISSING_TENSORFLOW = """
import sys

class Absent:  # `import tensorflow` fails as on a machine where it is not installed
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Absent())
import numpy as np
import keras_cd  # lazy: succeeds, and the NumPy-only parts work without a backend

senders, receivers, weights = keras_cd.graph.laplacian(np.ones((3, 3)) - np.eye(3), "symmetric")
assert np.allclose(np.bincount(senders, weights, minlength=3), 0)  # L @ 1 == 0
try:
    keras_cd.CDBlock
except ImportError as error:
    print("MESSAGE", error)
else:
    raise AssertionError("keras_cd.CDBlock imported without the backend's package")
"""


def test_a_missing_backend_package_says_which_and_how_to_fix_it(tmp_path):
    """No KERAS_BACKEND, no keras.json, no TensorFlow: the error names the backend,
    where it came from, the missing package, the extra to install and the
    installed backend to switch to."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)  # no keras.json: Keras' default backend
    result = subprocess.run(
        [sys.executable, "-c", MISSING_TENSORFLOW],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    message = result.stdout.split("MESSAGE ", 1)[1]
    for part in (
        "Keras' 'tensorflow' backend",
        "KERAS_BACKEND is not set",
        "package 'tensorflow' is not installed",
        'pip install "keras-cd[tensorflow]"',
        "export KERAS_BACKEND=jax",
    ):
        assert part in message, (part, message)

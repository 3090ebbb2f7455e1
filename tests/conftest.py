import os

# Quiet TensorFlow's C++ start-up logging in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")

# Whole test modules about TensorFlow-only parts: tf.distribute, tf.data pipelines,
# SavedModel/ONNX export and serving, and the scripts built on them. On another
# backend they are not collected.
TENSORFLOW_ONLY = {
    "tests/examples",
    "tests/export",
    "tests/serving",
    "tests/test_checkpoint.py",
    "tests/test_code_blocks.py",
    "tests/test_distribute.py",
}


# Modules that test NumPy/SciPy code only (Laplacians, edge lists, data loaders,
# atomic writes, reporting, the docs): the backend cannot change their outcome,
# so they run once, on the default (TensorFlow) run.
BACKEND_INDEPENDENT = {
    "tests/datasets",
    "tests/graph/test_batch.py",
    "tests/graph/test_laplacian.py",
    "tests/test_atomic.py",
    "tests/test_deprecation.py",
    "tests/test_docs.py",
    "tests/test_files.py",
    "tests/test_reporting.py",
    "tests/test_site.py",
}


def pytest_ignore_collect(collection_path, config):
    if BACKEND == "tensorflow":
        return None
    relative = os.path.relpath(str(collection_path), os.path.dirname(os.path.dirname(__file__)))
    return any(
        relative == path or relative.startswith(path + os.sep)
        for path in TENSORFLOW_ONLY | BACKEND_INDEPENDENT
    )


def pytest_collection_modifyitems(config, items):
    if BACKEND == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"TensorFlow-only test; KERAS_BACKEND={BACKEND}")
    for item in items:
        if item.get_closest_marker("tensorflow"):
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _shared_data(name):
    import pathlib

    base = os.environ.get("KERAS_CD_DATA")
    root = pathlib.Path(__file__).resolve().parents[1]
    candidates = [pathlib.Path(base)] if base else []
    candidates.append(root.parent / "shared" / "data")
    for directory in candidates:
        if (directory / name).is_file():
            return directory / name
    pytest.skip(
        f"{name} not found in $KERAS_CD_DATA or ../shared/data: the real-data test is "
        "skipped (download cora.npz from the gnnbench repository and set KERAS_CD_DATA)"
    )


@pytest.fixture
def cora_path():
    return _shared_data("cora.npz")

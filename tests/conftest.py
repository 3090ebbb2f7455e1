import os

# Quiet TensorFlow's C++ start-up logging in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


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

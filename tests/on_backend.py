"""Runs a test script in a fresh Python on another Keras backend."""

import os
import subprocess
import sys

import pytest


def run_on_backend(script, expected, backend="jax", env=None, timeout=300):
    """Runs `script` with KERAS_BACKEND=`backend`; asserts it succeeds and prints `expected`.

    Skips when the backend's package is not installed, and on the runs of the
    suite on other backends (`make test-jax`, `make test-torch`): the fresh
    process does the same whatever this one's backend, so it runs once, in the
    TensorFlow run (`make test`, `make test-slow`).
    """
    pytest.importorskip(backend, reason=f"needs {backend} (pip install -e '.[{backend}]')")
    this_run = os.environ.get("KERAS_BACKEND", "tensorflow")
    if this_run != "tensorflow":
        pytest.skip(f"a fresh {backend} process, run once: in the TensorFlow run, not {this_run}'s")
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KERAS_BACKEND": backend, **(env or {})},
    )
    assert result.returncode == 0 and expected in result.stdout, result.stderr[-3000:]

"""Runs a test script in a fresh Python on another Keras backend."""

import os
import subprocess
import sys

import pytest


def run_on_backend(script, expected, backend="jax", env=None, timeout=300):
    """Runs `script` with KERAS_BACKEND=`backend`; asserts it succeeds and prints `expected`.

    Skips when the backend's package is not installed.
    """
    pytest.importorskip(backend, reason=f"needs {backend} (pip install -e '.[{backend}]')")
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KERAS_BACKEND": backend, **(env or {})},
    )
    assert result.returncode == 0 and expected in result.stdout, result.stderr[-3000:]

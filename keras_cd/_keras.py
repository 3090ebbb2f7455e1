"""Imports Keras, or says which backend package is missing and how to fix it.

Every keras_cd module that needs Keras imports this one first. Keras picks its
backend from `KERAS_BACKEND` or `~/.keras/keras.json`, and falls back to
TensorFlow; on an install without the configured backend's package, `import
keras` fails deep inside Keras with `ModuleNotFoundError: No module named
'tensorflow'`. This module turns that into an `ImportError` naming the backend,
where it was configured, the missing package and the two ways to fix it.
"""

import importlib.util
import json
import os

# The package each Keras backend imports.
BACKEND_PACKAGES = {
    "tensorflow": "tensorflow",
    "jax": "jax",
    "torch": "torch",
    "numpy": "numpy",
    "openvino": "openvino",
}
# The backends keras_cd installs through its extras, in the order they are suggested.
EXTRAS = ("tensorflow", "jax", "torch")


def configured_backend():
    """The Keras backend and where it was configured, read as Keras reads it.

    Returns:
        A tuple `(backend, source)`: the backend's name, and a phrase saying
        whether it came from `KERAS_BACKEND`, a keras.json file or Keras' default.
    """
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], "KERAS_BACKEND"
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~") if os.access(os.path.expanduser("~"), os.W_OK) else "/tmp",
        ".keras",
    )
    config = os.path.join(home, "keras.json")
    try:
        with open(config) as handle:
            backend = json.load(handle).get("backend")
    except (OSError, ValueError, AttributeError):
        backend = None
    if backend:
        return backend, config
    return "tensorflow", "Keras' default (KERAS_BACKEND is not set)"


def _installed(package):
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def missing_backend_message(backend, source, package):
    """The error text for a configured backend whose package is not installed.

    Args:
        backend: str, the configured Keras backend.
        source: str, where it was configured (see `configured_backend`).
        package: str, the backend's missing package.

    Returns:
        The message, a str.
    """
    installed = [name for name in EXTRAS if name != package and _installed(name)]
    choose = (
        f"or use an installed backend: export KERAS_BACKEND={installed[0]}"
        f" (installed: {', '.join(installed)})"
        if installed
        else 'or install another backend, e.g. pip install "keras-cd[jax]" and export '
        "KERAS_BACKEND=jax"
    )
    extra = f'"keras-cd[{backend}]"' if backend in EXTRAS else package
    return (
        f"keras_cd needs Keras' {backend!r} backend (from {source}), but the package "
        f"{package!r} is not installed. Install it with pip install {extra}, {choose}."
    )


# Read before Keras starts: its first import writes a keras.json with the default.
_backend, _source = configured_backend()
try:
    import keras  # noqa: F401
except ModuleNotFoundError as error:
    _package = BACKEND_PACKAGES.get(_backend)
    if _package is None or error.name is None or error.name.split(".")[0] != _package:
        raise
    raise ImportError(missing_backend_message(_backend, _source, _package)) from error

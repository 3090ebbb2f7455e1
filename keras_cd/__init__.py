"""keras_cd: convection-diffusion layers for Keras.

Wang, Bao & Shi, "Convection-Diffusion Equation: A Theoretically Certified
Framework for Neural Networks" (arXiv 2403.15726): a residual block is a
convection (Euler) step, Gaussian noise on the residual stream is a diffusion
step, and the mean output over the noise solves the convection-diffusion
equation (Feynman-Kac).

Submodules and the top-level names are imported on first use, so that
`import keras_cd` is fast and the parts that need no deep-learning framework
(`keras_cd.graph`, `keras_cd.files`, the ONNX model server
`keras_cd.serving`) never import Keras or TensorFlow. When Keras is already
imported, `import keras_cd` imports the layers at once, so that
`keras.saving.load_model` finds keras_cd's registered classes (e.g.
`CDBlock`); otherwise any use of a keras_cd layer or model registers them.
"""

import importlib
import sys

__version__ = "0.1.0"

_SUBMODULES = (
    "checkpoint",
    "datasets",
    "distribute",
    "export",
    "few_shot",
    "files",
    "forecasting",
    "graph",
    "inference",
    "layers",
    "models",
    "node_classification",
    "robustness",
    "serving",
    "smoothing",
)

_NAMES = {
    "CDBlock": "keras_cd.layers",
    "DenseCDBlock": "keras_cd.layers",
    "DiffusionNoise": "keras_cd.layers",
    "GaussianKernelGraph": "keras_cd.layers",
    "GraphDiffusion": "keras_cd.layers",
    "monte_carlo": "keras_cd.inference",
}

__all__ = sorted(
    [
        "CDBlock",
        "DenseCDBlock",
        "DiffusionNoise",
        "GaussianKernelGraph",
        "GraphDiffusion",
        "checkpoint",
        "datasets",
        "distribute",
        "files",
        "graph",
        "inference",
        "layers",
        "models",
        "monte_carlo",
        "smoothing",
    ]
)


def __getattr__(name):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"keras_cd.{name}")
    else:
        raise AttributeError(f"module 'keras_cd' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_SUBMODULES))


if "keras" in sys.modules:  # register the serializable layers for load_model
    importlib.import_module("keras_cd.layers")
    importlib.import_module("keras_cd.models")

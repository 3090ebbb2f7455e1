"""keras_cd: convection-diffusion layers for Keras.

Wang, Bao & Shi, "Convection-Diffusion Equation: A Theoretically Certified
Framework for Neural Networks" (arXiv 2403.15726): a residual block is a
convection (Euler) step, Gaussian noise on the residual stream is a diffusion
step, and the mean output over the noise solves the convection-diffusion
equation (Feynman-Kac)

    u_t = v . grad u + (sigma^2 / 2) Laplacian u.

The top level holds the layers most used,
[`CDBlock`][keras_cd.layers.CDBlock], [`DenseCDBlock`][keras_cd.layers.DenseCDBlock],
[`DiffusionNoise`][keras_cd.layers.DiffusionNoise],
[`GraphDiffusion`][keras_cd.layers.GraphDiffusion] and
[`GaussianKernelGraph`][keras_cd.layers.GaussianKernelGraph] (the same
objects as in `keras_cd.layers`), and
[`monte_carlo`][keras_cd.inference.monte_carlo], the switch that keeps the
noise on at inference. The submodules: `layers`, `models` (ready-made
networks), `graph` (Laplacians and exact graph diffusion), `inference`
(Feynman-Kac inference), `smoothing` (randomized smoothing and certified
radii), `datasets`, `checkpoint` (resumable training), `distribute`
(tf.distribute strategies), `export` (ONNX and SavedModel) and `files`
(atomic writes).

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

__version__ = "0.2.0"

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
    "PrecomputedDiffusion": "keras_cd.layers",
    "monte_carlo": "keras_cd.inference",
}

__all__ = sorted(
    [
        "CDBlock",
        "DenseCDBlock",
        "DiffusionNoise",
        "GaussianKernelGraph",
        "GraphDiffusion",
        "PrecomputedDiffusion",
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
    """Imports a top-level name or submodule on first use."""
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"keras_cd.{name}")
    else:
        raise AttributeError(f"module 'keras_cd' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    """Lists the module's names, the lazily imported ones included."""
    return sorted(set(globals()) | set(_NAMES) | set(_SUBMODULES))


if "keras" in sys.modules:  # register the serializable layers for load_model
    importlib.import_module("keras_cd.layers")
    importlib.import_module("keras_cd.models")

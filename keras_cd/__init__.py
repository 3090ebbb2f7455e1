"""keras_cd: convection-diffusion layers for Keras.

Wang, Bao & Shi, "Convection-Diffusion Equation: A Theoretically Certified
Framework for Neural Networks" (arXiv 2403.15726): a residual block is a
convection (Euler) step, Gaussian noise on the residual stream is a diffusion
step, and the mean output over the noise solves the convection-diffusion
equation (Feynman-Kac).
"""

__version__ = "0.1.0"

from keras_cd import (
    checkpoint,
    datasets,
    distribute,
    files,
    graph,
    inference,
    layers,
    models,
    smoothing,
)
from keras_cd.inference import monte_carlo
from keras_cd.layers import (
    CDBlock,
    DenseCDBlock,
    DiffusionNoise,
    GaussianKernelGraph,
    GraphDiffusion,
)

__all__ = [
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

"""Convection-diffusion layers for Keras 3.

Wang, Bao & Shi (arXiv 2403.15726) read a network as the solution of the
convection-diffusion equation

    u_t = v . grad u + (sigma^2 / 2) Laplacian u,

discretized by operator splitting: a residual block is a convection step
(forward Euler along the velocity field v) and Gaussian noise is a diffusion
step. The layers:

- [`CDBlock`][keras_cd.layers.CDBlock] and
  [`DenseCDBlock`][keras_cd.layers.DenseCDBlock]: one convection-diffusion
  step on images and on feature vectors;
- [`DiffusionNoise`][keras_cd.layers.DiffusionNoise]: the diffusion step
  alone;
- [`GraphDiffusion`][keras_cd.layers.GraphDiffusion]: heat diffusion
  u_t = -L u on a graph over the samples (COIN), with
  [`GaussianKernelGraph`][keras_cd.layers.GaussianKernelGraph] building the
  graph Laplacian L from a batch and
  [`PrecomputedDiffusion`][keras_cd.layers.PrecomputedDiffusion] applying
  precomputed rows of the diffusion operator.

Every layer is registered with `keras.saving.register_keras_serializable`, so
a saved `.keras` file loads without `custom_objects`.
"""

# First: a missing backend package gets an error that says how to fix it.
from keras_cd import _keras  # noqa: F401

# isort: split
from keras_cd.layers.cd_block import CDBlock
from keras_cd.layers.dense_cd_block import DenseCDBlock
from keras_cd.layers.diffusion_noise import DiffusionNoise
from keras_cd.layers.gaussian_kernel_graph import GaussianKernelGraph
from keras_cd.layers.graph_diffusion import GraphDiffusion
from keras_cd.layers.precomputed_diffusion import PrecomputedDiffusion

__all__ = [
    "CDBlock",
    "DenseCDBlock",
    "DiffusionNoise",
    "GaussianKernelGraph",
    "GraphDiffusion",
    "PrecomputedDiffusion",
]

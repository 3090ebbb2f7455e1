"""Convection-diffusion layers."""

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

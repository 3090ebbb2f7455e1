"""Ready-made convection-diffusion networks of the paper's experiments.

Wang, Bao & Shi (arXiv 2403.15726) build networks that discretize the
convection-diffusion equation u_t = v . grad u + (sigma^2 / 2) Laplacian u:

- [`cd_resnet`][keras_cd.models.cd_resnet]: He et al.'s CIFAR ResNet made
  of [`CDBlock`][keras_cd.layers.CDBlock]s, for image classification;
- [`coin_classifier`][keras_cd.models.coin_classifier]: COIN, a residual base
  classifier ([`ResidualBaseClassifier`][keras_cd.models.ResidualBaseClassifier])
  followed by heat diffusion u_t = -L u on the data graph, for node
  classification.
"""

# First: a missing backend package gets an error that says how to fix it.
from keras_cd import _keras  # noqa: F401

# isort: split
from keras_cd.models.cd_resnet import cd_resnet
from keras_cd.models.coin import ResidualBaseClassifier, coin_classifier

__all__ = ["ResidualBaseClassifier", "cd_resnet", "coin_classifier"]

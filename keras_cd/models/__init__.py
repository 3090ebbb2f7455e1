"""Ready-made convection-diffusion networks."""

from keras_cd.models.cd_resnet import cd_resnet

__all__ = ["cd_resnet"]

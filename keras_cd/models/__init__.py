"""Ready-made convection-diffusion networks."""

from keras_cd.models.cd_resnet import cd_resnet
from keras_cd.models.coin import coin_classifier

__all__ = ["cd_resnet", "coin_classifier"]

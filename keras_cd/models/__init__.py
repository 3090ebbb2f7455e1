"""Ready-made convection-diffusion networks."""

from keras_cd.models.cd_resnet import cd_resnet
from keras_cd.models.coin import ResidualBaseClassifier, coin_classifier

__all__ = ["ResidualBaseClassifier", "cd_resnet", "coin_classifier"]

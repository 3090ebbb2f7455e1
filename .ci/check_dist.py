"""Checks an installed keras_cd wheel from outside the source tree (`make dist`).

Run by the clean environment's interpreter, from a folder without the
sources, so that `import keras_cd` can only find the installed wheel.
"""

import importlib.resources
import pathlib
import sys

import numpy as np

import keras_cd

location = pathlib.Path(keras_cd.__file__).resolve()
if "site-packages" not in location.parts:
    sys.exit(f"keras_cd was imported from {location}, not from the installed wheel")
if not importlib.resources.files("keras_cd").joinpath("py.typed").is_file():
    sys.exit("the wheel has no keras_cd/py.typed marker")

block = keras_cd.CDBlock(4, sigma=0.0)
x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
y = keras_cd.layers.CDBlock.from_config(block.get_config())(x)
if tuple(y.shape) != x.shape:
    sys.exit(f"CDBlock returned shape {tuple(y.shape)}, expected {x.shape}")
import keras  # noqa: E402

print(
    f"keras_cd {keras_cd.__version__} from {location.parent}: CDBlock on "
    f"{keras.backend.backend()} returned {tuple(y.shape)}"
)

"""Export keras_cd models to SavedModel and ONNX, with verified parity.

Every exporter writes atomically (temporary sibling, then rename), refuses to
overwrite unless asked, and runs the exported file against the Keras model
before reporting success. Needs the `export` extra for ONNX:
`pip install 'keras-cd[export]'`. Command line: `python -m keras_cd.export`.
"""

from keras_cd.export.noise_input import noise_width, with_noise_input
from keras_cd.export.onnx import DEFAULT_OPSET, to_onnx
from keras_cd.export.parity import ExportReport, ParityError, check_parity
from keras_cd.export.saved_model import to_saved_model

__all__ = [
    "DEFAULT_OPSET",
    "ExportReport",
    "ParityError",
    "check_parity",
    "noise_width",
    "to_onnx",
    "to_saved_model",
    "with_noise_input",
]

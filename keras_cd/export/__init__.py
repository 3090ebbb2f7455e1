"""Export keras_cd models to SavedModel and ONNX, with verified parity.

Every exporter writes atomically (temporary sibling, then rename), refuses to
overwrite unless asked, and runs the exported file against the Keras model
before reporting success. Needs the `export` extra for ONNX:
`pip install 'keras-cd[export]'`. Command line: `python -m keras_cd.export`.

An exported network is deterministic: its diffusion layers are the identity,
as at Keras inference. For Feynman-Kac inference (the mean over the noise of
the output, which approximates the solution of the convection-diffusion
equation u_t = v . grad u + (sigma^2 / 2) Laplacian u of Wang, Bao & Shi,
arXiv 2403.15726), `monte_carlo=True` exports one Monte-Carlo pass that takes
the standard normal noise eps as an extra input
([`with_noise_input`][keras_cd.export.with_noise_input], of width
[`noise_width`][keras_cd.export.noise_width]), and the caller averages passes
over fresh noise.

- [`to_onnx`][keras_cd.export.to_onnx] (opset `DEFAULT_OPSET`, 17, unless
  asked) and [`to_saved_model`][keras_cd.export.to_saved_model] write the
  files and return an [`ExportReport`][keras_cd.export.ExportReport];
- [`check_parity`][keras_cd.export.check_parity] runs an exported file and
  compares it with the Keras model, raising
  [`ParityError`][keras_cd.export.ParityError] when they differ.
"""

# First: a missing backend package gets an error that says how to fix it.
from keras_cd import _keras  # noqa: F401

# isort: split
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

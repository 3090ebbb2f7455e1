"""Export to ONNX, verified in onnxruntime before it lands.

Holds [`to_onnx`][keras_cd.export.to_onnx] and `DEFAULT_OPSET`, the ONNX
opset it uses unless asked. The exported graph computes the network at
inference (noise-free) or, with `monte_carlo=True`, one Euler-Maruyama pass
with its noise as an input (see `keras_cd.export`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from keras_cd._atomic import atomic_path
from keras_cd._noise import noise_free
from keras_cd.export._common import check_exportable, input_signature, require
from keras_cd.export.noise_input import with_noise_input
from keras_cd.export.parity import ExportReport, verify_export

if TYPE_CHECKING:
    import keras
    import numpy as np

# The ONNX opset `to_onnx` exports to unless given another; recorded in the file.
DEFAULT_OPSET = 17


def _annotate(path, opset, monte_carlo):
    """Pins output names, records provenance and validates the file."""
    import keras

    import keras_cd

    onnx = require("onnx")
    proto = onnx.load(path)
    renames = {o.name: f"output_{i}" for i, o in enumerate(proto.graph.output)}
    for node in proto.graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
    for output in proto.graph.output:
        output.name = renames[output.name]
    for key, value in {
        "keras_cd.version": keras_cd.__version__,
        "keras.version": keras.__version__,
        "onnx.opset": str(opset),
        "keras_cd.monte_carlo": str(monte_carlo),
    }.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def to_onnx(
    model: keras.Model,
    path: str | os.PathLike,
    opset: int | None = None,
    overwrite: bool = False,
    monte_carlo: bool = False,
    check_inputs: Sequence[np.ndarray | list[np.ndarray]] | None = None,
    atol: float = 1e-5,
) -> ExportReport:
    """Exports `model` to an ONNX file that is checked to compute what Keras computes.

    The inference graph is noise-free (diffusion layers are the identity).
    With `monte_carlo=True` the graph instead takes one more input, `noise`,
    of shape `(batch, width)`: standard normal draws that the diffusion layers
    use in place of random ops (ONNX random ops differ between runtimes), so
    one call is one Monte-Carlo pass and the server draws the noise.

    The file is written to a temporary sibling, validated with the ONNX
    checker, run in onnxruntime and compared with the Keras model (batch
    sizes 1 and 5 of random inputs, or `check_inputs`) before it is renamed
    into place: a failed or interrupted export never leaves a file at `path`.
    The outputs are named `output_0`, `output_1`, ..., and the file records
    the keras_cd and Keras versions, the opset and `monte_carlo` in its
    metadata.

    Args:
        model: a float32 `keras.Model`.
        path: str or path-like, destination, ending in `.onnx`.
        opset: int or None, ONNX opset version; recorded in the file.
            Defaults to `None`: `DEFAULT_OPSET` (17).
        overwrite: bool, replace an existing file. Defaults to `False`.
        monte_carlo: bool, export one Monte-Carlo pass with a `noise` input.
            Defaults to `False`.
        check_inputs: list of input batches for the parity check, or None
            for random inputs of batch sizes 1 and 5. Defaults to `None`.
        atol: float, largest accepted absolute difference. Defaults to `1e-5`.

    Returns:
        An `ExportReport` with the absolute path, `"onnx"`, the largest
        difference found and the batch sizes checked.

    Raises:
        ImportError: if tf2onnx, onnxruntime or onnx is not installed.
        ValueError: if `model` is not a float32 `keras.Model`, the export
            runs inside `keras_cd.monte_carlo()`, `path` does not end in
            `.onnx`, or `monte_carlo=True` for a model without an active
            diffusion layer.
        FileExistsError: if `path` exists and `overwrite=False`.
        ParityError: if the exported file differs from the Keras model by
            more than `atol`.

    Example:
        It needs the `export` extra and takes seconds, so it is shown, not
        run:

        ```python
        model = keras.saving.load_model("model.keras")
        report = keras_cd.export.to_onnx(model, "model.onnx")
        print(report.max_abs_diff, report.batch_sizes)  # within atol; (1, 5)
        keras_cd.export.to_onnx(model, "model_mc.onnx", monte_carlo=True)
        ```
    """
    require("tf2onnx")
    require("onnxruntime")
    check_exportable(model)
    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise ValueError(
            f"Invalid value for `path`: expected a file name ending in .onnx. "
            f"Received: path={path!r}. Use e.g. 'model.onnx'."
        )
    opset = DEFAULT_OPSET if opset is None else int(opset)
    exported = with_noise_input(model) if monte_carlo else model
    with atomic_path(path, suffix=".onnx", overwrite=overwrite) as temporary, noise_free():
        exported.export(
            temporary,
            format="onnx",
            opset_version=opset,
            verbose=False,
            input_signature=input_signature(exported),
        )
        _annotate(temporary, opset, monte_carlo)
        worst, sizes = verify_export(exported, temporary, check_inputs, atol)
    return ExportReport(os.path.abspath(path), "onnx", worst, sizes, monte_carlo)

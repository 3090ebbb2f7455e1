"""Export to ONNX, verified in onnxruntime before it lands."""

import os

from keras_cd._atomic import atomic_path
from keras_cd._noise import noise_free
from keras_cd.export._common import check_exportable, input_signature, require
from keras_cd.export.noise_input import with_noise_input
from keras_cd.export.parity import ExportReport, verify_export

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
    model, path, opset=None, overwrite=False, monte_carlo=False, check_inputs=None, atol=1e-5
):
    """Exports `model` to an ONNX file that provably computes what Keras computes.

    The inference graph is noise-free (diffusion layers are the identity).
    With `monte_carlo=True` the graph instead takes one more input, `noise`,
    of shape `(batch, width)`: standard normal draws that the diffusion layers
    use in place of random ops (ONNX random ops differ between runtimes), so
    one call is one Monte-Carlo pass and the server draws the noise.

    The file is written to a temporary sibling, validated with the ONNX
    checker, run in onnxruntime and compared with the Keras model (batch
    sizes 1 and 5 of random inputs, or `check_inputs`) before it is renamed
    into place: a failed or interrupted export never leaves a file at `path`.

    Args:
        model: a float32 `keras.Model`.
        path: destination, ending in `.onnx`.
        opset: ONNX opset version. Defaults to `17`; recorded in the file.
        overwrite: replace an existing file. Defaults to `False`.
        monte_carlo: export one Monte-Carlo pass with a noise input.
        check_inputs: list of input batches for the parity check.
        atol: largest accepted absolute difference. Defaults to `1e-5`.

    Returns:
        An `ExportReport` with the measured largest difference.
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

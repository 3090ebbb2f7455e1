"""Run an exported model and compare it with the Keras model.

Holds [`check_parity`][keras_cd.export.check_parity], which runs an ONNX file
in onnxruntime or a SavedModel with `tf.saved_model.load` and compares its
outputs with the Keras model's, [`ParityError`][keras_cd.export.ParityError],
raised when they differ, and [`ExportReport`][keras_cd.export.ExportReport],
what the exporters return. An export of a convection-diffusion network runs
it at inference, or one Monte-Carlo pass with the noise as an input; both
are deterministic, so parity is checked to a fixed absolute tolerance.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from keras_cd.export._common import as_list, example_inputs, require

if TYPE_CHECKING:
    import keras

# Batch sizes of the random inputs the exporters check parity on (a dynamic batch axis).
CHECK_BATCH_SIZES = (1, 5)


class ParityError(ValueError):
    """An export computes something other than its Keras model.

    A `ValueError`, raised by `check_parity` (and so by the exporters, which
    then leave no file behind) when the outputs differ by more than the
    tolerance, or their number, shapes or the SavedModel's inputs differ.

    Example:
        >>> import keras_cd
        >>> issubclass(keras_cd.export.ParityError, ValueError)  # caught as a ValueError too
        True
    """


def latest_version(path):
    """Returns the SavedModel folder to load: `path/<N>` for the largest version N, else `path`.

    Args:
        path: str, a SavedModel folder, or a TF-Serving base folder of
            numbered versions.

    Returns:
        str, `path` itself when it holds `saved_model.pb`, else the folder of
        its newest version.

    Raises:
        FileNotFoundError: if neither `path` nor a numbered folder in it
            holds `saved_model.pb`.
    """
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [
        int(n)
        for n in os.listdir(path)
        if n.isdigit() and os.path.isfile(os.path.join(path, n, "saved_model.pb"))
    ]
    if not versions:
        raise FileNotFoundError(
            f"No SavedModel in {path!r}: expected saved_model.pb there or in "
            "numbered version folders. Export with keras_cd.export.to_saved_model."
        )
    return os.path.join(path, str(max(versions)))


def run_onnx(path, inputs):
    """Runs an ONNX file in onnxruntime (CPU) on `inputs`.

    Args:
        path: str or path-like, the `.onnx` file.
        inputs: list of arrays, fed to the graph's inputs in order.

    Returns:
        The list of output arrays.

    Raises:
        ImportError: if onnxruntime is not installed.
    """
    ort = require("onnxruntime")
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    feeds = {spec.name: value for spec, value in zip(session.get_inputs(), inputs)}
    return session.run(None, feeds)


def _output_order(name):
    head, _, tail = name.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (name, -1)


def run_saved_model(path, inputs, names):
    """Runs a SavedModel's `serving_default` signature on `inputs`.

    Args:
        path: str or path-like, a SavedModel folder or TF-Serving base folder
            (its newest version is loaded).
        inputs: list of arrays, one per input name.
        names: list of str, the Keras model's input names, in the order of
            `inputs`.

    Returns:
        The list of output arrays, ordered by output name (`output_0`,
        `output_1`, ...).

    Raises:
        ImportError: if TensorFlow is not installed.
        FileNotFoundError: if there is no SavedModel at `path`.
        ParityError: if the signature takes other inputs than `names`.
    """
    tf = require("tensorflow", extra="export")
    signature = tf.saved_model.load(latest_version(os.fspath(path))).signatures["serving_default"]
    accepted = sorted(signature.structured_input_signature[1])
    if sorted(names) != accepted:
        raise ParityError(
            f"The SavedModel at {path!r} takes inputs {accepted}; "
            f"the Keras model takes {sorted(names)}."
        )
    outputs = signature(**{n: tf.constant(v) for n, v in zip(names, inputs)})
    return [outputs[k].numpy() for k in sorted(outputs, key=_output_order)]


def check_parity(
    model: keras.Model,
    path: str | os.PathLike,
    inputs: np.ndarray | list[np.ndarray],
    atol: float = 1e-5,
) -> float:
    """Runs the export at `path` on `inputs`; compares with `model` in inference mode.

    `path` is an `.onnx` file (run in onnxruntime) or a SavedModel folder,
    possibly in TF-Serving layout (`path/<version>/`; the newest is loaded,
    with `tf.saved_model.load`). The exporters call it before they rename a
    file into place; call it again to check a file already deployed.

    Args:
        model: the `keras.Model` the file was exported from (for a
            Monte-Carlo export, `keras_cd.export.with_noise_input(model)`).
        path: str or path-like, an `.onnx` file or a SavedModel folder.
        inputs: an input array, or a list of arrays for a model with several
            inputs.
        atol: float, the largest accepted absolute difference. Defaults to
            `1e-5`.

    Returns:
        float, the largest absolute difference over all outputs.

    Raises:
        ParityError: if the difference exceeds `atol`, or the export's
            number of outputs, output shapes or inputs differ from the
            model's.
        ImportError: if onnxruntime (for `.onnx`) or TensorFlow is not
            installed.
        FileNotFoundError: if there is no SavedModel at `path`.

    Example:
        It needs an exported file, so it is shown, not run:

        ```python
        model = keras.saving.load_model("model.keras")
        x = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
        worst = keras_cd.export.check_parity(model, "model.onnx", x)  # <= 1e-5
        ```
    """
    inputs = [np.asarray(x) for x in as_list(inputs)]
    expected = [
        np.asarray(y)
        for y in as_list(model(inputs[0] if len(inputs) == 1 else inputs, training=False))
    ]
    path = os.fspath(path)
    if path.endswith(".onnx"):
        actual = run_onnx(path, inputs)
    else:
        actual = run_saved_model(path, inputs, [t.name for t in model.inputs])
    if len(actual) != len(expected):
        raise ParityError(
            f"The export at {path!r} has {len(actual)} outputs; "
            f"the Keras model has {len(expected)}."
        )
    worst = 0.0
    for want, got in zip(expected, actual):
        if want.shape != got.shape:
            raise ParityError(
                f"The export at {path!r} returned shape {got.shape}; "
                f"the Keras model returns {want.shape}."
            )
        worst = max(
            worst, float(np.max(np.abs(want.astype("float64") - got))) if want.size else 0.0
        )
    if not worst <= atol:
        raise ParityError(
            f"The export at {path!r} differs from the Keras model by {worst:.3g} "
            f"(max absolute difference; tolerance atol={atol:g}) on inputs of batch "
            f"size {len(inputs[0])}. Do not serve it; check for layers whose "
            "inference differs from training, or raise atol if the gap is understood."
        )
    return worst


class ExportReport(NamedTuple):
    """What an exporter wrote and how closely it matches Keras.

    Returned by `to_onnx` and `to_saved_model`; a `NamedTuple` of the
    fields below, in this order.

    Attributes:
        path: str, the absolute path written (for a SavedModel, the version
            folder).
        format: str, `"onnx"` or `"saved_model"`.
        max_abs_diff: float, the largest absolute difference from the Keras
            model found by the parity check.
        batch_sizes: tuple of int, the batch sizes checked.
        monte_carlo: bool, whether the export is one Monte-Carlo pass with a
            `noise` input.

    Example:
        >>> import keras_cd
        >>> report = keras_cd.export.ExportReport("/srv/model.onnx", "onnx", 3e-7, (1, 5), False)
        >>> report.format, report.max_abs_diff <= 1e-5, report.batch_sizes
        ('onnx', True, (1, 5))
    """

    path: str
    format: str
    max_abs_diff: float
    batch_sizes: tuple[int, ...]
    monte_carlo: bool


def verify_export(model, path, check_inputs, atol):
    """Runs `check_parity` on `check_inputs`, or on random inputs at two batch sizes.

    Args:
        model: the `keras.Model` exported.
        path: str, the exported file or folder.
        check_inputs: list of input batches, or None for random inputs of
            the batch sizes `CHECK_BATCH_SIZES`.
        atol: float, the largest accepted absolute difference.

    Returns:
        `(largest difference, batch sizes checked)`.
    """
    batches = check_inputs or [example_inputs(model, b, seed=b) for b in CHECK_BATCH_SIZES]
    worst = max(check_parity(model, path, inputs, atol=atol) for inputs in batches)
    sizes = tuple(
        len(inputs[0] if isinstance(inputs, (list, tuple)) else inputs) for inputs in batches
    )
    return worst, sizes

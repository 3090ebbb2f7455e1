"""Run an exported model and compare it with the Keras model."""

import os
from typing import NamedTuple

import numpy as np

from keras_cd.export._common import as_list, example_inputs, require

CHECK_BATCH_SIZES = (1, 5)


class ParityError(ValueError):
    """An export computes something other than its Keras model."""


def latest_version(path):
    """`path/<N>` for the largest N of a TF-Serving layout, else `path`."""
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
    ort = require("onnxruntime")
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    feeds = {spec.name: value for spec, value in zip(session.get_inputs(), inputs)}
    return session.run(None, feeds)


def _output_order(name):
    head, _, tail = name.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (name, -1)


def run_saved_model(path, inputs, names):
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


def check_parity(model, path, inputs, atol=1e-5):
    """Runs the export at `path` on `inputs`; compares with `model` in inference mode.

    `path` is an `.onnx` file (run in onnxruntime) or a SavedModel folder,
    possibly in TF-Serving layout (`path/<version>/`; the newest is loaded,
    with `tf.saved_model.load`). Returns the largest absolute difference over
    all outputs; raises `ParityError` with the figures when it exceeds `atol`.
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
    """What an exporter wrote and how closely it matches Keras."""

    path: str
    format: str
    max_abs_diff: float
    batch_sizes: tuple
    monte_carlo: bool


def verify_export(model, path, check_inputs, atol):
    """`check_parity` on `check_inputs`, or on random inputs at two batch
    sizes; returns (largest difference, batch sizes checked)."""
    batches = check_inputs or [example_inputs(model, b, seed=b) for b in CHECK_BATCH_SIZES]
    worst = max(check_parity(model, path, inputs, atol=atol) for inputs in batches)
    sizes = tuple(
        len(inputs[0] if isinstance(inputs, (list, tuple)) else inputs) for inputs in batches
    )
    return worst, sizes

"""Export to a TensorFlow-Serving SavedModel, verified before it lands."""

import os

from keras_cd import _validation
from keras_cd._atomic import atomic_path
from keras_cd._noise import noise_free
from keras_cd.export._common import check_exportable, input_signature
from keras_cd.export.noise_input import with_noise_input
from keras_cd.export.parity import ExportReport, verify_export


def next_version(path):
    """1 + the largest numbered version folder under `path` (1 if none)."""
    if not os.path.isdir(path):
        return 1
    return 1 + max([int(name) for name in os.listdir(path) if name.isdigit()], default=0)


def to_saved_model(
    model, path, version=None, overwrite=False, monte_carlo=False, check_inputs=None, atol=1e-5
):
    """Exports `model` as a SavedModel in TensorFlow Serving's layout.

    Writes `path/<version>/` with a `serving_default` signature whose batch
    dimension is dynamic; `version` defaults to one more than the newest
    version already there, so a running TensorFlow Serving picks the new model
    up and existing versions are never touched. The version folder is built
    under a temporary name, loaded with `tf.saved_model.load`, compared with
    the Keras model and only then renamed into place.

    Args:
        model: a float32 `keras.Model`.
        path: the model's base folder (TF Serving `model_base_path`).
        version: int >= 1, or None for the next free version.
        overwrite: replace `path/<version>` when it exists. Defaults to `False`.
        monte_carlo: export one Monte-Carlo pass with a `noise` input
            (see `to_onnx`).
        check_inputs: list of input batches for the parity check.
        atol: largest accepted absolute difference. Defaults to `1e-5`.

    Returns:
        An `ExportReport`; its `path` is the version folder.
    """
    check_exportable(model)
    path = os.fspath(path)
    if version is None:
        version = next_version(path)
    version = _validation.positive_int(
        "version", version, "Use version=None for the next free one."
    )
    exported = with_noise_input(model) if monte_carlo else model
    target = os.path.join(path, str(version))
    with atomic_path(target, overwrite=overwrite) as temporary, noise_free():
        exported.export(
            temporary,
            format="tf_saved_model",
            verbose=False,
            input_signature=input_signature(exported),
        )
        worst, sizes = verify_export(exported, temporary, check_inputs, atol)
    return ExportReport(os.path.abspath(target), "saved_model", worst, sizes, monte_carlo)

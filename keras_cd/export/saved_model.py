"""Export to a TensorFlow-Serving SavedModel, verified before it lands.

Holds [`to_saved_model`][keras_cd.export.to_saved_model], which writes the
network at inference (noise-free) or, with `monte_carlo=True`, one
Euler-Maruyama pass with its noise as an input (see `keras_cd.export`), and
`next_version`, the TensorFlow Serving version number it picks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from keras_cd import _validation
from keras_cd._atomic import atomic_path
from keras_cd._noise import noise_free
from keras_cd.export._common import check_exportable, input_signature
from keras_cd.export.noise_input import with_noise_input
from keras_cd.export.parity import ExportReport, verify_export

if TYPE_CHECKING:
    import keras
    import numpy as np


def next_version(path):
    """Returns 1 + the largest numbered version folder under `path` (1 if none).

    Args:
        path: str, a TensorFlow Serving model base folder (need not exist).

    Returns:
        int >= 1.

    Example:
        >>> import os, tempfile
        >>> import keras_cd.export.saved_model
        >>> base = tempfile.mkdtemp()
        >>> keras_cd.export.saved_model.next_version(base)
        1
        >>> os.makedirs(os.path.join(base, "3"))
        >>> keras_cd.export.saved_model.next_version(base)
        4
    """
    if not os.path.isdir(path):
        return 1
    return 1 + max([int(name) for name in os.listdir(path) if name.isdigit()], default=0)


def to_saved_model(
    model: keras.Model,
    path: str | os.PathLike,
    version: int | None = None,
    overwrite: bool = False,
    monte_carlo: bool = False,
    check_inputs: Sequence[np.ndarray | list[np.ndarray]] | None = None,
    atol: float = 1e-5,
) -> ExportReport:
    """Exports `model` as a SavedModel in TensorFlow Serving's layout.

    Writes `path/<version>/` with a `serving_default` signature whose batch
    dimension is dynamic; `version` defaults to one more than the newest
    version already there, so a running TensorFlow Serving picks the new model
    up and existing versions are never touched. The version folder is built
    under a temporary name, loaded with `tf.saved_model.load`, compared with
    the Keras model and only then renamed into place.

    Args:
        model: a float32 `keras.Model`.
        path: str or path-like, the model's base folder (TF Serving
            `model_base_path`).
        version: int >= 1, or None for the next free version. Defaults to
            `None`.
        overwrite: bool, replace `path/<version>` when it exists. Defaults to
            `False`.
        monte_carlo: bool, export one Monte-Carlo pass with a `noise` input
            (see `to_onnx`). Defaults to `False`.
        check_inputs: list of input batches for the parity check, or None
            for random inputs of batch sizes 1 and 5. Defaults to `None`.
        atol: float, largest accepted absolute difference. Defaults to `1e-5`.

    Returns:
        An `ExportReport`; its `path` is the absolute version folder.

    Raises:
        ValueError: if `model` is not a float32 `keras.Model`, the export
            runs inside `keras_cd.monte_carlo()`, `version` is not an int
            >= 1, or `monte_carlo=True` for a model without an active
            diffusion layer.
        FileExistsError: if `path/<version>` exists and `overwrite=False`.
        ParityError: if the SavedModel differs from the Keras model by more
            than `atol`.

    Example:
        It needs TensorFlow and takes seconds, so it is shown, not run:

        ```python
        model = keras.saving.load_model("model.keras")
        report = keras_cd.export.to_saved_model(model, "serving/cd_resnet")
        print(report.path)  # .../serving/cd_resnet/1, then 2 on the next export
        ```
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

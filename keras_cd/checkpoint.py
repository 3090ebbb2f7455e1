"""Crash-safe training checkpoints that resume where training stopped."""

import os
import re
import warnings

import keras

from keras_cd import _validation
from keras_cd._atomic import atomic_path

_PATTERN = re.compile(r"^epoch-(\d+)\.weights\.h5$")


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves the full training state atomically after every epoch.

    Each checkpoint holds the model and optimizer variables (so also the
    step counter that drives learning-rate schedules) after `epoch` completed
    epochs, in `directory/epoch-XXXXX.weights.h5`. It is written to a
    temporary sibling and renamed into place, so a run killed at any moment,
    even while saving, leaves the previous checkpoints intact. Unlike
    `keras.callbacks.BackupAndRestore`, which rewrites one weights file in
    place, a kill during the write cannot corrupt the only copy.

    Resume by restoring before `fit`:

    ```python
    checkpoint = keras_cd.checkpoint.ResumableCheckpoint("runs/ckpt")
    initial_epoch = checkpoint.restore(model)   # 0 on a fresh start
    model.fit(data, epochs=30, initial_epoch=initial_epoch,
              callbacks=[checkpoint])
    ```

    Args:
        directory: str, folder of the checkpoints (created when needed).
        keep: int >= 1, how many of the newest checkpoints to keep.
            Defaults to `2`.
        write: bool, whether this process writes checkpoints. Under
            multi-worker training only the chief should write; every worker
            restores. Defaults to `True`.
    """

    def __init__(self, directory, keep=2, write=True):
        super().__init__()
        keep = _validation.positive_int("keep", keep, "Use keep=2 to keep the two newest.")
        self.directory = os.fspath(directory)
        self.keep = keep
        self.write = write

    def checkpoints(self):
        """Returns `[(epoch, path), ...]`, newest first."""
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in os.listdir(self.directory):
            match = _PATTERN.match(name)
            if match:
                found.append((int(match.group(1)), os.path.join(self.directory, name)))
        return sorted(found, reverse=True)

    def restore(self, model):
        """Loads the newest readable checkpoint into `model`.

        Returns the number of completed epochs it holds (pass it to
        `fit(initial_epoch=...)`), or 0 when there is none.
        """
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        for epoch, path in self.checkpoints():
            try:
                model.load_weights(path)
            except Exception as error:  # A truncated file from another tool.
                warnings.warn(f"Skipping unreadable checkpoint {path}: {error}")
                continue
            return epoch
        return 0

    def on_epoch_end(self, epoch, logs=None):
        if not self.write:
            return
        final = os.path.join(self.directory, f"epoch-{epoch + 1:05d}.weights.h5")
        with atomic_path(final, suffix=".weights.h5") as temporary:
            self.model.save_weights(temporary)
        for _, path in self.checkpoints()[self.keep:]:
            os.remove(path)

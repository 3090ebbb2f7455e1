"""Crash-safe training checkpoints that resume where training stopped."""

import json
import os
import re
import warnings

import keras

from keras_cd import _noise, _validation
from keras_cd._atomic import atomic_path

_PATTERN = re.compile(r"^epoch-(\d+)\.weights\.h5$")


_STATE_GROUP = "keras_cd_training_state"


def _without_names(value):
    if isinstance(value, dict):
        return {k: _without_names(v) for k, v in value.items() if k != "name"}
    if isinstance(value, (list, tuple)):
        return [_without_names(v) for v in value]
    return value


def _fingerprint(model):
    """What must match for a checkpoint to restore into `model`: its layers'
    classes and settings (auto-generated names aside), its variables' shapes
    and dtypes, and the optimizer's class, settings and variables. A constant
    learning rate is left out: it is a variable, restored with the weights
    (callbacks such as ReduceLROnPlateau change it)."""

    def plain(value):
        return json.loads(json.dumps(_without_names(value), sort_keys=True, default=repr))

    described = {
        "layers": [[type(layer).__name__, plain(layer.get_config())] for layer in model.layers],
        "variables": [[list(v.shape), str(v.dtype)] for v in model.variables],
    }
    optimizer = model.optimizer
    if optimizer is not None:
        config = optimizer.get_config()
        if not isinstance(config.get("learning_rate"), dict):
            config.pop("learning_rate", None)
        described["optimizer"] = {
            "class": type(optimizer).__name__,
            "config": plain(config),
            "variables": [[list(v.shape), str(v.dtype)] for v in optimizer.variables],
        }
    return described


def _first_difference(saved, current, where=""):
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in sorted(set(saved) | set(current)):
            if saved.get(key) != current.get(key):
                return _first_difference(saved.get(key), current.get(key), f"{where}/{key}")
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        for index, (a, b) in enumerate(zip(saved, current)):
            if a != b:
                return _first_difference(a, b, f"{where}[{index}]")
    return f"{where or '/'}: checkpoint has {saved!r}, this run has {current!r}"


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves the full training state atomically after every epoch.

    Each checkpoint holds, after `epoch` completed epochs, in
    `directory/epoch-XXXXX.weights.h5`: the model and optimizer variables
    (so also the step counter that drives learning-rate schedules), the
    states of every random seed generator (the noise of `DiffusionNoise`,
    dropout masks), and a fingerprint of the model and optimizer. It is
    written to a temporary sibling and renamed into place, so a run killed
    at any moment, even while saving, leaves the previous checkpoints intact.
    Unlike `keras.callbacks.BackupAndRestore`, which rewrites one weights
    file in place, a kill during the write cannot corrupt the only copy.

    A resumed run continues exactly as the uninterrupted run would when its
    data order is a function of the epoch, as
    `keras_cd.datasets.resumable_epochs` makes it:

    ```python
    checkpoint = keras_cd.checkpoint.ResumableCheckpoint("runs/ckpt")
    initial_epoch = checkpoint.restore(model)   # 0 on a fresh start
    data = keras_cd.datasets.resumable_epochs(examples, seed=0, epochs=30,
                                              initial_epoch=initial_epoch)
    model.fit(data.batch(128), epochs=30, initial_epoch=initial_epoch,
              callbacks=[checkpoint])
    ```

    Refused with a `ValueError`, never half-restored: a checkpoint written by
    a different model or optimizer (other layers, shapes, optimizer class or
    settings), and training into a folder that already holds checkpoints
    newer than the one restored (start from `restore()`, or use a new
    folder). Pruning keeps the `keep` newest epochs, always including the one
    just written.

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
        self.write = _validation.boolean("write", write)
        self.restored_epoch = None  # set by restore()

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
        `fit(initial_epoch=...)`), or 0 when there is none. Raises a
        `ValueError` when the checkpoint was written for another model or
        optimizer configuration.
        """
        import h5py

        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        current = _fingerprint(model)
        self.restored_epoch = 0
        for epoch, path in self.checkpoints():
            try:
                with h5py.File(path, "r") as handle:
                    state = handle.get(_STATE_GROUP)
                    saved = json.loads(state.attrs["fingerprint"]) if state is not None else None
                    seeds = (
                        {name: state["seeds"][name][()] for name in state["seeds"]}
                        if state is not None
                        else {}
                    )
            except Exception as error:  # A truncated file from another tool.
                warnings.warn(f"Skipping unreadable checkpoint {path}: {error}", stacklevel=2)
                continue
            if saved is None:
                raise ValueError(
                    f"Invalid checkpoint {path!r}: it holds no keras_cd training state (written "
                    "by another tool, or by keras_cd < 0.2), so the noise streams cannot be "
                    "restored. Use a new directory, or load its weights with "
                    "model.load_weights() and train without resuming."
                )
            if saved != current:
                raise ValueError(
                    f"Invalid checkpoint {path!r} for this model: it was written by a "
                    "different model or optimizer configuration "
                    f"({_first_difference(saved, current)}). Resume with the configuration "
                    "that wrote it, or point ResumableCheckpoint at a new directory."
                )
            model.load_weights(path)
            for index, variable in enumerate(_noise.random_seed_states(model)):
                variable.assign(seeds[str(index)])
            self.restored_epoch = epoch
            return epoch
        return 0

    def on_train_begin(self, logs=None):
        if not self.write:
            return
        newest = self.checkpoints()[0][0] if self.checkpoints() else 0
        restored = self.restored_epoch or 0
        if newest > restored:
            raise ValueError(
                f"Invalid value for `directory`: {self.directory!r} already holds checkpoints up "
                f"to epoch {newest}, newer than the state this run starts from (epoch "
                f"{restored}); training on would mix two runs and pruning would delete the "
                "new checkpoints. Call checkpoint.restore(model) before fit() to resume, or "
                "use a new directory."
            )

    def on_epoch_end(self, epoch, logs=None):
        if not self.write:
            return
        import h5py

        completed = epoch + 1
        final = os.path.join(self.directory, f"epoch-{completed:05d}.weights.h5")
        with atomic_path(final, suffix=".weights.h5") as temporary:
            self.model.save_weights(temporary)
            with h5py.File(temporary, "a") as handle:
                state = handle.create_group(_STATE_GROUP)
                state.attrs["fingerprint"] = json.dumps(_fingerprint(self.model))
                state.attrs["epoch"] = completed
                seeds = state.create_group("seeds")
                for index, variable in enumerate(_noise.random_seed_states(self.model)):
                    seeds[str(index)] = keras.ops.convert_to_numpy(variable)
        self.restored_epoch = completed
        others = [(number, path) for number, path in self.checkpoints() if number != completed]
        for _, path in others[self.keep - 1 :]:  # the one just written is always kept
            os.remove(path)


def save_model(model, path, overwrite=True):
    """`model.save(path)`, atomically: readers see the old file or the whole new one.

    The `.keras` file is written to a temporary sibling, flushed and renamed
    into place, so a kill while saving never leaves a truncated model.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        _validation.invalid("path", "a file name ending in .keras", path, "Use e.g. 'model.keras'.")
    with atomic_path(path, suffix=".keras", overwrite=overwrite) as temporary:
        model.save(temporary)

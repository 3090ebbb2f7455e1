"""Crash-safe training checkpoints that resume where training stopped.

A convection-diffusion network trains on random Brownian increments: the
diffusion noise eps of every `DiffusionNoise` layer comes from a seed
generator whose state is part of the training state. To resume a run exactly,
[`ResumableCheckpoint`][keras_cd.checkpoint.ResumableCheckpoint] saves that
state with the weights and the optimizer after every epoch, atomically and
committed by a SHA-256 manifest, and verifies it on restore;
[`save_model`][keras_cd.checkpoint.save_model] writes a `.keras` file
atomically.
"""

from __future__ import annotations

# First: a missing backend package gets an error that says how to fix it.
from keras_cd import _keras  # noqa: F401

# isort: split
import hashlib
import json
import os
import re
import tempfile
import warnings

import keras
import numpy as np

from keras_cd import _noise, _validation
from keras_cd._atomic import atomic_path

_PATTERN = re.compile(r"^epoch-(\d+)\.weights\.h5$")
_WEIGHTS = ".weights.h5"
_MANIFEST = ".manifest.json"

_STATE_GROUP = "keras_cd_training_state"
# 1: no manifest (earlier builds); 2: every checkpoint is committed by a SHA-256 manifest.
_FORMAT = 2


class _Corrupt(Exception):
    """A checkpoint that failed verification; the message says what failed."""


def _manifest_path(path):
    return path[: -len(_WEIGHTS)] + _MANIFEST


def _sha256(path):
    """Returns (hex SHA-256, size in bytes) of the file at `path`."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _read_arrays(handle):
    """Every dataset of a `.weights.h5` file outside the training state, read in full."""
    import h5py

    arrays = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and not name.startswith(_STATE_GROUP + "/"):
            arrays[name] = item[()]

    handle.visititems(visit)
    return arrays


def _non_finite(arrays):
    """Describes the arrays holding NaN or inf, e.g. ['layers/dense/vars/0 (2 NaN)']."""
    found = []
    for name, array in sorted(arrays.items()):
        array = np.asarray(array)
        if array.dtype.kind not in "fc":
            continue
        nan, inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        if nan or inf:
            counts = [f"{n} {what}" for n, what in ((nan, "NaN"), (inf, "inf")) if n]
            found.append(f"{name} ({', '.join(counts)})")
    return found


def _layout(arrays):
    return {name: (tuple(np.shape(a)), np.asarray(a).dtype.str) for name, a in arrays.items()}


def _expected_layout(model):
    """The datasets `model.save_weights` writes for this model: names, shapes, dtypes."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "reference" + _WEIGHTS)
        model.save_weights(path)
        import h5py

        with h5py.File(path, "r") as handle:
            return _layout(_read_arrays(handle))


def _layout_difference(found, expected):
    missing = sorted(set(expected) - set(found))
    if missing:
        return f"it lacks the dataset(s) {', '.join(missing)}"
    extra = sorted(set(found) - set(expected))
    if extra:
        return f"it holds unexpected dataset(s) {', '.join(extra)}"
    for name in sorted(expected):
        if found[name] != expected[name]:
            return (
                f"dataset {name} has shape {found[name][0]} and dtype {found[name][1]}, "
                f"the model needs shape {expected[name][0]} and dtype {expected[name][1]}"
            )
    return None


def _set_aside(path):
    """Renames `path` and its manifest to `*.corrupt` (then `*.corrupt-2`, ...); never deletes."""
    moved = []
    for source in (path, _manifest_path(path)):
        if not os.path.lexists(source):
            continue
        target, number = source + ".corrupt", 2
        while os.path.lexists(target):
            target, number = f"{source}.corrupt-{number}", number + 1
        os.rename(source, target)
        moved.append(target)
    return moved


def _without_names(value):
    if isinstance(value, dict):
        return {k: _without_names(v) for k, v in value.items() if k != "name"}
    if isinstance(value, (list, tuple)):
        return [_without_names(v) for v in value]
    return value


def _fingerprint(model):
    """Describes what must match for a checkpoint to restore into `model`.

    Its layers' classes and settings (auto-generated names aside), its
    variables' shapes and dtypes, and the optimizer's class, settings and
    variables. A constant learning rate is left out: it is a variable,
    restored with the weights (callbacks such as ReduceLROnPlateau change it).
    """

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
    """Saves the full training state atomically after every epoch, verified on restore.

    Each checkpoint holds, after `epoch` completed epochs, in
    `directory/epoch-XXXXX.weights.h5`: the model and optimizer variables
    (so also the step counter that drives learning-rate schedules), the
    states of every random seed generator (the noise of `DiffusionNoise`,
    dropout masks), and a fingerprint of the model and optimizer. It is
    written to a temporary sibling and renamed into place, then committed by
    `epoch-XXXXX.manifest.json` (the file's size and SHA-256, written
    atomically after it), so a run killed at any moment, even while saving,
    leaves the previous checkpoints intact. Unlike
    `keras.callbacks.BackupAndRestore`, which rewrites one weights file in
    place, a kill during the write cannot corrupt the only copy.

    A resumed run continues exactly as the uninterrupted run would when its
    data order is a function of the epoch, as
    `keras_cd.datasets.resumable_epochs` makes it:

    ```python
    checkpoint = keras_cd.checkpoint.ResumableCheckpoint("runs/ckpt")
    initial_epoch = checkpoint.restore(model)  # 0 on a fresh start
    data = keras_cd.datasets.resumable_epochs(
        examples, seed=0, epochs=30, initial_epoch=initial_epoch
    )
    model.fit(
        data.batch(128), epochs=30, initial_epoch=initial_epoch, callbacks=[checkpoint]
    )
    ```

    `restore` verifies a checkpoint before it touches the model: the bytes
    against the manifest, then every dataset (present, nothing extra, the
    shapes and dtypes the model needs, all values finite) and the seed
    states. A checkpoint that fails (bit flip, truncation, a missing
    dataset, NaN or inf, a folder in place of the file, a weights file whose
    manifest was never written) is corrupt: a warning names the file and what
    failed, the writing process renames it and its manifest to `*.corrupt`
    (never deletes them), and the previous checkpoint is tried; training
    then continues from the newest intact one and rewrites the epochs set
    aside. The assignment itself is all-or-nothing: if Keras still fails to
    load a verified file, every variable gets its previous value back.
    Checkpoints written before manifests existed are restored after the
    same content checks, with a warning that their bytes are unverified.

    Refused with a `ValueError`, never half-restored: a checkpoint written by
    a different model or optimizer (other layers, shapes, optimizer class or
    settings), a `directory` that is an existing file (when the callback is
    made, before any training), and training into a folder that already
    holds checkpoints newer than the one restored (start from `restore()`,
    or use a new folder). A model whose weights or optimizer state hold NaN
    or inf at the end of an epoch is never checkpointed: `fit` stops with a
    `FloatingPointError` and the newest checkpoint stays the last finite
    state. Pruning keeps the `keep` newest epochs, always including the one
    just written.

    Args:
        directory: str or path-like, folder of the checkpoints (created when
            needed).
        keep: int >= 1, how many of the newest checkpoints to keep.
            Defaults to `2`.
        write: bool, whether this process writes checkpoints. Under
            multi-worker training only the chief should write
            (`keras_cd.distribute.is_chief`), and only it sets corrupt
            checkpoints aside; every worker restores (and skips the same
            corrupt ones). Defaults to `True`.

    Raises:
        ValueError: if `keep` is not an int >= 1, `write` is not a bool, or
            `directory` is an existing file.

    Example:
        >>> import tempfile, numpy as np, keras, keras_cd
        >>> def build():
        ...     model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        ...     model.compile("sgd", "mse", run_eagerly=True)
        ...     return model
        >>> folder = tempfile.mkdtemp()
        >>> x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
        >>> model, checkpoint = build(), keras_cd.checkpoint.ResumableCheckpoint(folder)
        >>> checkpoint.restore(model)  # a fresh start
        0
        >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[checkpoint])
        >>> [epoch for epoch, _ in checkpoint.checkpoints()]
        [2, 1]
        >>> resumed = build()  # e.g. after the process was killed
        >>> keras_cd.checkpoint.ResumableCheckpoint(folder).restore(resumed)  # epochs done
        2
        >>> all(np.array_equal(a, b) for a, b in zip(model.get_weights(), resumed.get_weights()))
        True
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 2, write: bool = True) -> None:
        super().__init__()
        keep = _validation.positive_int("keep", keep, "Use keep=2 to keep the two newest.")
        self.directory = os.fspath(directory)
        self.keep = keep
        self.write = _validation.boolean("write", write)
        self.restored_epoch: int | None = None  # set by restore()
        self._check_directory()

    def _check_directory(self):
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise ValueError(
                "Invalid value for `directory`: expected a folder for the checkpoints (or a "
                "path where one can be created), but it is an existing file. Received: "
                f"directory={self.directory!r}. Move that file away, or pass another folder."
            )

    def checkpoints(self) -> list[tuple[int, str]]:
        """Lists the checkpoints in `directory`, newest first.

        Returns:
            A list of `(epoch, path)` pairs, `epoch` the number of completed
            epochs a checkpoint holds; empty when there is none (or no
            folder). Files set aside as `*.corrupt` are not listed.
        """
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in os.listdir(self.directory):
            match = _PATTERN.match(name)
            if match:
                found.append((int(match.group(1)), os.path.join(self.directory, name)))
        return sorted(found, reverse=True)

    def restore(self, model: keras.Model) -> int:
        """Loads the newest intact checkpoint into `model`.

        Checkpoints are tried newest first. One that fails verification (see
        the class docstring) is reported with a warning and, when this
        process writes (`write=True`), renamed to `*.corrupt`; the next older
        one is tried.

        Args:
            model: the compiled `keras.Model` to restore into.

        Returns:
            The number of completed epochs the restored checkpoint holds
            (pass it to `fit(initial_epoch=...)`), or 0 when there is none.

        Raises:
            ValueError: when `directory` is a file, or the newest intact
                checkpoint was written for another model or optimizer
                configuration, or by another tool.
        """
        self._check_directory()
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        current = _fingerprint(model)
        expected = None  # the datasets this model saves; worked out on the first candidate
        self.restored_epoch = 0
        corrupt = 0
        for epoch, path in self.checkpoints():
            if expected is None:
                expected = _expected_layout(model)
            try:
                seeds, verified = self._verify(path, model, current, expected)
                self._assign(model, path, seeds)
            except _Corrupt as error:
                corrupt += 1
                if self.write:
                    moved = _set_aside(path)
                    action = f"Set aside as {', '.join(map(repr, moved))} (not deleted)"
                else:
                    action = "Left in place: only the writing process (write=True) sets it aside"
                warnings.warn(
                    f"Corrupt checkpoint {path!r}: {error}. {action}; trying the previous "
                    "checkpoint.",
                    stacklevel=2,
                )
                continue
            if not verified:
                warnings.warn(
                    f"Checkpoint {path!r} has no manifest (written by keras_cd before "
                    "checkpoints carried a SHA-256), so its bytes are unverified; its datasets "
                    "were checked (complete, expected shapes, finite) and it is restored.",
                    stacklevel=2,
                )
            self.restored_epoch = epoch
            return epoch
        if corrupt:
            warnings.warn(
                f"No intact checkpoint left in {self.directory!r}: training starts from epoch 0.",
                stacklevel=2,
            )
        return 0

    def _verify(self, path, model, current, expected):
        """Checks a checkpoint without touching `model`.

        Returns `(seeds, verified)`: the seed states to assign, and whether a
        manifest vouched for the bytes. Raises `_Corrupt` for a damaged
        checkpoint, `ValueError` for one of another configuration or tool.
        """
        import h5py

        name = os.path.basename(path)
        manifest_path = _manifest_path(path)
        verified = os.path.lexists(manifest_path)
        if os.path.isdir(path):
            raise _Corrupt("it is a folder, not a file")
        if verified:
            try:
                with open(manifest_path) as handle:
                    manifest = json.load(handle)
                recorded = (manifest["file"], int(manifest["bytes"]), str(manifest["sha256"]))
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise _Corrupt(f"its manifest {manifest_path!r} is unreadable ({error})") from None
            if recorded[0] != name:
                raise _Corrupt(f"its manifest {manifest_path!r} is for {recorded[0]!r}")
            try:
                digest, size = _sha256(path)
            except OSError as error:
                raise _Corrupt(f"it cannot be read ({error})") from None
            if size != recorded[1]:
                raise _Corrupt(
                    f"it has {size} bytes, its manifest {recorded[1]} (truncated or extended)"
                )
            if digest != recorded[2]:
                raise _Corrupt(
                    f"its SHA-256 {digest[:12]}... differs from the manifest's "
                    f"{recorded[2][:12]}... (its bytes changed after it was written)"
                )
        try:
            with h5py.File(path, "r") as handle:
                state = handle.get(_STATE_GROUP)
                if state is not None:
                    written_format = int(state.attrs.get("format", 1))
                    saved = json.loads(state.attrs["fingerprint"])
                    group = state.get("seeds")
                    seeds = {key: group[key][()] for key in group} if group is not None else {}
                arrays = _read_arrays(handle)
        except Exception as error:  # h5py: truncated, not HDF5, unreadable objects
            raise _Corrupt(f"it cannot be read as HDF5 ({type(error).__name__}: {error})") from None
        if state is None:
            raise ValueError(
                f"Invalid checkpoint {path!r}: it holds no keras_cd training state (written "
                "by another tool, or by an early keras_cd), so the noise streams cannot be "
                "restored. Use a new directory, or load its weights with "
                "model.load_weights() and train without resuming."
            )
        if not verified and written_format >= 2:
            raise _Corrupt(
                f"its manifest {manifest_path!r} is missing (the writer stopped between the "
                "weights file and the manifest that commits it)"
            )
        if saved != current:
            raise ValueError(
                f"Invalid checkpoint {path!r} for this model: it was written by a "
                "different model or optimizer configuration "
                f"({_first_difference(saved, current)}). Resume with the configuration "
                "that wrote it, or point ResumableCheckpoint at a new directory."
            )
        difference = _layout_difference(_layout(arrays), expected)
        if difference:
            raise _Corrupt(difference)
        states = _noise.random_seed_states(model)
        wanted = {str(i): (tuple(v.shape), np.dtype(v.dtype).str) for i, v in enumerate(states)}
        difference = _layout_difference(_layout(seeds), wanted)
        if difference:
            raise _Corrupt(f"seed states: {difference}")
        bad = _non_finite(arrays)
        if bad:
            raise _Corrupt(f"non-finite values in {', '.join(bad)}")
        return [seeds[str(i)] for i in range(len(states))], verified

    @staticmethod
    def _assign(model, path, seeds):
        """Loads a verified checkpoint; on any failure every variable is put back."""
        variables = list(model.variables)
        if model.optimizer is not None:
            variables += list(model.optimizer.variables)
        previous = [v.numpy() for v in variables]
        try:
            model.load_weights(path)
            for variable, value in zip(_noise.random_seed_states(model), seeds):
                variable.assign(value)
        except Exception as error:
            for variable, value in zip(variables, previous):
                variable.assign(value)
            raise _Corrupt(f"Keras could not load it ({type(error).__name__}: {error})") from None

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Refuses to train into a folder holding checkpoints newer than the restored one.

        Raises:
            ValueError: if `directory` became a file, or holds checkpoints of
                epochs after the one this run starts from.
        """
        if not self.write:
            return
        self._check_directory()
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

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Writes the checkpoint of `epoch + 1` completed epochs, then prunes old ones.

        Raises:
            FloatingPointError: if the model or optimizer holds NaN or inf.
        """
        if not self.write:
            return
        import h5py

        completed = epoch + 1
        final = os.path.join(self.directory, f"epoch-{completed:05d}{_WEIGHTS}")
        manifest = _manifest_path(final)
        with atomic_path(final, suffix=_WEIGHTS) as temporary:
            self.model.save_weights(temporary)
            with h5py.File(temporary, "a") as handle:
                bad = _non_finite(_read_arrays(handle))
                if bad:
                    raise FloatingPointError(
                        f"Not checkpointing epoch {completed} in {self.directory!r}: the model "
                        f"or optimizer holds non-finite values ({', '.join(bad)}), and a "
                        "checkpoint must hold a state training can continue from. The newest "
                        f"checkpoint stays epoch {self.restored_epoch or 0}. Lower the learning "
                        "rate or clip gradients (e.g. clipnorm=1.0), then resume with "
                        "checkpoint.restore(model)."
                    )
                state = handle.create_group(_STATE_GROUP)
                state.attrs["fingerprint"] = json.dumps(_fingerprint(self.model))
                state.attrs["epoch"] = completed
                state.attrs["format"] = _FORMAT
                seeds = state.create_group("seeds")
                for index, variable in enumerate(_noise.random_seed_states(self.model)):
                    seeds[str(index)] = keras.ops.convert_to_numpy(variable)
            digest, size = _sha256(temporary)
            if os.path.lexists(manifest):  # a stale manifest must never commit the new file
                os.remove(manifest)
        # The commit point: until this manifest exists, the weights file counts as incomplete.
        with atomic_path(manifest, suffix=".json") as temporary:
            with open(temporary, "w") as handle:
                json.dump(
                    {
                        "format": _FORMAT,
                        "file": os.path.basename(final),
                        "epoch": completed,
                        "bytes": size,
                        "sha256": digest,
                    },
                    handle,
                    indent=1,
                )
        self.restored_epoch = completed
        others = [(number, path) for number, path in self.checkpoints() if number != completed]
        for _, path in others[self.keep - 1 :]:  # the one just written is always kept
            os.remove(path)
            if os.path.lexists(_manifest_path(path)):
                os.remove(_manifest_path(path))


def save_model(model: keras.Model, path: str | os.PathLike, overwrite: bool = True) -> None:
    """Saves `model` as `model.save(path)` does, atomically.

    The `.keras` file is written to a temporary sibling, flushed and renamed
    into place, so readers see the old file or the whole new one, and a kill
    while saving never leaves a truncated model.

    Args:
        model: the `keras.Model` to save.
        path: str or path-like, a file name ending in `.keras`.
        overwrite: bool, replace an existing file. Defaults to `True`.

    Raises:
        ValueError: if `path` does not end in `.keras`.
        FileExistsError: if `path` exists and `overwrite=False`.

    Example:
        >>> import os, tempfile, numpy as np, keras, keras_cd
        >>> inputs = keras.Input((3,))
        >>> model = keras.Model(inputs, keras_cd.layers.DiffusionNoise(0.5)(inputs))
        >>> path = os.path.join(tempfile.mkdtemp(), "model.keras")
        >>> keras_cd.checkpoint.save_model(model, path)
        >>> loaded = keras.saving.load_model(path)  # no custom_objects needed
        >>> type(loaded.layers[-1]).__name__, loaded.layers[-1].sigma
        ('DiffusionNoise', 0.5)
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        _validation.invalid("path", "a file name ending in .keras", path, "Use e.g. 'model.keras'.")
    with atomic_path(path, suffix=".keras", overwrite=overwrite) as temporary:
        model.save(temporary)

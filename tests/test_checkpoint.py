import hashlib
import json
import os
import shutil
import warnings

import h5py
import keras
import numpy as np
import pytest

from keras_cd import _noise
from keras_cd.checkpoint import ResumableCheckpoint


def small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")


def test_restores_weights_optimizer_state_and_epoch(tmp_path):
    x, y = data()
    model = small_model()
    checkpoint = ResumableCheckpoint(tmp_path, keep=2)
    model.fit(x, y, epochs=3, batch_size=8, callbacks=[checkpoint], verbose=0)
    assert [epoch for epoch, _ in checkpoint.checkpoints()] == [3, 2]  # pruned to two

    fresh = small_model()
    assert checkpoint.restore(fresh) == 3
    for saved, restored in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    assert int(fresh.optimizer.iterations) == 3 * 4
    for a, b in zip(model.optimizer.variables, fresh.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # momentum too


def test_each_checkpoint_is_committed_by_a_manifest_of_its_bytes(tmp_path):
    x, y = data()
    small_model().fit(x, y, epochs=2, callbacks=[ResumableCheckpoint(tmp_path)], verbose=0)
    assert sorted(os.listdir(tmp_path)) == [
        "epoch-00001.manifest.json",
        "epoch-00001.weights.h5",
        "epoch-00002.manifest.json",
        "epoch-00002.weights.h5",
    ]
    for epoch in (1, 2):
        weights = (tmp_path / f"epoch-{epoch:05d}.weights.h5").read_bytes()
        manifest = json.loads((tmp_path / f"epoch-{epoch:05d}.manifest.json").read_text())
        assert manifest["file"] == f"epoch-{epoch:05d}.weights.h5"
        assert manifest["epoch"] == epoch
        assert manifest["bytes"] == len(weights)
        assert manifest["sha256"] == hashlib.sha256(weights).hexdigest()


def test_fresh_start_restores_nothing(tmp_path):
    assert ResumableCheckpoint(tmp_path / "missing").restore(small_model()) == 0


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    x, y = data()
    model = small_model()
    checkpoint = ResumableCheckpoint(tmp_path)
    model.fit(x, y, epochs=1, batch_size=8, callbacks=[checkpoint], verbose=0)
    before = sorted(os.listdir(tmp_path))

    def crash(filepath, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"half a file")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(model, "save_weights", crash)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=2, initial_epoch=1, batch_size=8, callbacks=[checkpoint], verbose=0)
    assert sorted(os.listdir(tmp_path)) == before  # no partial file, no temporary left
    assert checkpoint.restore(small_model()) == 1


def test_unreadable_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    x, y = data()
    model = small_model()
    checkpoint = ResumableCheckpoint(tmp_path)
    model.fit(x, y, epochs=1, batch_size=8, callbacks=[checkpoint], verbose=0)
    (tmp_path / "epoch-00007.weights.h5").write_bytes(b"not hdf5")
    with pytest.warns(UserWarning, match="Corrupt checkpoint .*epoch-00007.* as HDF5"):
        assert checkpoint.restore(small_model()) == 1
    assert (tmp_path / "epoch-00007.weights.h5.corrupt").read_bytes() == b"not hdf5"


def test_non_writer_never_writes(tmp_path):
    x, y = data()
    small_model().fit(
        x, y, epochs=1, callbacks=[ResumableCheckpoint(tmp_path, write=False)], verbose=0
    )
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("keep", [0, -1, 1.5, True])
def test_bad_keep(keep, tmp_path):
    with pytest.raises(ValueError, match="Invalid value for `keep`"):
        ResumableCheckpoint(tmp_path, keep=keep)


# --- A resumed run is the uninterrupted run ----------------------------------------------


def noisy_model(units=6, optimizer="sgd"):
    import keras_cd

    inputs = keras.Input((3,))
    hidden = keras_cd.DenseCDBlock(units, sigma=0.5, seed=1)(inputs)
    hidden = keras.layers.Dropout(0.3, seed=2)(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    chosen = (
        keras.optimizers.SGD(0.05, momentum=0.9)
        if optimizer == "sgd"
        else keras.optimizers.Adam(0.01)
    )
    model.compile(optimizer=chosen, loss="mse")
    return model


def train(directory, epochs, resume, use_resumable_epochs=True):
    """One 'process': seeds set, a fresh model, optionally restored, trained to `epochs`."""
    import tensorflow as tf

    import keras_cd

    keras.utils.set_random_seed(0)
    model = noisy_model()
    checkpoint = ResumableCheckpoint(directory)
    initial_epoch = checkpoint.restore(model) if resume else 0
    examples = tf.data.Dataset.from_tensor_slices(data())
    if use_resumable_epochs:
        stream = keras_cd.datasets.resumable_epochs(
            examples, seed=0, epochs=epochs, initial_epoch=initial_epoch
        )
        stream = stream.map(lambda seed, example: example)
    else:
        stream = examples.shuffle(32, seed=0).repeat()
    model.fit(
        stream.batch(8),
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=4,
        callbacks=[checkpoint],
        verbose=0,
    )
    return model


def test_killed_and_resumed_run_equals_the_uninterrupted_one(tmp_path):
    straight = train(tmp_path / "straight", epochs=2, resume=False)
    train(tmp_path / "killed", epochs=1, resume=False)  # the process ends after epoch 1
    resumed = train(tmp_path / "killed", epochs=2, resume=True)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)

    seeds = _noise.random_seed_states  # random seeds, not the Monte-Carlo switches

    assert len(seeds(resumed)) == 2  # the CD block's noise and the dropout masks
    for a, b in zip(seeds(straight), seeds(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_plain_reshuffling_pipeline_replays_epoch_one_after_a_resume(tmp_path):
    # Why resumable_epochs exists: with shuffle(reshuffle_each_iteration) the resumed
    # process starts the data stream again, and the run diverges.
    straight = train(tmp_path / "straight", epochs=2, resume=False, use_resumable_epochs=False)
    train(tmp_path / "killed", epochs=1, resume=False, use_resumable_epochs=False)
    resumed = train(tmp_path / "killed", epochs=2, resume=True, use_resumable_epochs=False)
    assert any(
        np.abs(a - b).max() > 1e-6 for a, b in zip(straight.get_weights(), resumed.get_weights())
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"units": 7}, "different model or optimizer"),
        ({"optimizer": "adam"}, "different model or optimizer"),
    ],
)
def test_a_checkpoint_of_another_configuration_is_refused(tmp_path, change, message):
    x, y = data()
    model = noisy_model()
    model.fit(x, y, epochs=1, callbacks=[ResumableCheckpoint(tmp_path)], verbose=0)
    other = noisy_model(**change)
    with pytest.raises(ValueError, match=message):
        ResumableCheckpoint(tmp_path).restore(other)
    before = [np.copy(w) for w in other.get_weights()]
    for a, b in zip(before, other.get_weights()):  # nothing half-restored
        np.testing.assert_array_equal(a, b)


def test_training_into_a_folder_with_newer_checkpoints_is_refused(tmp_path):
    x, y = data()
    small_model().fit(x, y, epochs=3, callbacks=[ResumableCheckpoint(tmp_path)], verbose=0)
    with pytest.raises(ValueError, match="already holds checkpoints up to epoch 3.*restore"):
        small_model().fit(x, y, epochs=1, callbacks=[ResumableCheckpoint(tmp_path)], verbose=0)
    assert [e for e, _ in ResumableCheckpoint(tmp_path).checkpoints()] == [3, 2]  # untouched


def test_pruning_always_keeps_the_checkpoint_just_written(tmp_path):
    x, y = data()
    model = small_model()
    checkpoint = ResumableCheckpoint(tmp_path, keep=1)
    for epochs in (1, 2, 3):
        model.fit(x, y, epochs=epochs, initial_epoch=epochs - 1, callbacks=[checkpoint], verbose=0)
        assert [e for e, _ in checkpoint.checkpoints()] == [epochs]


def test_save_model_is_atomic_and_checks_the_name(tmp_path):
    import keras_cd

    model = small_model()
    keras_cd.checkpoint.save_model(model, tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = data()[0]
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert os.listdir(tmp_path) == ["m.keras"]
    with pytest.raises(ValueError, match="Invalid value for `path`"):
        keras_cd.checkpoint.save_model(model, tmp_path / "m.h5")


# --- Corrupt checkpoints: reported, set aside, and training continues ---------------------

EPOCHS = 3


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A straight 3-epoch run: its checkpoints (epochs 2 and 3) and its final weights."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    return folder, train(folder, epochs=EPOCHS, resume=False).get_weights()


def copy_of(uninterrupted, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted[0], run)
    return run


def newest(run):
    return str(run / f"epoch-{EPOCHS:05d}.weights.h5")


def manifest(path):
    return path.replace(".weights.h5", ".manifest.json")


def flip_a_bit(path):
    # The lowest mantissa bit of one kernel entry: the value stays finite and plausible.
    with h5py.File(path, "r") as handle:
        offset = handle["layers/dense/vars/0"].id.get_offset()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 1]))


def truncate(path):
    os.truncate(path, os.path.getsize(path) // 2)


def drop_a_dataset(path):
    with h5py.File(path, "a") as handle:
        del handle["layers/dense/vars/1"]


def drop_an_optimizer_dataset(path):
    # Keras itself only warns and skips the whole optimizer on a count mismatch.
    with h5py.File(path, "a") as handle:
        del handle["optimizer/vars/3"]


def write_inf(path):
    with h5py.File(path, "a") as handle:
        handle["layers/dense/vars/0"][0, 0] = np.inf


def folder_in_place(path):
    os.remove(path)
    os.mkdir(path)


def drop_the_manifest(path):  # a writer killed between the weights file and its manifest
    os.remove(manifest(path))


def garble_the_manifest(path):
    with open(manifest(path), "w") as handle:
        handle.write('{"file": ')


def as_written_before_manifests(run):
    """No manifests, no format mark: only the content checks stand between it and the model."""
    for _, path in ResumableCheckpoint(run).checkpoints():
        os.remove(manifest(path))
        with h5py.File(path, "a") as handle:
            del handle["keras_cd_training_state"].attrs["format"]


CORRUPTIONS = [
    # With a manifest, the bytes are checked first.
    (flip_a_bit, False, "SHA-256 .* differs from the manifest"),
    (truncate, False, r"it has \d+ bytes, its manifest \d+"),
    (drop_a_dataset, False, "SHA-256|bytes"),
    (write_inf, False, "SHA-256"),
    (folder_in_place, False, "it is a folder, not a file"),
    (drop_the_manifest, False, "manifest .* is missing"),
    (garble_the_manifest, False, "manifest .* is unreadable"),
    # Without one (an earlier build), the contents are checked: the checksum's cases too.
    (truncate, True, "cannot be read as HDF5"),
    (drop_a_dataset, True, "lacks the dataset.* layers/dense/vars/1"),
    (drop_an_optimizer_dataset, True, "lacks the dataset.* optimizer/vars/3"),
    (write_inf, True, r"non-finite values in layers/dense/vars/0 \(1 inf\)"),
]


@pytest.mark.parametrize(
    "corrupt, legacy, message",
    [
        pytest.param(*case, id=case[0].__name__ + ("-without-manifest" if case[1] else ""))
        for case in CORRUPTIONS
    ],
)
def test_a_corrupt_newest_checkpoint_is_set_aside_and_training_continues(
    uninterrupted, tmp_path, corrupt, legacy, message
):
    run = copy_of(uninterrupted, tmp_path)
    if legacy:
        as_written_before_manifests(run)
    corrupt(newest(run))
    with pytest.warns(UserWarning, match=f"Corrupt checkpoint .*epoch-00003.*: .*({message})"):
        resumed = train(run, epochs=EPOCHS, resume=True)  # epoch 3 again, from epoch 2
    for a, b in zip(uninterrupted[1], resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert os.path.lexists(newest(run) + ".corrupt")  # kept for inspection, never deleted
    assert [epoch for epoch, _ in ResumableCheckpoint(run).checkpoints()] == [3, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the rewritten epoch 3 is intact
        assert ResumableCheckpoint(run).restore(noisy_model()) == EPOCHS


def test_a_checkpoint_from_before_manifests_is_restored_unverified(uninterrupted, tmp_path):
    run = copy_of(uninterrupted, tmp_path)
    as_written_before_manifests(run)
    model = noisy_model()
    with pytest.warns(UserWarning, match="epoch-00003.* has no manifest .* unverified"):
        assert ResumableCheckpoint(run).restore(model) == EPOCHS
    for a, b in zip(uninterrupted[1], model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_corrupt_checkpoints_are_set_aside_never_deleted(uninterrupted, tmp_path):
    run = copy_of(uninterrupted, tmp_path)
    truncate(newest(run))
    with open(newest(run), "rb") as handle:
        truncated = handle.read()

    # A process that does not write (a multi-worker non-chief) skips it and leaves it alone.
    with pytest.warns(UserWarning, match="Left in place"):
        assert ResumableCheckpoint(run, write=False).restore(noisy_model()) == 2
    assert os.path.exists(newest(run))

    with pytest.warns(UserWarning, match="Set aside as"):
        assert ResumableCheckpoint(run).restore(noisy_model()) == 2
    with open(newest(run) + ".corrupt", "rb") as handle:
        assert handle.read() == truncated
    assert os.path.exists(manifest(newest(run)) + ".corrupt")

    with open(newest(run), "wb") as handle:  # corrupt again: a second name, nothing overwritten
        handle.write(b"again")
    with pytest.warns(UserWarning, match="Set aside"):
        assert ResumableCheckpoint(run).restore(noisy_model()) == 2
    with open(newest(run) + ".corrupt-2", "rb") as handle:
        assert handle.read() == b"again"

    truncate(str(run / "epoch-00002.weights.h5"))
    with pytest.warns(UserWarning, match="No intact checkpoint left .* epoch 0"):
        assert ResumableCheckpoint(run).restore(noisy_model()) == 0


def test_a_failed_load_puts_every_variable_back(uninterrupted, tmp_path, monkeypatch):
    run = copy_of(uninterrupted, tmp_path)
    model = noisy_model()
    model.optimizer.build(model.trainable_variables)
    variables = model.variables + model.optimizer.variables
    before = [v.numpy() for v in variables]
    load_weights = model.load_weights

    def load_then_fail(path, *args, **kwargs):
        load_weights(path, *args, **kwargs)  # every variable overwritten, then a failure
        raise OSError("the disk went away")

    monkeypatch.setattr(model, "load_weights", load_then_fail)
    with pytest.warns(UserWarning, match="Keras could not load it .*the disk went away"):
        assert ResumableCheckpoint(run, write=False).restore(model) == 0
    assert any(not np.array_equal(a, b) for a, b in zip(before, uninterrupted[1]))
    for a, b in zip(before, variables):
        np.testing.assert_array_equal(a, b.numpy())


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    x, y = data()
    model = small_model()
    checkpoint = ResumableCheckpoint(tmp_path)
    model.fit(x, y, epochs=1, batch_size=8, callbacks=[checkpoint], verbose=0)
    kernel = model.layers[0].kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    with pytest.raises(
        FloatingPointError,
        match=r"Not checkpointing epoch 2 .*non-finite values \(layers/dense/vars/0 \(12 NaN\)"
        r".*stays epoch 1",
    ):
        model.fit(x, y, epochs=2, initial_epoch=1, batch_size=8, callbacks=[checkpoint], verbose=0)
    assert sorted(os.listdir(tmp_path)) == ["epoch-00001.manifest.json", "epoch-00001.weights.h5"]
    assert checkpoint.restore(small_model()) == 1


def test_a_file_in_place_of_the_folder_is_refused_before_training(tmp_path):
    path = tmp_path / "checkpoints"
    path.write_text("not a folder")
    with pytest.raises(
        ValueError, match=r"Invalid value for `directory`: expected a folder.*Received: directory="
    ):
        ResumableCheckpoint(path)

    later = tmp_path / "later"  # the file appears after the callback was made
    checkpoint = ResumableCheckpoint(later)
    later.write_text("not a folder")
    model = small_model()
    with pytest.raises(ValueError, match="existing file"):
        checkpoint.restore(model)
    x, y = data()
    with pytest.raises(ValueError, match="existing file"):
        model.fit(x, y, epochs=1, callbacks=[checkpoint], verbose=0)
    assert int(model.optimizer.iterations) == 0  # refused before the first step

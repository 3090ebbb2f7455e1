import os

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
    with pytest.warns(UserWarning, match="Skipping unreadable checkpoint"):
        assert checkpoint.restore(small_model()) == 1


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

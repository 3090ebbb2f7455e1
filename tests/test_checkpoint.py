import os

import keras
import numpy as np
import pytest

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
    small_model().fit(x, y, epochs=1, callbacks=[ResumableCheckpoint(tmp_path, write=False)], verbose=0)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("keep", [0, -1, 1.5, True])
def test_bad_keep(keep, tmp_path):
    with pytest.raises(ValueError, match="Invalid value for `keep`"):
        ResumableCheckpoint(tmp_path, keep=keep)

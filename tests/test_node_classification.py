"""keras_cd.node_classification: the COIN trainer that examples and benchmarks share."""

import numpy as np
import pytest

from keras_cd import datasets
from keras_cd.node_classification import NodeClassificationTrainer
from tests.examples.test_train_graph import planted_partition


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return datasets.load_gnnbench(planted_partition(tmp_path_factory.mktemp("g") / "toy.npz"))


def test_learns_and_is_reproducible_run_by_run(data):
    trainer = NodeClassificationTrainer(data, num_steps=5, sigma2=0.3, max_epochs=60, patience=10)
    first = trainer.run(0, 0)
    other = trainer.run(1, 1)
    again = trainer.run(0, 0)  # a run does not depend on the runs before it
    assert first.test_accuracy > 0.6  # chance: 1/3
    assert (again.test_accuracy, again.epochs) == (first.test_accuracy, first.epochs)
    assert 0 < first.validation_accuracy <= 1 and first.seconds > 0
    fresh = NodeClassificationTrainer(data, num_steps=5, sigma2=0.3, max_epochs=60, patience=10)
    assert fresh.run(1, 1).test_accuracy == other.test_accuracy  # and not on the trainer


def test_weight_decay_is_the_models_regularization_loss(data):
    trainer = NodeClassificationTrainer(data, num_steps=2, weight_decay=1e-2, max_epochs=1)
    kernel = trainer.model.get_layer("base").kernel
    readout = trainer.model.get_layer("base").readout
    expected = 1e-2 / 2 * (np.sum(np.square(kernel)) + np.sum(np.square(readout)))
    assert float(sum(trainer.model.losses)) == pytest.approx(expected, rel=1e-5)
    first_only = NodeClassificationTrainer(
        data, num_steps=2, weight_decay=1e-2, readout_weight_decay=0.0, max_epochs=1
    )
    assert len(first_only.model.losses) == 1


def test_bad_settings(data):
    with pytest.raises(ValueError, match="Invalid value for `patience`"):
        NodeClassificationTrainer(data, patience=0)

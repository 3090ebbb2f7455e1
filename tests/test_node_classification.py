"""keras_cd.node_classification: the harness that examples and benchmarks share."""

import json

import numpy as np
import pytest

from keras_cd import _backend, datasets, graph
from keras_cd import node_classification as nc
from keras_cd.node_classification import NodeClassificationTrainer
from keras_cd.node_classification.trainer import _metrics
from tests.diverging import diverging as diverging_trainer
from tests.examples.test_train_graph import planted_partition

# A plain TensorFlow graph, not XLA: quicker to build for the few runs of a test
# (the XLA path is what test_learns_and_is_reproducible_run_by_run and the Cora
# test use).
FAST = {"max_epochs": 60, "patience": 10, "jit_compile": False}
XLA = {**FAST, "jit_compile": True}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return datasets.load_gnnbench(planted_partition(tmp_path_factory.mktemp("g") / "toy.npz"))


def test_learns_and_is_reproducible_run_by_run(data):
    trainer = NodeClassificationTrainer(data, num_steps=5, sigma2=0.3, **XLA)
    first = trainer.run(0, 0)
    other = trainer.run(1, 1)
    again = trainer.run(0, 0)  # a run does not depend on the runs before it
    assert first.test_accuracy > 0.6  # chance: 1/3
    assert (again.test_accuracy, again.epochs) == (first.test_accuracy, first.epochs)
    assert 0 < first.validation_accuracy <= 1 and first.seconds > 0
    fresh = NodeClassificationTrainer(data, num_steps=5, sigma2=0.3, **XLA)
    assert fresh.run(1, 1).test_accuracy == other.test_accuracy  # and not on the trainer
    plain = NodeClassificationTrainer(data, num_steps=5, sigma2=0.3, **FAST).run(1, 1)
    assert plain.epochs == other.epochs  # XLA or not, the same run
    assert plain.test_accuracy == pytest.approx(other.test_accuracy, abs=0.02)


@pytest.mark.parametrize(
    "method, settings, minimum",
    [
        # The base network reads the features only: 0.53 to 0.70 over seeds (chance 1/3).
        ("coin", {"num_steps": 0}, 0.45),
        ("coin", {"scheme": "implicit", "num_steps": 2, "sigma2": 1.0}, 0.6),
        ("coin", {"trainable_sigma2": True, "num_steps": 5, "sigma2": 0.3}, 0.6),
        ("appnp", {}, 0.6),
        ("sgc", {}, 0.6),
    ],
)
def test_every_method_learns(data, method, settings, minimum):
    result = NodeClassificationTrainer(data, method, **FAST, **settings).run(0, 0)
    assert result.test_accuracy > minimum, (method, settings, result)


def test_training_reads_the_exact_diffusion_rows(data):
    """The model trained on P[train] and evaluated with the exact P on the whole
    graph gives the same probabilities as the layer model (GraphDiffusion)."""
    from keras import ops

    from keras_cd.models import coin_classifier

    trainer = NodeClassificationTrainer(data, num_steps=5, sigma2=0.3, **FAST)
    trainer.run(0, 0)
    layered = coin_classifier(
        data.features.shape[1],
        data.num_classes,
        num_steps=5,
        sigma2=0.3,
        sparse_features=_backend.supports_sparse(),
    )
    layered.set_weights(trainer.model.get_weights())
    edges = [ops.convert_to_tensor(a) for a in graph.laplacian(data.adjacency, "coin")]
    expected = ops.convert_to_numpy(layered([trainer.method.features, *edges]))
    np.testing.assert_allclose(trainer.method.predict(trainer.model), expected, atol=2e-6)
    rows = np.array([0, 7, 42])
    inputs = [trainer.method.features, ops.convert_to_tensor(trainer.method.rows(rows))]
    outputs = ops.convert_to_numpy(trainer.model(inputs))
    np.testing.assert_allclose(outputs, expected[rows], atol=2e-6)


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


def test_early_stopping_keeps_the_weights_of_the_lowest_validation_loss(data):
    trainer = NodeClassificationTrainer(
        data,
        num_steps=3,
        sigma2=0.3,
        learning_rate=0.05,
        max_epochs=300,
        patience=5,
        jit_compile=False,
    )
    result = trainer.run(2, 0)
    losses = np.array(trainer.history["validation_loss"])
    accuracies = np.array(trainer.history["validation_accuracy"])
    assert result.epochs == len(losses) < 300  # stopped early
    # It stopped after the first 5 epochs in a row in which neither improved.
    improved = [True] + [
        losses[e] < losses[:e].min() or accuracies[e] > accuracies[:e].max()
        for e in range(1, len(losses))
    ]
    waited = [e - max(i for i in range(e + 1) if improved[i]) for e in range(len(improved))]
    assert waited[-1] == 5 and max(waited[:-1]) < 5
    # The model holds the weights of the lowest validation loss.
    _, (_, (inputs, targets)) = trainer._split_inputs(2)
    loss, _ = _metrics(trainer.model(inputs, training=False), targets)
    assert float(loss) == pytest.approx(losses.min(), rel=1e-6)
    assert losses.argmin() < len(losses) - 1


def test_two_workers_give_the_same_runs_as_one(data):
    trainer = NodeClassificationTrainer(data, num_steps=3, sigma2=0.3, **FAST)
    one = nc.run_protocol(trainer, 3, 2, seed=1, workers=1)
    two = nc.run_protocol(trainer, 3, 2, seed=1, workers=2)
    assert one.accuracies == two.accuracies and one.epochs == two.epochs
    assert one.split_seeds == [1, 1, 2, 2, 3, 3] and one.init_seeds == [
        1000,
        1001,
        1002,
        1003,
        1004,
        1005,
    ]
    assert one.runs == 6 and one.summary().endswith("over 6 runs")


def diverging(init_seeds):
    """The NodeClassificationTrainer whose runs of `init_seeds` diverge (tests/diverging.py)."""
    return diverging_trainer(NodeClassificationTrainer, init_seeds)


def test_a_run_nan_from_the_first_epoch_fails_by_name_not_with_the_last_runs_weights(data):
    trainer = diverging({1})(data, num_steps=3, sigma2=0.3, **FAST)
    good = trainer.run(0, 0)
    with pytest.raises(nc.RunFailedError) as failure:
        trainer.run(0, 1)
    assert "Run (split_seed=0, init_seed=1) failed at epoch 1: validation loss = nan" in str(
        failure.value
    )
    assert failure.value.record() == {
        "split_seed": 0,
        "init_seed": 1,
        "epoch": 1,
        "reason": "validation loss = nan",
    }
    # The model holds the failed run's own initial weights, never run (0, 0)'s best.
    for weight, fresh in zip(
        trainer.model.trainable_weights, trainer.method.build(1).trainable_weights
    ):
        np.testing.assert_array_equal(np.asarray(weight), np.asarray(fresh))
    again = trainer.run(0, 0)
    assert (again.test_accuracy, again.epochs) == (good.test_accuracy, good.epochs)


def test_a_nan_feature_fails_the_run_and_so_do_non_finite_final_predictions(data):
    test_node = datasets.random_split(data.labels, seed=0)[2][0]
    features = data.features.tolil()
    features[test_node, 0] = np.nan  # reaches every weight through X^T dY (0 * NaN)
    poisoned = datasets.GraphData(**{**data.__dict__, "features": features.tocsr()})
    trainer = NodeClassificationTrainer(poisoned, num_steps=0, **FAST)
    # (XLA on TensorFlow keeps this training loss finite, JAX does not: either way epoch 1.)
    expected = r"init_seed=0\) failed at epoch 1: (training loss = nan, )?validation loss = nan"
    with pytest.raises(nc.RunFailedError, match=expected):
        trainer.run(0, 0)
    # Training healthy, but the exact evaluation on the whole graph not finite at a
    # test node: the run fails too (and validation alone never reads that node).
    trainer = NodeClassificationTrainer(data, num_steps=0, **FAST)
    exact = trainer.method.predict

    def predict(model):
        probabilities = np.array(exact(model))
        probabilities[test_node] = np.nan
        return probabilities

    trainer.method.predict = predict
    with pytest.raises(nc.RunFailedError, match=r"epoch \d+: the final predictions are not finite"):
        trainer.run(0, 0)
    assert np.isfinite(trainer.run(0, 0, evaluate_test=False).validation_accuracy)


def test_the_protocol_records_failed_runs_and_never_averages_them(data):
    trainer = diverging({1001})(data, num_steps=3, sigma2=0.3, **FAST)
    result = nc.run_protocol(trainer, 2, 2, seed=1)  # inits 1000 .. 1003
    assert result.failed == [
        {"split_seed": 1, "init_seed": 1001, "epoch": 1, "reason": "validation loss = nan"}
    ]
    assert list(zip(result.split_seeds, result.init_seeds)) == [(1, 1000), (2, 1002), (2, 1003)]
    expected = [trainer.run(s, i) for s, i in zip(result.split_seeds, result.init_seeds)]
    assert result.accuracies == [100 * r.test_accuracy for r in expected]
    assert result.epochs == [r.epochs for r in expected]
    assert result.runs == 3 and result.mean == pytest.approx(np.mean(result.accuracies))
    assert result.summary().endswith("over 3 runs (1 failed, split/init 1/1001: not averaged)")
    two = nc.run_protocol(trainer, 2, 2, seed=1, workers=2)
    assert (two.accuracies, two.failed) == (result.accuracies, result.failed)
    with pytest.raises(nc.RunFailedError, match="init_seed=1001"):
        nc.run_protocol(trainer, 2, 2, seed=1, on_failure="raise")
    with pytest.raises(ValueError, match="Invalid value for `on_failure`"):
        nc.run_protocol(trainer, 2, 2, on_failure="skip")


def test_the_search_never_averages_a_failed_run_and_ranks_its_setting_last(data):
    space = [{"num_steps": [2], "sigma2": [0.3], "learning_rate": [1e30, 0.01]}]
    result = nc.search(data, "coin", space=space, num_trials=2, num_splits=2, **FAST)
    assert [t["settings"]["learning_rate"] for t in result.trials] == [0.01, 1e30]
    assert result.settings["learning_rate"] == 0.01 and result.trials[0]["failed"] == []
    last = result.trials[1]
    assert last["validation_accuracy"] is None and len(last["failed"]) == 2
    assert {f["epoch"] for f in last["failed"]} == {1}
    with pytest.raises(nc.RunFailedError, match="Every run of all 1 settings failed"):
        nc.search(data, "coin", space=[{"learning_rate": [1e30]}], num_trials=1, **FAST)


def test_model_selection_never_reads_a_test_label(data, tmp_path, monkeypatch):
    """Shuffling the labels of every node outside the search splits' training and
    validation sets changes nothing the search sees or chooses. (The splits are
    kept: the protocol draws 20 training nodes per class, which needs every
    node's class, so they are drawn from the true labels in both searches.)"""
    space = [{"num_steps": [2, 5], "sigma2": [0.1, 0.3], "dropout": [0.3, 0.5]}]
    kwargs = dict(space=space, num_trials=3, num_splits=2, seed=7, **FAST)
    result = nc.search(data, "coin", **kwargs)
    seen = np.concatenate(
        [
            np.concatenate(datasets.random_split(data.labels, seed=s)[:2])
            for s in result.config["split_seeds"]
        ]
    )
    unseen = np.setdiff1d(np.arange(data.labels.size), seen)
    shuffled = datasets.GraphData(**{**data.__dict__, "labels": data.labels.copy()})
    shuffled.labels[unseen] = np.random.default_rng(0).permutation(shuffled.labels[unseen])
    assert not np.array_equal(shuffled.labels, data.labels)
    draw = datasets.random_split
    monkeypatch.setattr(datasets, "random_split", lambda labels, seed: draw(data.labels, seed=seed))
    again = nc.search(shuffled, "coin", **kwargs)
    assert again.trials == [
        {**t, "seconds": a["seconds"]} for t, a in zip(result.trials, again.trials)
    ]
    assert again.settings == result.settings
    assert result.trials[0]["validation_accuracy"] >= result.trials[-1]["validation_accuracy"]
    assert len(result.trials) == 3 and all(not t["settings"]["sigma2"] > 0.3 for t in result.trials)
    # The chosen setting is saved and read back for a rerun.
    path = tmp_path / "setting.json"
    result.save(path)
    assert nc.load_setting(path) == ("coin", result.settings)
    assert json.loads(path.read_text())["search"]["num_trials"] == 3


def test_the_search_skips_unstable_explicit_settings(data):
    lambda_max = graph.largest_eigenvalue(graph.laplacian(data.adjacency, "coin", format="scipy"))
    unstable = 2.5 / lambda_max
    space = [{"scheme": ["explicit"], "num_steps": [3], "sigma2": [0.1, unstable]}]
    result = nc.search(data, "coin", space=space, num_trials=5, num_splits=1, **FAST)
    assert [t["settings"]["sigma2"] for t in result.trials] == [0.1]


def test_bad_settings(data, tmp_path):
    with pytest.raises(ValueError, match="Invalid value for `patience`"):
        NodeClassificationTrainer(data, patience=0)
    with pytest.raises(ValueError, match=r"Invalid setting for method 'sgc': \['hidden_units'\]"):
        NodeClassificationTrainer(data, "sgc", hidden_units=3)
    with pytest.raises(ValueError, match="Invalid value for `method`"):
        NodeClassificationTrainer(data, "gat")
    with pytest.raises(ValueError, match="Invalid value for `learning_rate`"):
        NodeClassificationTrainer(data, learning_rate=0)
    with pytest.raises(ValueError, match="Invalid value for `space`"):
        nc.search(data, space={"sigma2": [0.1]})
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="Invalid setting file"):
        nc.load_setting(tmp_path / "bad.json")


def test_label_overlap_counts_the_test_nodes_a_search_read():
    """A split's own test set shares nothing with its training and validation
    nodes; another split's test set shares exactly the nodes counted by hand."""
    from keras_cd import datasets

    labels = np.repeat(np.arange(3), 80)
    assert nc.label_overlap(labels, [5], [5]).tolist() == [0.0]
    read = np.concatenate(
        [np.concatenate(datasets.random_split(labels, seed=s)[:2]) for s in (7, 9)]
    )
    expected = [np.isin(datasets.random_split(labels, seed=s)[2], read).mean() for s in (3, 7)]
    np.testing.assert_allclose(nc.label_overlap(labels, [7, 9], [3, 7]), expected)
    assert 0 < expected[1] < expected[0] < 1  # split 7's test nodes: only split 9's reads


CORA_RUNS = """
import json, sys
from keras_cd import datasets
from keras_cd import node_classification as nc
data = datasets.load_gnnbench(sys.argv[1])
trainer = nc.NodeClassificationTrainer(data)  # the paper's reference COIN
first = nc.run_protocol(trainer, 2, 2, workers=2)  # accuracies in percent
again = trainer.run(first.split_seeds[0], first.init_seeds[0])
print("RESULT " + json.dumps({"accuracies": first.accuracies, "failed": len(first.failed),
      "again": 100 * again.test_accuracy}))
"""


@pytest.mark.slow
def test_the_cora_protocol_agrees_across_backends(cora_path):
    """The reference COIN on Cora, 2 splits x 2 inits on each backend (same seeds):
    every backend reproduces its own runs exactly, and the mean test accuracies
    agree within the seed spread (a 3-sigma test on the difference of means;
    the backends' random streams differ, so runs are not equal one by one)."""
    import os
    import subprocess
    import sys

    results = {}
    for backend in ("tensorflow", "jax", "torch"):
        pytest.importorskip(backend)
        env = {**os.environ, "KERAS_BACKEND": backend, "OMP_NUM_THREADS": "1"}
        child = subprocess.run(
            [sys.executable, "-c", CORA_RUNS, str(cora_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert child.returncode == 0, child.stderr[-3000:]
        line = next(x for x in child.stdout.splitlines() if x.startswith("RESULT "))
        results[backend] = json.loads(line[len("RESULT ") :])
    for backend, result in results.items():
        assert result["failed"] == 0 and len(result["accuracies"]) == 4, backend
        assert result["again"] == pytest.approx(result["accuracies"][0], abs=1e-9), backend
        assert np.mean(result["accuracies"]) > 78, (backend, result)
    reference = np.array(results["tensorflow"]["accuracies"])
    for backend, result in results.items():
        other = np.array(result["accuracies"])
        spread = np.sqrt(reference.var(ddof=1) / 4 + other.var(ddof=1) / 4)
        assert abs(other.mean() - reference.mean()) <= 3 * spread + 1e-9, (backend, results)

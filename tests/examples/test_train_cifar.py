"""examples/train_cifar.py end to end, offline, under tfds.testing.mock_data."""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip(
    "tensorflow_datasets", reason="needs the `data` extra: pip install -e '.[data]'"
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "examples", "train_cifar.py")
SMALL = [
    "--depth",
    "8",
    "--batch-size",
    "8",
    "--steps-per-epoch",
    "2",
    "--eval-steps",
    "2",
    "--mc-samples",
    "2",
    "--verbose",
    "2",
]


def command(argv, num_examples=48):
    # The strategy is made before mock_data touches TensorFlow, as the script
    # itself does: logical devices and collectives must be set at start-up.
    runner = textwrap.dedent(
        f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("train_cifar", {SCRIPT!r})
        script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(script)
        argv = {list(argv)!r}
        strategy = script.make_strategy(script.parse_args(argv))
        script.make_strategy = lambda args: strategy
        import tensorflow_datasets as tfds
        with tfds.testing.mock_data(num_examples={num_examples}):
            script.main(argv)
        """
    )
    return [sys.executable, "-c", runner]


def run(argv, env=None, timeout=300):
    result = subprocess.run(
        command(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


def run_here(argv, num_examples=48):
    """`main(argv)` in this interpreter under mock CIFAR-10 (default strategy only:
    logical devices and clusters need a fresh process, `run`)."""
    import tensorflow_datasets as tfds

    from tests.scripts import run_main

    with tfds.testing.mock_data(num_examples=num_examples):
        result = run_main("examples/train_cifar.py", *argv)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


def load_results(model_dir):
    with open(os.path.join(model_dir, "results.json")) as handle:
        return json.load(handle)


def test_end_to_end_on_mock_cifar10(tmp_path):
    import keras

    import keras_cd

    stdout = run_here(SMALL + ["--epochs", "2", "--model-dir", str(tmp_path)])
    assert "test accuracy (deterministic):" in stdout
    assert "test accuracy (Monte-Carlo, 2 samples):" in stdout
    results = load_results(tmp_path)
    assert set(results) >= {"test_accuracy", "monte_carlo_accuracy", "train_seconds"}
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert sum(isinstance(layer, keras_cd.CDBlock) for layer in model.layers) == 3
    assert int(model.optimizer.iterations) == 2 * 2
    assert os.listdir(tmp_path / "logs")  # TensorBoard events


def test_the_pipeline_learns_on_real_images(tmp_path):
    # Mock CIFAR-10 has random labels; scikit-learn's digits (offline) show that the
    # script's whole pipeline (augmentation, schedule, weight decay) actually learns.
    stdout = run_here(
        [
            "--dataset",
            "digits",
            "--depth",
            "8",
            "--epochs",
            "8",
            "--batch-size",
            "32",
            "--mc-samples",
            "2",
            "--verbose",
            "0",
            "--model-dir",
            str(tmp_path),
        ]
    )
    results = load_results(tmp_path)
    # Measured 0.97 / 0.97; chance is 0.1.
    assert results["test_accuracy"] > 0.8 and results["monte_carlo_accuracy"] > 0.8, stdout


@pytest.mark.slow
def test_the_script_trains_and_resumes_on_the_jax_backend(tmp_path):
    pytest.importorskip("jax", reason="needs JAX (pip install jax)")
    argv = [
        "--dataset",
        "digits",
        "--depth",
        "8",
        "--batch-size",
        "32",
        "--mc-samples",
        "2",
        "--verbose",
        "0",
        "--model-dir",
        str(tmp_path),
    ]
    stdout = run(argv + ["--epochs", "8"], env={"KERAS_BACKEND": "jax"})
    assert "strategy SingleDevice with 1 replica(s)" in stdout
    first = load_results(tmp_path)
    assert first["test_accuracy"] > 0.8 and first["monte_carlo_accuracy"] > 0.8, stdout
    # The same command again restores the last checkpoint (weights, optimizer, seeds)
    # and has nothing left to train: the same deterministic accuracy.
    again = run(argv + ["--epochs", "8"], env={"KERAS_BACKEND": "jax"})
    assert "resuming from the checkpoint after epoch 8" in again
    assert load_results(tmp_path)["test_accuracy"] == first["test_accuracy"]


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    stdout = run(
        SMALL
        + [
            "--epochs",
            "1",
            "--strategy",
            "mirrored",
            "--cpu-replicas",
            "2",
            "--model-dir",
            str(tmp_path),
        ]
    )
    assert "MirroredStrategy with 2 replica(s); global batch 16" in stdout
    assert load_results(tmp_path)["epochs"] == 1


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_with_two_workers(tmp_path):
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                command(
                    SMALL
                    + [
                        "--epochs",
                        "1",
                        "--strategy",
                        "multiworker",
                        "--sigma",
                        "1e-6",
                        "--model-dir",
                        str(tmp_path),
                    ]
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
            )
        )
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=300)
            outputs.append(stdout)
            assert process.returncode == 0, stdout[-3000:] + stderr[-5000:]
    finally:
        for process in processes:
            process.kill()
    for stdout in outputs:
        # tf.distribute.MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy.
        assert "CollectiveAllReduceStrategy with 2 replica(s); global batch 16" in stdout
    assert "saved" in outputs[0] and "saved" not in outputs[1]  # only the chief writes
    assert (tmp_path / "model.keras").exists()
    # With negligible noise the Monte-Carlo mean predicts what the deterministic pass does,
    # so both accuracies agree exactly when every prediction meets its own label.
    results = load_results(tmp_path)
    assert results["monte_carlo_accuracy"] == results["test_accuracy"]


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch(tmp_path):
    import keras

    import keras_cd  # noqa: F401  (registers the layers that load_model reads)

    epochs, steps = 40, 2
    argv = SMALL + ["--epochs", str(epochs), "--mc-samples", "0", "--model-dir", str(tmp_path)]
    process = subprocess.Popen(command(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "checkpoints"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        # A checkpoint counts once its manifest, the commit point, is written.
        if checkpoints.is_dir() and any(
            n.endswith(".manifest.json") for n in os.listdir(checkpoints)
        ):
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "model.keras").exists()

    stdout = run(argv)
    resumed = load_results(tmp_path)["resumed_from_epoch"]
    assert 1 <= resumed < epochs
    assert f"resuming from the checkpoint after epoch {resumed}" in stdout
    assert f"Epoch {resumed + 1}/{epochs}" in stdout and "Epoch 1/" not in stdout
    # Nothing lost, nothing repeated: the optimizer made exactly epochs x steps updates.
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert int(model.optimizer.iterations) == epochs * steps
    # And the resumed run IS the uninterrupted one: same batches, augmentation and noise.
    straight_dir = tmp_path / "straight"
    run(SMALL + ["--epochs", str(epochs), "--mc-samples", "0", "--model-dir", str(straight_dir)])
    straight = keras.saving.load_model(straight_dir / "model.keras")
    for a, b in zip(straight.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def load_script_module():
    spec = importlib.util.spec_from_file_location("train_cifar", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_dataset_fails_fast_with_instructions(tmp_path, monkeypatch):
    script = load_script_module()

    def unreachable(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    args = script.parse_args(["--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as info:
        script.load_cifar10(args)
    message = str(info.value)
    assert "CIFAR-10 is not prepared" in message and "unreachable" in message
    assert "--data-dir" in message and "--dataset digits" in message
    args = script.parse_args(["--data-dir", str(tmp_path), "--no-download"])
    with pytest.raises(SystemExit, match="--no-download was given"):
        script.load_cifar10(args)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--depth", "21"], "--depth must be 6n"),
        (["--sigma", "-1"], "--sigma must be"),
        (["--epochs", "0"], "--epochs must be"),
        (["--strategy", "gpu"], "invalid choice"),
    ],
)
def test_bad_flags_are_rejected(argv, message, capsys):
    script = load_script_module()
    with pytest.raises(SystemExit):
        script.parse_args(argv)
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_monte_carlo_accuracy_under_multi_worker_meets_each_label(tmp_path):
    # Labels ARE the deterministic predictions, so the score is 1.0 exactly when every
    # Monte-Carlo prediction (negligible noise) is compared with its own label,
    # whatever order the strategy's sharding gives the test set.
    runner = textwrap.dedent(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("train_cifar", {SCRIPT!r})
        script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(script)
        strategy = script.make_strategy(script.parse_args(["--strategy", "multiworker"]))
        import keras, numpy as np, tensorflow as tf, keras_cd
        x = np.random.default_rng(0).normal(size=(60, 4, 4, 1)).astype("float32")
        with strategy.scope():
            inputs = keras.Input((4, 4, 1))
            hidden = keras_cd.DiffusionNoise(1e-6, seed=0)(keras.layers.Flatten()(inputs))
            model = keras.Model(inputs, keras.layers.Dense(
                10, activation="softmax",
                kernel_initializer=keras.initializers.GlorotUniform(1))(hidden))
        labels = model.predict(x, verbose=0).argmax(-1)
        test = tf.data.Dataset.from_tensor_slices((x, labels)).batch(8)
        print("classes", len(set(labels.tolist())))
        with strategy.scope():
            averaged = keras_cd.inference.feynman_kac_model(model, 2)
            averaged.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        with keras_cd.monte_carlo():
            print("accuracy", averaged.evaluate(test, verbose=0)[1])
        """)
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", runner],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
                ),
            },
        )
        for index in range(2)
    ]
    try:
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stdout[-2000:] + stderr[-4000:]
        assert "classes 10" in stdout  # predictions vary: a misaligned label would show
        assert "accuracy 1.0" in stdout, stdout

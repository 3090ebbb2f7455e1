"""examples/forecast_covid.py end to end on a synthetic file, through its `main(argv)`."""

import importlib.util
import json
import os
import re

import pytest

from tests.datasets.test_england_covid import write_covid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "examples", "forecast_covid.py")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("forecast_covid", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return str(write_covid(tmp_path_factory.mktemp("covid") / "covid.json"))


def test_end_to_end_on_a_synthetic_dataset(script, data, tmp_path, capsys):
    argv = ["--data", data, "--num-splits", "2", "--num-inits", "2", "--epochs", "20"]
    argv += ["--missing-rate", "0.8", "--plot", str(tmp_path / "plot.png"), "--no-jit-compile"]
    script.main(argv + ["--output", str(tmp_path / "runs.json")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"test MSE: \d+\.\d{4} ± \d+\.\d{4} over 4 runs", lines[-1]), lines[-1]
    assert re.fullmatch(r"test MSE in cases: \d+\.\d ± \d+\.\d over 4 runs", lines[-2]), lines[-2]
    assert "spectral radius of I - sigma2 L" in "\n".join(lines)
    assert "standardization training: each region's observed entries of the first 16 days" in lines
    with open(tmp_path / "plot.png", "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    record = json.load(open(tmp_path / "runs.json"))
    assert record["method"] == "coin" and len(record["runs"]) == 4 and record["failed"] == []
    assert record["protocol"]["missing_rate"] == 0.8
    assert record["standardization"] == "training"
    mean = sum(r["test_mse"] for r in record["runs"]) / 4
    assert f"{mean:.4f}" in lines[-1]
    mean = sum(r["test_mse_cases"] for r in record["runs"]) / 4
    assert f"{mean:.1f}" in lines[-2]


def test_the_reference_standardization_and_clear_errors(script, data, tmp_path, capsys):
    argv = ["--data", data, "--method", "linear", "--num-splits", "1", "--num-inits", "1"]
    argv += ["--missing-rate", "0.8", "--no-jit-compile"]
    records = {}
    for standardization in ("training", "reference"):
        output = str(tmp_path / f"{standardization}.json")
        script.main(argv + ["--standardization", standardization, "--output", output])
        assert capsys.readouterr().out.strip().splitlines()[-1].endswith("over 1 runs")
        records[standardization] = json.load(open(output))
    assert records["reference"]["standardization"] == "reference"
    assert records["reference"]["test_mse"] != records["training"]["test_mse"]
    broken = tmp_path / "broken.json"
    broken.write_text(open(data).read()[:500])
    with pytest.raises(SystemExit, match=r"not valid JSON \(truncated\?\)"):
        script.main(["--data", str(broken)])
    with pytest.raises(SystemExit):
        script.main(["--data", data, "--method", "mlp", "--sigma2", "0.5"])
    assert "are COIN's settings" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--data", data, "--standardization", "all"])
    assert "invalid choice: 'all'" in capsys.readouterr().err


def test_failed_runs_are_named_and_never_averaged(script, data, tmp_path, capsys, monkeypatch):
    from keras_cd.forecasting import ForecastingTrainer

    failing = {42001}
    reinitialize = ForecastingTrainer._reinitialize

    def diverge(self, init_seed):  # a learning rate of 1e30: NaN at the second epoch
        reinitialize(self, init_seed)
        if init_seed in failing:
            self.optimizer.learning_rate.assign(1e30)

    monkeypatch.setattr(ForecastingTrainer, "_reinitialize", diverge)
    argv = ["--data", data, "--method", "mlp", "--epochs", "5", "--missing-rate", "0.8"]
    argv += ["--no-jit-compile"]
    output = str(tmp_path / "runs.json")
    script.main(argv + ["--num-splits", "2", "--num-inits", "2", "--output", output])
    captured = capsys.readouterr()
    assert "run split 42 init 42001 failed at epoch 2: training loss = " in captured.err
    last = captured.out.strip().splitlines()[-1]
    assert re.search(r"over 3 runs \(1 failed, split/init 42/42001: not averaged\)$", last), last
    record = json.load(open(output))
    assert [r["init_seed"] for r in record["runs"]] == [42000, 42002, 42003]
    assert [f["init_seed"] for f in record["failed"]] == [42001]
    failing.add(42000)
    with pytest.raises(SystemExit, match="all 1 runs failed"):
        script.main(argv + ["--num-splits", "1", "--num-inits", "1", "--output", output])
    assert json.load(open(output))["test_mse"] == {"mean": None, "std": None, "runs": 0}

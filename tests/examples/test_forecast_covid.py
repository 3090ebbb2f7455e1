import json
import os
import re
import subprocess
import sys

from tests.datasets.test_england_covid import write_covid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "examples", "forecast_covid.py")


def run(*argv):
    return subprocess.run(
        [sys.executable, SCRIPT, *argv], capture_output=True, text=True, timeout=600
    )


def test_end_to_end_on_a_synthetic_dataset(tmp_path):
    data = write_covid(tmp_path / "covid.json")
    result = run(
        "--data",
        str(data),
        "--num-splits",
        "2",
        "--num-inits",
        "2",
        "--epochs",
        "20",
        "--missing-rate",
        "0.8",
        "--plot",
        str(tmp_path / "plot.png"),
        "--output",
        str(tmp_path / "runs.json"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"test MSE: \d+\.\d{4} ± \d+\.\d{4} over 4 runs", lines[-1]), lines[-1]
    assert "spectral radius of I - sigma2 L" in result.stdout
    with open(tmp_path / "plot.png", "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    record = json.load(open(tmp_path / "runs.json"))
    assert record["method"] == "coin" and len(record["runs"]) == 4
    assert record["protocol"]["missing_rate"] == 0.8
    mean = sum(r["test_mse"] for r in record["runs"]) / 4
    assert f"{mean:.4f}" in lines[-1]


def test_a_baseline_and_clear_errors(tmp_path):
    data = write_covid(tmp_path / "covid.json")
    result = run(
        "--data",
        str(data),
        "--method",
        "linear",
        "--num-splits",
        "1",
        "--num-inits",
        "1",
        "--missing-rate",
        "0.8",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].endswith("over 1 runs")
    broken = tmp_path / "broken.json"
    broken.write_text(open(data).read()[:500])
    result = run("--data", str(broken))
    assert result.returncode != 0 and "not valid JSON (truncated?)" in result.stderr
    result = run("--data", str(data), "--method", "mlp", "--sigma2", "0.5")
    assert result.returncode != 0 and "are COIN's settings" in result.stderr

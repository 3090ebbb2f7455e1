import json
import os
import re

import numpy as np
import pytest

from tests.datasets.test_gnnbench import write_gnnbench
from tests.scripts import run_main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "examples", "train_graph.py")


def run(*argv):
    """The script in-process, each run built as a plain graph (its XLA path is the
    trainer's, tested in tests/test_node_classification.py)."""
    return run_main("examples/train_graph.py", *argv, "--no-jit-compile")


def planted_partition(path, classes=3, per_class=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    same = labels[:, None] == labels[None, :]
    adjacency = np.triu(rng.random((len(labels),) * 2) < np.where(same, 0.08, 0.005), 1)
    features = rng.random((len(labels), 30)) < 0.05 + 0.1 * (
        np.arange(30) % classes == labels[:, None]
    )
    return write_gnnbench(path, adjacency + adjacency.T, features.astype(float), labels)


def test_end_to_end_on_a_synthetic_graph(tmp_path):
    result = run(
        "--data",
        str(planted_partition(tmp_path / "toy.npz")),
        "--num-splits",
        "2",
        "--num-inits",
        "1",
        "--max-epochs",
        "60",
        "--patience",
        "10",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"test accuracy: (\d+\.\d\d) ± (\d+\.\d\d) over 2 runs", last)
    assert match and 60 < float(match.group(1)) <= 100, last  # clearly above chance (33%)


def test_the_same_seed_gives_the_same_figures(tmp_path):
    data = str(planted_partition(tmp_path / "toy.npz"))
    argv = (
        "--data",
        data,
        "--num-splits",
        "1",
        "--num-inits",
        "2",
        "--max-epochs",
        "30",
        "--patience",
        "10",
        "--seed",
        "3",
    )
    first, second = run(*argv), run(*argv)
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-3000:]
    last = first.stdout.strip().splitlines()[-1]
    assert last.startswith("test accuracy:") and last == second.stdout.strip().splitlines()[-1]
    other = run(*argv[:-1], "4").stdout.strip().splitlines()[-1]
    assert other != last  # the seed matters (other splits and initialisations)


def test_reports_the_instability_of_the_reference_setting(cora_path):
    result = run(
        "--data", str(cora_path), "--num-splits", "1", "--num-inits", "1", "--max-epochs", "5"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lambda_max(L) = 5.780" in result.stdout
    # The layer's own warning, once:
    assert result.stderr.count("Unstable explicit diffusion") == 1
    assert "sigma2 * lambda_max = 0.35 * 5.78 = 2.023 > 2" in result.stderr
    assert result.stdout.strip().splitlines()[-1].endswith("over 1 runs")


def test_clear_errors(tmp_path):
    missing = run("--data", str(tmp_path / "nope.npz"))
    assert missing.returncode == 1 and "No gnnbench file" in missing.stderr
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    malformed = run("--data", str(tmp_path / "bad.npz"))
    assert malformed.returncode == 1 and "Malformed gnnbench file" in malformed.stderr
    small = planted_partition(tmp_path / "small.npz", per_class=40)
    impossible = run("--data", str(small))
    assert impossible.returncode == 1 and "Impossible split" in impossible.stderr


@pytest.mark.slow  # end to end (a fresh process or a whole search): make test-slow
def test_search_saves_the_setting_that_a_rerun_reads(tmp_path):
    data = str(planted_partition(tmp_path / "toy.npz"))
    setting, output = tmp_path / "setting.json", tmp_path / "runs.json"
    fast = ("--max-epochs", "40", "--patience", "10", "--num-splits", "2", "--num-inits", "1")
    searched = run(
        "--data",
        data,
        "--search",
        "2",
        "--search-splits",
        "1",
        "--setting",
        str(setting),
        "--output",
        str(output),
        *fast,
    )
    assert searched.returncode == 0, searched.stderr[-3000:]
    assert "trial   2: validation" in searched.stdout and "saved to" in searched.stdout
    chosen = json.loads(setting.read_text())
    assert chosen["method"] == "coin" and len(chosen["trials"]) == 2
    runs = json.loads(output.read_text())
    assert runs["settings"] == chosen["settings"] and len(runs["runs"]) == 2
    assert runs["test_accuracy"]["runs"] == 2
    rerun = run("--data", data, "--setting", str(setting), *fast)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    last = searched.stdout.strip().splitlines()[-1]
    assert last.startswith("test accuracy:") and rerun.stdout.strip().splitlines()[-1] == last


def test_a_baseline_runs_in_the_same_harness(tmp_path):
    data = str(planted_partition(tmp_path / "toy.npz"))
    result = run(
        "--data",
        data,
        "--method",
        "sgc",
        "--num-splits",
        "1",
        "--num-inits",
        "1",
        "--max-epochs",
        "60",
        "--patience",
        "10",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'method sgc: {"num_steps": 2' in result.stdout
    assert "test accuracy:" in result.stdout.strip().splitlines()[-1]

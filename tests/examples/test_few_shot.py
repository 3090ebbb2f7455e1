import re

import keras
import numpy as np
import pytest

from keras_cd import few_shot
from tests.scripts import run_main
from tests.test_few_shot import clustered


def run(*argv):
    return run_main("examples/few_shot.py", *argv)


@pytest.fixture(scope="module")
def features_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "features.npz"
    few_shot.save_features(path, *clustered(classes=14, per_class=20, width=16, noise=1.5))
    return str(path)


@pytest.fixture(scope="module")
def table(features_file):
    return run("--features", features_file, "--way", "5", "--shot", "1", "--tasks", "24")


def test_prints_a_table_whose_coin_row_ends_with_the_accuracy(table):
    assert table.returncode == 0, table.stderr[-3000:]
    lines = table.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    assert lines[header].split() == ["method", "accuracy", "95%", "CI", "tasks", "seconds"]
    rows = lines[header + 1 : header + 7]
    assert [r[:20].strip() for r in rows] == [
        "COIN (10 steps x 0.5",
        "COIN without diffusi",
        "SimpleShot (CL2N)",
        "SimpleShot + query s",
        "logistic regression",
        "logistic regression",
    ]
    match = re.search(r"accuracy: (\d+\.\d\d) ± (\d+\.\d\d) over 24 tasks$", rows[0])
    assert match, rows[0]
    coin, ci = float(match.group(1)), float(match.group(2))
    assert 60 < coin <= 100 and 0 <= ci < 10  # chance: 20%
    numbers = rows[0].split("accuracy:")[0].split()[-4:]
    assert [float(numbers[0]), float(numbers[1]), int(numbers[2])] == [coin, ci, 24]
    assert all("accuracy:" not in row for row in rows[1:])
    assert "vs SimpleShot (CL2N)" in table.stdout and "wins" in table.stdout
    assert re.search(r"COIN: \d+\.\d s per 1,000 tasks", table.stdout)


def test_the_same_seed_gives_the_same_figures(features_file, table):
    again = run("--features", features_file, "--tasks", "24", "--methods", "coin,simpleshot")
    assert again.returncode == 0, again.stderr[-3000:]

    def accuracies(output):
        return re.findall(
            r"^(COIN \(10 steps x 0\.5\)|SimpleShot \(CL2N\)) +(\d+\.\d\d) +(\d+\.\d\d)",
            output,
            re.M,
        )

    assert (
        accuracies(again.stdout) == accuracies(table.stdout) and len(accuracies(again.stdout)) == 2
    )
    other = run(
        "--features", features_file, "--tasks", "24", "--methods", "simpleshot", "--seed", "1"
    )
    assert accuracies(other.stdout) != accuracies(table.stdout)[1:]


def test_errors_name_the_problem(features_file, tmp_path):
    missing = run("--features", str(tmp_path / "absent.npz"))
    assert missing.returncode == 1 and "Features file not found" in missing.stderr
    features, labels, split = clustered()
    np.savez(tmp_path / "bad.npz", features=features, split=split)
    bad = run("--features", str(tmp_path / "bad.npz"))
    assert bad.returncode == 1 and "missing array `labels`" in bad.stderr
    short = run("--features", features_file, "--shot", "10", "--methods", "simpleshot")
    assert short.returncode == 1 and "shot + queries = 25 rows" in short.stderr
    pickled = run("--features", str(tmp_path / "x.plk"), "--base-mean", str(tmp_path / "m.plk"))
    assert pickled.returncode == 1 and "allow_pickle=True" in pickled.stderr
    unknown = run("--features", features_file, "--methods", "coin,magic")
    assert unknown.returncode == 2 and "unknown ['magic']" in unknown.stderr


def test_extract_writes_a_features_file_from_a_backbone_over_an_image_folder(tmp_path):
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten()]
        + [keras.layers.Dense(6, activation="relu"), keras.layers.Dense(3)]
    )
    model.save(tmp_path / "backbone.keras")
    rng = np.random.default_rng(0)
    for name in ("ant", "bee", "cow", "dog"):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(3):
            keras.utils.save_img(
                tmp_path / "images" / name / f"{i}.png", rng.integers(0, 256, (8, 8, 3))
            )
    (tmp_path / "novel.txt").write_text("cow\ndog\n")
    output = tmp_path / "features.npz"
    result = run(
        "extract",
        "--backbone", tmp_path / "backbone.keras",
        "--image-folder", tmp_path / "images",
        "--base-classes", "ant,bee",
        "--novel-classes", f"@{tmp_path / 'novel.txt'}",
        "--image-size", "8", "8",
        "--output", output,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "12 features of width 6 (6 base, 0 val, 6 novel images of 4 classes)" in result.stdout
    data = few_shot.load_features(output)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert data.split.tolist() == ["base"] * 6 + ["novel"] * 6
    np.testing.assert_allclose(data.base_mean, data.features[:6].mean(axis=0), atol=1e-6)
    clash = run(
        "extract", "--backbone", tmp_path / "backbone.keras", "--image-folder", tmp_path,
        "--base-classes", "ant", "--novel-classes", "ant", "--image-size", "8", "8",
        "--output", tmp_path / "x.npz",
    )  # fmt: skip
    assert clash.returncode == 2 and "listed twice" in clash.stderr

import importlib.util
import os

import pytest

from tests.scripts import run_main

pytest.importorskip("sklearn", reason="needs the `examples` extra")
pytest.importorskip("matplotlib", reason="needs the `examples` extra")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*argv):
    return run_main("examples/certify.py", *argv)


def test_trains_certifies_prints_the_table_and_writes_the_plot(tmp_path):
    plot, saved = tmp_path / "curve.png", tmp_path / "clf.keras"
    result = run(
        "--epochs",
        "2",
        "--num-test",
        "6",
        "--n0",
        "10",
        "--n",
        "200",
        "--plot",
        str(plot),
        "--save",
        str(saved),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    table = lines[lines.index("  radius  certified accuracy") + 1 :][:7]
    accuracies = [float(line.split()[1]) for line in table]
    assert [float(line.split()[0]) for line in table] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    assert accuracies == sorted(accuracies, reverse=True)  # certified accuracy never grows with r
    # An abstention is never certified correct.
    abstained = int(next(line for line in lines if line.startswith("abstained on")).split()[2])
    assert accuracies[0] <= 1 - abstained / 6 + 1e-9
    clean = float(next(line for line in lines if "clean accuracy" in line).rsplit(" ", 1)[1])
    assert clean > 0.5  # the base classifier learned (chance: 0.1)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = run("--load", str(saved), "--num-test", "4", "--n0", "10", "--n", "100", "--plot", "")
    assert loaded.returncode == 0 and "certified 4 test images" in loaded.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sigma", "0"], "--sigma must be > 0"),
        (["--n0", "500", "--n", "100"], "--n0 <= --n"),
        (["--alpha", "1"], "--alpha must be in (0, 1)"),
        (["--load", "missing.keras"], "no such file"),
    ],
)
def test_bad_flags(argv, message, capsys):
    spec = importlib.util.spec_from_file_location(
        "certify", os.path.join(ROOT, "examples", "certify.py")
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(SystemExit) as info:
        script.parse_args(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err

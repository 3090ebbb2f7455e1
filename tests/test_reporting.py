"""keras_cd.reporting: what a benchmark prints is what RESULTS.md shows."""

import json

import pytest

from keras_cd import reporting


def test_record_keeps_the_printed_text_command_machine_and_figures(tmp_path, capsys):
    with reporting.record("demo", tmp_path, argv=["benchmarks/demo.py", "--rounds", "3"]) as rec:
        print("ratio 0.964")
        rec.figures["ratio"] = 0.964
    assert "ratio 0.964" in capsys.readouterr().out  # still printed
    result = json.loads((tmp_path / "demo.json").read_text())
    assert result["output"] == "ratio 0.964\n" and result["figures"] == {"ratio": 0.964}
    assert result["command"] == "python benchmarks/demo.py --rounds 3"
    assert result["machine"]["cpu_count"] >= 1 and "keras" in result["versions"]
    page = reporting.render_markdown(tmp_path)
    assert "## demo" in page and "python benchmarks/demo.py --rounds 3" in page
    assert "ratio 0.964" in page


def test_a_failed_run_never_replaces_a_published_result(tmp_path):
    with reporting.record("demo", tmp_path, argv=["demo.py"]):
        print("good")
    with pytest.raises(KeyboardInterrupt):
        with reporting.record("demo", tmp_path, argv=["demo.py"]):
            print("half")
            raise KeyboardInterrupt
    assert json.loads((tmp_path / "demo.json").read_text())["output"] == "good\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json"]


def test_result_names():
    assert reporting.result_name("benchmarks/train_step.py", []) == "train_step"
    assert (
        reporting.result_name("b/smoothing.py", ["--shape", "cifar", "--rounds", "3"])
        == "smoothing--shape-cifar-rounds-3"
    )
    assert reporting.result_name("b/node.py", ["--data", "../data/cora.npz"]) == "node"
    with pytest.raises(ValueError, match="Invalid value for `name`"):
        with reporting.record("", "x"):
            pass

"""keras_cd.files: the public atomic writers the examples and benchmarks use."""

import ast
import json
import pathlib

import pytest

from keras_cd import files

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_write_json_round_trip_and_no_partial_file(tmp_path):
    path = tmp_path / "deep" / "result.json"
    assert files.write_json(path, {"mse": [0.5, 1.0], "runs": 2}) == str(path)
    assert json.loads(path.read_text()) == {"mse": [0.5, 1.0], "runs": 2}
    with pytest.raises(ValueError, match="finite numbers only"):
        files.write_json(path, {"mse": float("nan")})
    with pytest.raises(TypeError):
        files.write_json(path, {"model": object()})
    assert json.loads(path.read_text()) == {"mse": [0.5, 1.0], "runs": 2}  # untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]  # no leftovers
    with pytest.raises(FileExistsError, match="overwrite=True"):
        files.write_json(path, {}, overwrite=False)


def test_atomic_path_is_the_package_writer(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as temporary:
            pathlib.Path(temporary).write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    with files.atomic_path(target) as temporary:
        pathlib.Path(temporary).write_text("whole")
    assert target.read_text() == "whole"


def private_imports(path):
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        if any(part.startswith("_") for n in names for part in n.split(".")[1:2]):
            if any(n.startswith("keras_cd") for n in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_scripts_use_only_the_public_api():
    """Examples, benchmarks and export scripts are what users copy: no keras_cd._* imports."""
    scripts = [p for d in ("examples", "benchmarks", "export") for p in (ROOT / d).glob("*.py")]
    assert scripts
    assert [hit for p in scripts for hit in private_imports(p)] == []

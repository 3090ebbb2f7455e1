"""The core without TensorFlow: the trainers and the examples' small settings on JAX,
in a fresh interpreter in which importing TensorFlow fails.

Outside `keras_cd.distribute`, `keras_cd.datasets.epochs`, `keras_cd.export`
and `keras_cd.checkpoint`, TensorFlow is imported only on the TensorFlow
backend's own code path; this test is the check (the robustness sweep's quick
mode has its own, in tests/test_robustness.py).
"""

import pytest

from tests.on_backend import run_on_backend

BLOCK = '''
import sys

class BlockTensorFlow:
    """Import hook: `import tensorflow` (or any tensorflow.*) raises ImportError."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"{name} is blocked: this process runs without TensorFlow")

sys.meta_path.insert(0, BlockTensorFlow())
'''

SCRIPT = (
    BLOCK
    + """
import pathlib, tempfile
sys.path.insert(0, ".")
from tests.examples.test_train_graph import planted_partition
from tests.datasets.test_england_covid import write_covid
from tests.scripts import run_main

folder = pathlib.Path(tempfile.mkdtemp())
graph, covid = planted_partition(folder / "toy.npz"), write_covid(folder / "covid.json")
runs = [
    ("examples/train_graph.py", "--data", str(graph), "--num-splits", "2", "--num-inits", "1",
     "--max-epochs", "40", "--patience", "10"),
    ("examples/forecast_covid.py", "--data", str(covid), "--num-splits", "1", "--num-inits",
     "2", "--epochs", "10", "--missing-rate", "0.8", "--method", "gcn"),
    ("examples/forecast_covid.py", "--data", str(covid), "--num-splits", "1", "--num-inits",
     "1", "--epochs", "10", "--missing-rate", "0.8"),
    ("examples/train_digits.py", "--epochs", "2", "--mc-samples", "2"),
    ("examples/certify.py", "--epochs", "1", "--num-test", "4", "--n0", "10", "--n", "50",
     "--plot", str(folder / "curve.png"), "--save", str(folder / "clf.keras")),
]
for argv in runs:
    result = run_main(*argv)
    assert result.returncode == 0, (argv, result.stdout[-2000:], result.stderr[-3000:])
    print(argv[0], "->", result.stdout.strip().splitlines()[-1])
assert "tensorflow" not in sys.modules
print("NO TENSORFLOW: OK")
"""
)


@pytest.mark.slow
def test_the_trainers_and_examples_run_on_jax_without_tensorflow():
    pytest.importorskip("sklearn", reason="needs the `examples` extra")
    run_on_backend(SCRIPT, "NO TENSORFLOW: OK", backend="jax", timeout=900)


def test_blocking_works():
    """The hook itself: a process with it cannot import TensorFlow (so the test
    above cannot pass by accident)."""
    import subprocess
    import sys

    script = BLOCK + "import tensorflow\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 1 and "tensorflow is blocked" in result.stderr

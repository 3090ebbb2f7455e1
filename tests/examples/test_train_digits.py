import os
import subprocess
import sys

import pytest

pytest.importorskip("sklearn", reason="needs the `examples` extra")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_demo_prints_cd_next_to_plain():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_digits.py"),
                             "--epochs", "2", "--mc-samples", "2"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(("plain ResNet", "CD-ResNet"))]
    assert len(rows) == 2
    for row in rows:
        clean, monte_carlo, noisy = (float(v) for v in row.split()[-4:-1])
        assert all(0.0 <= v <= 1.0 for v in (clean, monte_carlo, noisy))

import os

import pytest

from tests.scripts import run_main

pytest.importorskip("sklearn", reason="needs the `examples` extra")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow  # end to end (a fresh process or a whole search): make test-slow
def test_demo_prints_cd_next_to_plain():
    result = run_main("examples/train_digits.py", "--epochs", "3", "--mc-samples", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [
        line
        for line in result.stdout.splitlines()
        if line.startswith(("plain ResNet", "CD-ResNet"))
    ]
    assert len(rows) == 2
    for row in rows:
        clean, monte_carlo, noisy = (float(v) for v in row.split()[-4:-1])
        # Both networks learn in 3 epochs: well above chance (0.1) (measured 0.69-0.86).
        assert clean > 0.4 and monte_carlo > 0.4 and noisy > 0.2, row

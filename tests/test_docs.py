"""README.md and CHANGELOG.md quote no measured figure that benchmarks/RESULTS.md
does not hold (RESULTS.md is generated from what the benchmarks printed)."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Published or defined numbers that are not measurements of this project.
NOT_MEASURED = {
    "2403.15726",  # the paper's arXiv id
    "91.25",  # He et al.'s reported ResNet-20 CIFAR-10 accuracy
    "3.10",  # the oldest supported Python
}


def prose(path):
    """The text outside fenced code blocks and inline code."""
    with open(path) as handle:
        text = handle.read()
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    return re.sub(r"`[^`]*`", " ", text)


def figures(text):
    """Numbers that look measured: a decimal point and 3 or more significant digits."""
    found = set()
    for number in re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text):
        if len(number.replace(".", "").lstrip("0")) >= 3:
            found.add(number)
    return found - NOT_MEASURED


@pytest.mark.parametrize("document", ["README.md", "CHANGELOG.md"])
def test_every_quoted_figure_is_in_the_generated_results(document):
    with open(os.path.join(ROOT, "benchmarks", "RESULTS.md")) as handle:
        results = handle.read()
    missing = sorted(f for f in figures(prose(os.path.join(ROOT, document))) if f not in results)
    assert not missing, (
        f"{document} quotes figures that benchmarks/RESULTS.md does not hold: {missing}. "
        "Link to RESULTS.md instead, or rerun the benchmark that prints them."
    )


def test_the_check_finds_figures():
    assert figures("ratio 0.863 and 82.62 ± 0.97, sigma 0.35, 1e-4, 20 runs") == {"0.863", "82.62"}

"""Regenerates benchmarks/RESULTS.md from benchmarks/results/*.json.

Every benchmark in this folder records what it printed, with its command,
machine and versions, in `benchmarks/results/NAME.json`; this page collects
them. README and CHANGELOG link to it instead of copying figures.

    python benchmarks/report.py
"""

import os

from keras_cd import reporting
from keras_cd.files import atomic_path

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    page = reporting.render_markdown(os.path.join(HERE, "results"))
    with atomic_path(os.path.join(HERE, "RESULTS.md")) as temporary:
        with open(temporary, "w") as handle:
            handle.write(page)
    print(f"wrote {os.path.join(HERE, 'RESULTS.md')}")


if __name__ == "__main__":
    main()

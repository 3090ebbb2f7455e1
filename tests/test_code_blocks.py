"""Every ```python block of README.md and docs/**/*.md runs.

One test per block, named `file:line` (the line of the opening fence). The
blocks of one page run in order in one namespace, in a fresh working folder
of their own, so a page's later blocks build on its earlier ones; a block
whose page's earlier block failed fails too, naming it. Shell commands are
```bash blocks and are not run; a Python snippet that cannot run in a test
(it needs a dataset, a server or a GPU) is written as a ```text block.
The blocks run in this process, on the default (TensorFlow) backend.
"""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")

pytestmark = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason=f"the documentation's examples run on the default TensorFlow backend; "
    f"KERAS_BACKEND={BACKEND}",
)

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)")


def documents():
    """README.md and every Markdown page under docs/, relative to the root."""
    found = ["README.md"]
    for folder, _, files in os.walk(os.path.join(ROOT, "docs")):
        found += [
            os.path.relpath(os.path.join(folder, name), ROOT)
            for name in files
            if name.endswith(".md")
        ]
    return sorted(found, key=lambda path: (path != "README.md", path))


def fenced_blocks(text):
    """`(line, info, code)` of each fenced block; `line` is the fence's, 1-based.

    The code is dedented by the fence's own indentation (blocks inside lists
    and admonitions); an unclosed fence runs to the end of the text.
    """
    lines = text.split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body = []
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        blocks.append((i + 1, opening.group("info").lower(), "\n".join(body)))
        i = j + 1
    return blocks


def python_blocks(path):
    """`(line, code)` of each ```python (or ```py) block of the file at `path`."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        text = handle.read()
    return [(line, code) for line, info, code in fenced_blocks(text) if info in ("python", "py")]


BLOCKS = [
    (path, index, line)
    for path in documents()
    for index, (line, _) in enumerate(python_blocks(path))
]


class Page:
    """The namespace, working folder and progress of one page's blocks."""

    def __init__(self, path, folder):
        self.path = path
        self.blocks = python_blocks(path)
        self.folder = folder
        self.namespace = {"__name__": "__docs__"}
        self.done = 0  # blocks run so far, in order
        self.failed = None  # `file:line` of the block that failed

    def run(self, index, monkeypatch):
        """Runs the page's blocks up to and including `index`, in order."""
        target = f"{self.path}:{self.blocks[index][0]}"
        monkeypatch.chdir(self.folder)
        while self.done <= index:
            if self.failed:
                pytest.fail(f"{target} builds on {self.failed}, which failed", pytrace=False)
            line, code = self.blocks[self.done]
            name = f"{self.path}:{line}"
            # Pad so that tracebacks give the Markdown file's own line numbers.
            source = "\n" * line + code
            self.done += 1
            try:
                exec(compile(source, os.path.join(ROOT, self.path), "exec"), self.namespace)
            except Exception as error:
                self.failed = name
                if name != target:
                    pytest.fail(f"{target} builds on {name}, which failed: {error!r}")
                raise


@pytest.fixture(scope="session")
def pages(tmp_path_factory):
    made = {}

    def page(path):
        if path not in made:
            made[path] = Page(path, tmp_path_factory.mktemp("docs-page"))
        return made[path]

    return page


@pytest.mark.parametrize(
    "path, index",
    [(path, index) for path, index, _ in BLOCKS],
    ids=[f"{p}:{ln}" for p, _, ln in BLOCKS],
)
def test_python_block_runs(pages, path, index, monkeypatch):
    pages(path).run(index, monkeypatch)


def test_the_collector_finds_the_blocks():
    text = "\n".join(
        [
            "Intro",  # 1
            "```python",  # 2
            "a = 1",
            "```",
            "```bash",  # 5
            "make test",
            "```",
            "- item",
            "",
            "    ```python",  # 10: inside a list item
            "    b = a + 1",
            "    ```",
            "````text",  # 13
            "```python",
            "not a block of its own",
            "```",
            "````",
        ]
    )
    blocks = fenced_blocks(text)
    assert [(line, info) for line, info, _ in blocks] == [
        (2, "python"),
        (5, "bash"),
        (10, "python"),
        (13, "text"),
    ]
    assert blocks[2][2] == "b = a + 1"
    assert BLOCKS, "no ```python block found in README.md or docs/"

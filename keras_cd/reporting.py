"""Measured figures, recorded where they are printed: benchmark results as JSON.

A benchmark runs inside `record(name)`: everything it prints still goes to
the terminal and is also kept, with the command, the machine, the library
versions and any structured `figures` it adds, in `results/NAME.json`
(written atomically when the benchmark finishes). `render_markdown` turns a
folder of such files into one page (`python benchmarks/report.py` writes
`benchmarks/RESULTS.md`), so every published figure is one a command
printed, next to that command.

The benchmarks measure the paper's experiments (Wang, Bao & Shi, arXiv
2403.15726) as this package runs them; this module holds no mathematics,
only the record keeping: [`record`][keras_cd.reporting.record] and the
[`Record`][keras_cd.reporting.Record] it yields,
[`result_name`][keras_cd.reporting.result_name] for a command's file name,
[`load_results`][keras_cd.reporting.load_results] and
[`render_markdown`][keras_cd.reporting.render_markdown].
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import platform
import re
import sys
import time
from collections.abc import Iterator, Sequence

from keras_cd import _validation


class Record:
    """What `record` collects: the printed text and structured figures.

    Made by `record`, which yields it to the benchmark; the benchmark adds
    its structured results to `figures`.

    Args:
        name: str, the benchmark's name.
        command: str, the command line that ran it.

    Attributes:
        name: str, the benchmark's name.
        command: str, the command line, e.g. `"python benchmarks/x.py --n 3"`.
        figures: dict, structured figures to store beside the output; the
            values must be JSON-serializable (numbers are stored as floats
            when JSON cannot store them as they are).

    Example:
        >>> import keras_cd.reporting
        >>> entry = keras_cd.reporting.Record("demo", "python bench.py")
        >>> entry.figures["loss"] = 0.25
        >>> entry.command, entry.figures, entry.text  # nothing printed yet
        ('python bench.py', {'loss': 0.25}, '')
    """

    def __init__(self, name: str, command: str) -> None:
        self.name, self.command = name, command
        self.figures: dict = {}
        self._text = io.StringIO()

    @property
    def text(self) -> str:
        """Returns everything printed so far inside the `record` block, a str."""
        return self._text.getvalue()


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()


def _versions():
    import importlib.metadata

    import keras

    versions = {"python": platform.python_version(), "keras_backend": keras.backend.backend()}
    for package in ("keras-cd", "keras", "tensorflow", "jax", "torch", "numpy", "onnxruntime"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _machine():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


@contextlib.contextmanager
def record(
    name: str, directory: str | os.PathLike, argv: Sequence[str] | None = None
) -> Iterator[Record]:
    """Records what the block prints into `directory/NAME.json`; yields a `Record`.

    Everything printed inside the block still reaches the terminal. When the
    block finishes, the JSON file gets the command (`python SCRIPT ARGS...`),
    the start time (UTC), the duration, the machine (platform, processor,
    CPU count), the library versions, the `figures` the block added and the
    printed output; it is written atomically. The file is written only when
    the block finishes without an exception, so a failed or interrupted run
    never replaces a published result.

    Args:
        name: str, the benchmark's name (the file name, without `.json`).
        directory: str or path-like, folder of the results (created when
            needed).
        argv: list of str, the command's arguments, the script first.
            Defaults to `None`: `sys.argv`.

    Yields:
        The `Record` of the run.

    Raises:
        ValueError: if `name` is not a non-empty file name.

    Example:
        >>> import json, os, tempfile
        >>> import keras_cd.reporting
        >>> folder = tempfile.mkdtemp()
        >>> with keras_cd.reporting.record("demo", folder, argv=["bench.py", "--n", "3"]) as run:
        ...     print("accuracy 0.5")
        ...     run.figures["accuracy"] = 0.5
        accuracy 0.5
        >>> with open(os.path.join(folder, "demo.json")) as handle:
        ...     result = json.load(handle)
        >>> result["command"], result["figures"], result["output"].splitlines()
        ('python bench.py --n 3', {'accuracy': 0.5}, ['accuracy 0.5'])
    """
    from keras_cd._atomic import atomic_path

    if not isinstance(name, str) or not name or os.sep in name:
        _validation.invalid("name", "a non-empty file name", name, "Use e.g. 'train_step'.")
    argv = list(sys.argv if argv is None else argv)
    script = os.path.relpath(argv[0]) if argv and argv[0].endswith(".py") else (argv[:1] or [""])[0]
    command = " ".join(["python", script] + argv[1:]).strip()
    entry = Record(name, command)
    started, start = datetime.datetime.now(datetime.timezone.utc), time.perf_counter()
    with contextlib.redirect_stdout(_Tee(sys.stdout, entry._text)):
        yield entry
    result = {
        "name": name,
        "command": command,
        "started_utc": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - start, 1),
        "machine": _machine(),
        "versions": _versions(),
        "figures": entry.figures,
        "output": entry.text,
    }
    path = os.path.join(os.fspath(directory), f"{name}.json")
    with atomic_path(path, suffix=".json") as temporary:
        with open(temporary, "w") as handle:
            json.dump(result, handle, indent=2, sort_keys=False, default=float)
            handle.write("\n")


def result_name(script: str, argv: Sequence[str]) -> str:
    """Returns the result file name of a command: the script's stem, plus its arguments.

    Each distinct command keeps its own file. Arguments that are paths (hold
    a path separator), and the flag just before such a path, are left out:
    they say where the inputs live, not what was measured. Leading dashes are
    dropped and characters other than letters, digits and `.=_-` become `_`.

    Args:
        script: str, the script's path.
        argv: list of str, the script's arguments (without the script).

    Returns:
        str, the name (without `.json`).

    Example:
        >>> import keras_cd.reporting
        >>> keras_cd.reporting.result_name("benchmarks/smoothing.py", ["--shape", "cifar"])
        'smoothing--shape-cifar'
        >>> keras_cd.reporting.result_name("train.py", ["--data", "data/cora.npz", "--seed", "1"])
        'train--seed-1'
    """
    stem = os.path.splitext(os.path.basename(script))[0]
    # Paths (data files) are where the inputs live, not what was measured.
    argv = [
        a
        for i, a in enumerate(argv)
        if os.sep not in a and not (i + 1 < len(argv) and os.sep in argv[i + 1])
    ]
    words = [re.sub(r"[^A-Za-z0-9.=_-]+", "_", a.lstrip("-")) for a in argv]
    return "--".join([stem] + ["-".join(words)] if words else [stem])


def load_results(directory: str | os.PathLike) -> list[dict]:
    """Returns all results in `directory`, as dicts sorted by name.

    Args:
        directory: str or path-like, a folder of `record`'s JSON files.

    Returns:
        A list of dicts, one per `*.json` file, sorted by their `"name"`;
        empty when the folder does not exist.

    Example:
        >>> import tempfile
        >>> import keras_cd.reporting
        >>> folder = tempfile.mkdtemp()
        >>> for name in ("b", "a"):
        ...     with keras_cd.reporting.record(name, folder, argv=["bench.py"]) as run:
        ...         run.figures["size"] = len(name)
        >>> results = keras_cd.reporting.load_results(folder)
        >>> [(result["name"], result["figures"]) for result in results]  # sorted by name
        [('a', {'size': 1}), ('b', {'size': 1})]
    """
    directory = os.fspath(directory)
    results = []
    for file_name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if file_name.endswith(".json"):
            with open(os.path.join(directory, file_name)) as handle:
                results.append(json.load(handle))
    return sorted(results, key=lambda result: result["name"])


def render_markdown(directory: str | os.PathLike, title: str = "Measured results") -> str:
    """Returns one Markdown page of every result in `directory`.

    Each result becomes a section headed by its name, with its command, when
    and where it ran (start time, duration, CPU count, processor, platform,
    library versions) and what it printed.

    Args:
        directory: str or path-like, a folder of `record`'s JSON files.
        title: str, the page's heading. Defaults to `"Measured results"`.

    Returns:
        str, the Markdown text.

    Example:
        >>> import tempfile
        >>> import keras_cd.reporting
        >>> folder = tempfile.mkdtemp()
        >>> with keras_cd.reporting.record("demo", folder, argv=["bench.py"]):
        ...     print("loss 0.25")
        loss 0.25
        >>> page = keras_cd.reporting.render_markdown(folder).splitlines()
        >>> page[0], "## demo" in page, "python bench.py" in page, "loss 0.25" in page
        ('# Measured results', True, True, True)
    """
    lines = [
        f"# {title}",
        "",
        "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`;",
        "do not edit by hand. Each section is what its command printed, on the machine",
        "and versions listed with it.",
        "",
    ]
    for result in load_results(directory):
        machine, versions = result["machine"], result["versions"]
        stack = ", ".join(f"{k} {v}" for k, v in versions.items())
        lines += [
            f"## {result['name']}",
            "",
            "```bash",
            result["command"],
            "```",
            "",
            f"{result['started_utc']}, {result['seconds']} s; {machine['cpu_count']} CPU cores "
            f"({machine['processor']}, {machine['platform']}); {stack}.",
            "",
            "```",
            result["output"].rstrip(),
            "```",
            "",
        ]
    return "\n".join(lines)

"""Measured figures, recorded where they are printed: benchmark results as JSON.

A benchmark runs inside `record(name)`: everything it prints still goes to
the terminal and is also kept, with the command, the machine, the library
versions and any structured `figures` it adds, in `results/NAME.json`
(written atomically when the benchmark finishes). `render_markdown` turns a
folder of such files into one page (`python benchmarks/report.py` writes
`benchmarks/RESULTS.md`), so every published figure is one a command
printed, next to that command.
"""

import contextlib
import datetime
import io
import json
import os
import platform
import re
import sys
import time

from keras_cd import _validation


class Record:
    """What `record` collects: the printed text and structured figures."""

    def __init__(self, name, command):
        self.name, self.command = name, command
        self.figures = {}
        self._text = io.StringIO()

    @property
    def text(self):
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
def record(name, directory, argv=None):
    """Records what the block prints into `directory/NAME.json`; yields a `Record`.

    Args:
        name: str, the benchmark's name (the file name, without `.json`).
        directory: str, folder of the results (created when needed).
        argv: the command's arguments; defaults to `sys.argv`.

    The file is written only when the block finishes without an exception,
    so a failed or interrupted run never replaces a published result.
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


def result_name(script, argv):
    """The result file name of a command: the script's stem, plus its arguments.

    `result_name("benchmarks/smoothing.py", ["--shape", "cifar"])` is
    `"smoothing--shape-cifar"`, so each distinct command keeps its own file.
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


def load_results(directory):
    """All results in `directory`, as dicts sorted by name."""
    directory = os.fspath(directory)
    results = []
    for file_name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if file_name.endswith(".json"):
            with open(os.path.join(directory, file_name)) as handle:
                results.append(json.load(handle))
    return sorted(results, key=lambda result: result["name"])


def render_markdown(directory, title="Measured results"):
    """One Markdown page of every result in `directory`: command, machine, output."""
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

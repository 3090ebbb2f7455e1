"""Runs an example or benchmark script's `main(argv)` in this interpreter.

A test that starts a fresh interpreter pays TensorFlow's import and every
XLA compile again; calling `main(argv)` in-process reuses both. The result
looks like `subprocess.run(..., capture_output=True, text=True)`'s: what the
script printed, and the exit status a separate process would have had
(`sys.exit("error: ...")` -> 1 with the message on stderr, argparse's
errors -> 2, an uncaught exception -> 1 with its traceback on stderr).
Scripts that change process-wide state (logical devices, distribution
strategies, a killed process) still run as subprocesses in their tests.
"""

import contextlib
import dataclasses
import importlib.util
import io
import os
import sys
import traceback
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MODULES = {}


@dataclasses.dataclass
class Completed:
    """What `subprocess.run` would have returned: returncode, stdout, stderr."""

    returncode: int
    stdout: str
    stderr: str


def load(path):
    """The script at `path` (relative to the project root) as a module, loaded once."""
    path = os.path.join(ROOT, path)
    if path not in _MODULES:
        name = "script_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _MODULES[path] = module
    return _MODULES[path]


def _show_on_stderr(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_main(path, *argv):
    """Calls `main(list(argv))` of the script at `path`; a `Completed`."""
    module = load(path)
    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    with (
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        warnings.catch_warnings(),
    ):
        # Warnings reach stderr as in a fresh interpreter (each location once),
        # not pytest's recorder.
        warnings.resetwarnings()
        warnings.simplefilter("default")
        warnings.showwarning = _show_on_stderr
        try:
            module.main([str(a) for a in argv])
        except SystemExit as exit:
            if isinstance(exit.code, str):
                print(exit.code, file=sys.stderr)
                returncode = 1
            else:
                returncode = exit.code or 0
        except Exception:  # as an interpreter would: traceback on stderr, status 1
            traceback.print_exc(file=sys.stderr)
            returncode = 1
    return Completed(returncode, stdout.getvalue(), stderr.getvalue())

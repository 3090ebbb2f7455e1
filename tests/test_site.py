"""The documentation site (mkdocs.yml, docs/): complete, honest, and working in a browser.

Fast tests (the default run): every public name of every public module has
an entry `::: keras_cd.<module>.<name>` in docs/reference/ and every entry
names a public object; the guide quotes no measured figure that
benchmarks/RESULTS.md does not hold; the architecture page's import table
is the modules' actual imports.

The slow test builds the site with `mkdocs build --strict`, serves it on
127.0.0.1 and opens it in headless Chromium through the DevTools protocol
(over a pipe, standard library only): the home page renders, the CDBlock
reference shows its signature and arguments, and Material's search (which
runs in JavaScript) finds GraphDiffusion. Without Chromium or MkDocs it
skips, unless KERAS_CD_REQUIRE_BROWSER=1 (CI), where it fails.
"""

import ast
import base64
import functools
import http.server
import importlib
import importlib.util
import inspect
import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time

import pytest

from tests.test_docs import figures, prose

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
REFERENCE = os.path.join(DOCS, "reference")

# The public modules, each with its page docs/reference/<page>.md.
PUBLIC_MODULES = {
    "keras_cd": "keras_cd.md",
    "keras_cd.layers": "layers.md",
    "keras_cd.models": "models.md",
    "keras_cd.graph": "graph.md",
    "keras_cd.inference": "inference.md",
    "keras_cd.smoothing": "smoothing.md",
    "keras_cd.datasets": "datasets.md",
    "keras_cd.node_classification": "node_classification.md",
    "keras_cd.forecasting": "forecasting.md",
    "keras_cd.robustness": "robustness.md",
    "keras_cd.few_shot": "few_shot.md",
    "keras_cd.export": "export.md",
    "keras_cd.serving": "serving.md",
    "keras_cd.checkpoint": "checkpoint.md",
    "keras_cd.distribute": "distribute.md",
    "keras_cd.files": "files.md",
    "keras_cd.reporting": "reporting.md",
}

ENTRY = re.compile(r"^:::\s+(\S+)\s*$", re.M)


def public_names(module_name):
    """A module's `__all__`; without one, the public names its own source defines."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    names = []
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [name for name in names if not name.startswith("_")]


def reference_entries():
    """`{identifier: page}` of every `::: identifier` in docs/reference/."""
    entries = {}
    for page in sorted(os.listdir(REFERENCE)):
        if page.endswith(".md"):
            with open(os.path.join(REFERENCE, page), encoding="utf-8") as handle:
                for identifier in ENTRY.findall(handle.read()):
                    entries.setdefault(identifier, page)
    return entries


def test_every_public_module_has_its_page():
    missing = [
        page for page in PUBLIC_MODULES.values() if not os.path.isfile(f"{REFERENCE}/{page}")
    ]
    assert not missing, f"docs/reference/ lacks {missing}"
    for module, page in PUBLIC_MODULES.items():
        with open(os.path.join(REFERENCE, page), encoding="utf-8") as handle:
            assert f"::: {module}\n" in handle.read(), f"{page} does not render {module} itself"


@pytest.mark.parametrize("module", sorted(PUBLIC_MODULES))
def test_every_public_name_has_a_reference_entry(module):
    entries = reference_entries()
    missing = [name for name in public_names(module) if f"{module}.{name}" not in entries]
    assert not missing, (
        f"{module} exports {missing} but docs/reference/ has no `::: {module}.<name>` entry "
        f"for them: add them to docs/reference/{PUBLIC_MODULES[module]}"
    )


def test_every_reference_entry_names_a_public_object():
    wrong = []
    for identifier, page in reference_entries().items():
        if identifier in PUBLIC_MODULES:
            continue
        module, _, name = identifier.rpartition(".")
        if module not in PUBLIC_MODULES:
            wrong.append(f"{page}: `::: {identifier}` is not in a public module")
        elif not hasattr(importlib.import_module(module), name):
            wrong.append(f"{page}: `::: {identifier}` does not exist")
        elif name not in public_names(module):
            wrong.append(f"{page}: `::: {identifier}` is not public (not in {module}.__all__)")
    assert not wrong, "\n".join(wrong)


def pages():
    """The Markdown pages under docs/, relative to docs/."""
    found = []
    for folder, _, files in os.walk(DOCS):
        found += [
            os.path.relpath(os.path.join(folder, f), DOCS) for f in files if f.endswith(".md")
        ]
    return sorted(found)


@pytest.mark.parametrize("page", pages())
def test_the_site_quotes_no_figure_that_results_md_does_not_hold(page):
    with open(os.path.join(ROOT, "benchmarks", "RESULTS.md"), encoding="utf-8") as handle:
        results = handle.read()
    missing = sorted(f for f in figures(prose(os.path.join(DOCS, page))) if f not in results)
    assert not missing, (
        f"docs/{page} quotes figures that benchmarks/RESULTS.md does not hold: {missing}. "
        "Link to the Results page (../benchmarks/RESULTS.md) instead."
    )


def imported_units():
    """`{unit: set of keras_cd units it imports}`, units being `graph`, `_noise`, ..."""
    found = {}
    package = os.path.join(ROOT, "keras_cd")
    for folder, _, files in os.walk(package):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, package)[: -len(".py")].split(os.sep)
            if parts == ["__init__"]:
                continue
            unit = parts[0]
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
            imported = found.setdefault(unit, set())
            for node in ast.walk(tree):
                modules = []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.append(node.module)
                    if node.module == "keras_cd":
                        modules += [f"keras_cd.{alias.name}" for alias in node.names]
                elif isinstance(node, ast.Import):
                    modules += [alias.name for alias in node.names]
                for module in modules:
                    pieces = module.split(".")
                    if pieces[0] == "keras_cd" and len(pieces) > 1 and pieces[1] != unit:
                        imported.add(pieces[1])
    return found


def test_the_architecture_table_is_the_actual_imports():
    with open(os.path.join(DOCS, "guide", "architecture.md"), encoding="utf-8") as handle:
        text = handle.read()
    rows = re.findall(r"^\| `keras_cd\.(\w+)` \| ([^|]*) \| ([^|]*) \|", text, re.M)
    assert rows, "no `keras_cd.<module>` rows in docs/guide/architecture.md"
    actual = imported_units()

    def listed(cell):
        return set(re.findall(r"`(\w+)`", cell))

    table = {unit: (listed(public), listed(internal)) for unit, public, internal in rows}
    public_units = {name.split(".")[1] for name in PUBLIC_MODULES if name != "keras_cd"}
    assert set(table) == public_units, "the table should have one row per public module"
    wrong = []
    for unit, (public, internal) in table.items():
        imports = actual.get(unit, set())
        truth = (
            {u for u in imports if not u.startswith("_")},
            {u for u in imports if u.startswith("_")},
        )
        if (public, internal) != truth:
            wrong.append(
                f"keras_cd.{unit}: table {sorted(public | internal)}, imports {sorted(imports)}"
            )
    helpers = re.findall(r"^\| `(_\w+)` \| [^|]* \| ([^|]*) \|", text, re.M)
    internal_units = {unit for unit in actual if unit.startswith("_")}
    assert {unit for unit, _ in helpers} == internal_units, (
        f"the helpers table should list {sorted(internal_units)}"
    )
    for unit, cell in helpers:
        if listed(cell) != actual[unit]:
            wrong.append(
                f"keras_cd.{unit}: table {sorted(listed(cell))}, imports {sorted(actual[unit])}"
            )
    assert not wrong, "docs/guide/architecture.md is out of date:\n" + "\n".join(wrong)


# --- The built site in a browser --------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def _unavailable(reason):
    if os.environ.get("KERAS_CD_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (KERAS_CD_REQUIRE_BROWSER=1 requires the browser test)")
    pytest.skip(f"{reason}; set KERAS_CD_REQUIRE_BROWSER=1 to make this a failure")


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4).

    `--remote-debugging-pipe` takes JSON commands, each ended by a NUL byte,
    on fd 3 and answers on fd 4: no driver, no download, no WebSocket.
    """

    def __init__(self, executable, profile, width=1280, height=1000):
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()

        def attach_pipes():  # in the child, before exec
            os.dup2(commands_read, 3)
            os.dup2(answers_write, 4)

        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=attach_pipes,
            pass_fds=(3, 4),
        )
        os.close(commands_read)
        os.close(answers_write)
        self._buffer = b""
        self._next_id = 0
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def send(self, method, timeout=60, session=None, **params):
        """Sends one command and returns its result (events in between are dropped)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                    raise TimeoutError(f"Chromium did not answer {method} within {timeout} s")
                chunk = os.read(self._answers, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium exited (code {self.process.poll()})")
                self._buffer += chunk
            raw, _, self._buffer = self._buffer.partition(b"\0")
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def page(self, method, **params):
        return self.send(method, session=self.session, **params)

    def evaluate(self, expression):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url, timeout=60):
        self.page("Page.navigate", url=url)
        self.wait_for(
            "document.readyState === 'complete' && location.href !== 'about:blank'", timeout
        )

    def wait_for(self, expression, timeout=60):
        """Polls `expression` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(0.2)

    def screenshot(self, path):
        data = self.page("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._answers)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def site(tmp_path):
    """The site built with `mkdocs build --strict` and served on 127.0.0.1: its base URL."""
    if importlib.util.find_spec("mkdocs") is None:
        _unavailable('MkDocs is not installed (pip install -e ".[docs]")')
    folder = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}{build.stderr}"
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(tmp_path):
    executable = os.environ.get("KERAS_CD_CHROMIUM") or next(
        (found for name in BROWSERS if (found := shutil.which(name))), None
    )
    if executable is None:
        _unavailable(
            f"no Chromium found (looked for {', '.join(BROWSERS)}; apt-get install chromium)"
        )
    chromium = Chromium(executable, tmp_path / "profile")
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.mark.slow
def test_the_built_site_in_a_browser(site, browser, tmp_path):
    # The home page renders: title and text in the DOM.
    browser.open(site)
    assert browser.evaluate("document.title") == "keras_cd"
    text = browser.evaluate("document.querySelector('article').innerText")
    assert "Convection-diffusion layers for Keras 3" in text
    assert "Feynman-Kac" in text and "Three readings of one equation" in text
    browser.screenshot(tmp_path / "home.png")

    # The CDBlock reference: its signature and its arguments.
    browser.open(site + "reference/layers/#keras_cd.layers.CDBlock")
    cd_block = browser.wait_for(
        "(() => { const h = document.getElementById('keras_cd.layers.CDBlock');"
        " if (!h) return null; h.scrollIntoView(); return h.parentElement.innerText; })()"
    )
    signature = browser.evaluate(
        "document.getElementById('keras_cd.layers.CDBlock').parentElement"
        ".querySelector('.doc-signature').innerText"
    )
    assert re.search(r"CDBlock\(\s*filters,\s*strides=1,\s*dt=1\.0,\s*sigma=0\.1", signature), (
        signature
    )
    assert "kernel_regularizer=None" in signature and "**kwargs" in signature
    arguments = browser.evaluate(
        "[...document.getElementById('keras_cd.layers.CDBlock').parentElement"
        ".querySelector('table').querySelectorAll('tbody tr td:first-child')]"
        ".map(cell => cell.innerText.trim())"
    )
    assert arguments[:6] == ["filters", "strides", "dt", "sigma", "mode", "seed"], arguments
    assert "kernel_regularizer" in arguments and "parameter" in cd_block.lower()
    browser.screenshot(tmp_path / "cd_block.png")

    # Search runs in JavaScript (lunr in a web worker): ?q= opens it with the query.
    browser.open(site + "?q=GraphDiffusion")
    links = browser.wait_for(
        "(() => { const links = [...document.querySelectorAll('.md-search-result__link')]"
        ".map(a => a.href); return links.length ? links : null; })()"
    )
    assert any("reference/layers/" in link for link in links), links
    assert any(link.endswith("#keras_cd.layers.GraphDiffusion") for link in links) or any(
        "GraphDiffusion" in text
        for text in browser.evaluate(
            "[...document.querySelectorAll('.md-search-result__item')].map(i => i.innerText)"
        )
    ), links
    meta = browser.evaluate("document.querySelector('.md-search-result__meta').innerText")
    assert re.match(r"\d+ matching documents?", meta), meta
    browser.screenshot(tmp_path / "search.png")


def test_every_public_class_and_function_documents_its_arguments_and_an_example():
    """Google style, as Keras writes it: every public class and function in a public
    module's `__all__` has an Example, documents each named argument under `Args:`
    (dataclasses: `Attributes:`), and a function that returns something says what
    under `Returns:`."""
    problems = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in public_names(module_name):
            member = getattr(module, name)
            if not (inspect.isclass(member) or inspect.isfunction(member)):
                continue
            where, doc = f"{module_name}.{name}", inspect.getdoc(member) or ""
            if "Example" not in doc:
                problems.append(f"{where}: no Example")
            try:
                signature = inspect.signature(member)
            except ValueError:  # exception classes (builtin __init__): their Raises documents them
                continue
            parameters = [
                p
                for p in signature.parameters.values()
                if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            heading = "Args:" if "Args:" in doc else "Attributes:"
            if parameters and heading not in doc:
                problems.append(f"{where}: no Args")
                continue
            section = doc.split(heading, 1)[-1]
            problems += [
                f"{where}: argument {p.name!r} is not under {heading}"
                for p in parameters
                if not re.search(rf"^\s+{re.escape(p.name)}\b", section, re.M)
            ]
            returns = signature.return_annotation
            returns_something = returns not in (None, "None", inspect.Signature.empty)
            if inspect.isfunction(member) and returns_something:
                if "Returns:" not in doc and "Yields:" not in doc:
                    problems.append(f"{where}: no Returns")
    assert not problems, "\n".join(problems)

"""Griffe extensions for the keras_cd docs site (mkdocs.yml loads this file).

- `LazyTopLevelNames`: `keras_cd/__init__.py` imports `CDBlock`,
  `monte_carlo`, ... on first use (a module `__getattr__`), so static analysis
  does not see them. Each name of `keras_cd.__all__` that is not a submodule
  becomes an alias of the public subpackage that exports it
  (`keras_cd.CDBlock` -> `keras_cd.layers.CDBlock`), so `::: keras_cd.CDBlock`
  renders. `import keras_cd` is cheap: it imports no framework.
- `ShadowedSubmodules`: where a package's `__init__` imports a function of
  the same name as the submodule that defines it (`keras_cd.graph.laplacian`,
  `keras_cd.node_classification.search`), the package attribute is the
  function at runtime, but static analysis gives the submodule. The member
  becomes the function, as at runtime, once every alias through the
  submodule's path is resolved.
- `KerasDocstrings`: the docstrings follow Keras' Google style, which Griffe
  reads mostly as is. Two adjustments for rendering: doctest lines (`>>>` and
  their output) are fenced as `pycon` code wherever they stand (Keras writes
  `Example:`, which Griffe renders as an admonition of Markdown text), and the
  entries of a `Call arguments:` section become a list.
"""

import ast
import importlib
import re

import griffe

_CALL_ARGUMENT = re.compile(r"^(\s*)(\*{0,2}\w+)(\s*\([^)]*\))?:\s")


class LazyTopLevelNames(griffe.Extension):
    """Adds the lazily imported names of `keras_cd.__all__` as aliases."""

    def on_package(self, *, pkg, loader, **kwargs):  # noqa: D102
        if pkg.path != "keras_cd":
            return
        exported = list(importlib.import_module("keras_cd").__all__)
        for name in exported:
            if name in pkg.members:
                continue
            owners = [
                module
                for module_name, module in sorted(pkg.modules.items())
                if not module_name.startswith("_")
                and name in module.members
                and (name in (module.exports or ()) or not module.members[name].is_alias)
            ]
            if not owners:
                raise ValueError(
                    f"keras_cd.{name} is in keras_cd.__all__, but no public submodule "
                    "defines or exports it (docs/_griffe/keras_cd_docs.py)"
                )
            pkg.set_member(name, griffe.Alias(name, f"{owners[0].path}.{name}", parent=pkg))
        pkg.exports = exported


def _objects(obj):
    """`obj` and every member below it, aliases included (not followed)."""
    yield obj
    if not obj.is_alias:
        for member in obj.members.values():
            yield from _objects(member)


def _shadowed(module):
    """Names that `module`'s `__init__` imports from its submodule of the same name."""
    if not (module.is_package or module.is_subpackage):
        return []
    names = []
    for node in ast.parse(module.filepath.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodule = node.module.rpartition(".")
            names += [
                alias.name
                for alias in node.names
                if submodule[0] == module.path
                and submodule[2] == alias.name
                and alias.asname is None
            ]
    return names


class ShadowedSubmodules(griffe.Extension):
    """Makes `package.name` the function `name`, not the submodule it shadows."""

    def on_package(self, *, pkg, loader, **kwargs):  # noqa: D102
        if pkg.path != "keras_cd":
            return
        shadowed = [
            (module, name)
            for module in _objects(pkg)
            if not module.is_alias and module.is_module
            for name in _shadowed(module)
            if name in module.members and module.members[name].is_module
        ]
        if not shadowed:
            return
        # Resolve every alias now: afterwards no path through the submodules exists.
        for obj in list(_objects(pkg)):
            if obj.is_alias:
                try:
                    _ = obj.final_target
                except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                    pass  # outside keras_cd (numpy, keras, ...)
        for module, name in shadowed:
            function = module.members[name].members[name]
            module.members[name] = griffe.Alias(name, function, parent=module)


def fence_doctests(text):
    """Wraps each run of doctest lines (`>>>`, `...`, output) in a pycon fence."""
    lines = text.split("\n")
    out = []
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
                out.append(lines[i])
                i += 1
            out.append(f"{indent}```")
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def list_call_arguments(text):
    """Turns the `name: description` entries of `Call arguments:` into list items."""
    lines = text.split("\n")
    out = []
    section_indent = None
    for line in lines:
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if stripped.rstrip() == "Call arguments:":
            section_indent = indent
            out.append(line)
            continue
        if section_indent is not None and stripped and indent <= section_indent:
            section_indent = None
        if section_indent is not None and indent == section_indent + 4:
            match = _CALL_ARGUMENT.match(line)
            if match:
                rest = line[match.end() :]
                name = match.group(2) + (match.group(3) or "")
                line = f"{match.group(1)}- `{name}`: {rest}"
        out.append(line)
    return "\n".join(out)


class KerasDocstrings(griffe.Extension):
    """Fences doctests and lists call arguments in every keras_cd docstring."""

    def on_object(self, *, obj, loader, **kwargs):  # noqa: D102
        docstring = obj.docstring
        if docstring is None or not obj.path.startswith("keras_cd"):
            return
        docstring.value = list_call_arguments(fence_doctests(docstring.value))

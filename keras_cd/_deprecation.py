"""Deprecated names, kept for one release with a warning (until keras_cd 0.3).

keras_cd writes American English, as Keras does, and names twins alike:
`keras_cd.robustness` spells `Defense`, `DefenseSpec`, `default_defenses`,
`train_defenses` and the `defense=` keyword (formerly "defence"), and
`keras_cd.forecasting` names its protocol `run_protocol`, `ProtocolResult`
and `RunResult`, as `keras_cd.node_classification` does (formerly
`run_forecasting_protocol`, `ForecastProtocolResult` and `ForecastRun`).
The old names still work for one release, each use with a
`DeprecationWarning` that names the replacement.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

_F = TypeVar("_F", bound=Callable[..., Any])

REMOVED_IN = "0.3"


def warn(old, new, stacklevel=3):
    """Warns that `old` is deprecated in favor of `new`.

    Args:
        old: str, what the caller used.
        new: str, what to use instead.
        stacklevel: int, the frame the warning points at. Defaults to `3`,
            the caller of the function that calls `warn`.
    """
    warnings.warn(
        f"{old} is deprecated and will be removed in keras_cd {REMOVED_IN}; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def deprecated_aliases(module, renamed, namespace):
    """A module `__getattr__` that resolves old names to new ones, with a warning.

    Args:
        module: str, the module's `__name__`.
        renamed: dict of old name -> new name.
        namespace: dict, the module's `globals()`, where the new names live.

    Returns:
        A function `__getattr__(name)` for the module (PEP 562).
    """

    def __getattr__(name):
        if name in renamed:
            warn(f"{module}.{name}", f"{module}.{renamed[name]}")
            return namespace[renamed[name]]
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def renamed_keyword(path: str, old: str = "defence", new: str = "defense") -> Callable[[_F], _F]:
    """Decorates the function `path` so that its old keyword `old=` still works.

    The value is passed on as `new=`, with a `DeprecationWarning`.

    Args:
        path: str, the function's public name, for the warning.
        old: str, the deprecated keyword. Defaults to `"defence"`.
        new: str, its replacement. Defaults to `"defense"`.

    Returns:
        The decorator.
    """

    def decorate(function: _F) -> _F:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(
                        f"{path}() got both `{new}` and its deprecated spelling `{old}`; "
                        f"pass `{new}` only."
                    )
                warn(f"The `{old}` argument of {path}", f"`{new}`")
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return cast(_F, wrapper)

    return decorate

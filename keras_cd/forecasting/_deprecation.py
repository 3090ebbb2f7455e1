"""The deprecated names of `keras_cd.forecasting`, kept until keras_cd 0.3.

The forecasting harness names its protocol as the node-classification one
does: `run_protocol`, `ProtocolResult` and `RunResult` (formerly
`run_forecasting_protocol`, `ForecastProtocolResult` and `ForecastRun`).
The old names still work for one release, each use with a
`DeprecationWarning` that names the replacement.
"""

import warnings

REMOVED_IN = "0.3"


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
            warnings.warn(
                f"{module}.{name} is deprecated and will be removed in keras_cd {REMOVED_IN}; "
                f"use {module}.{renamed[name]}",
                DeprecationWarning,
                stacklevel=2,
            )
            return namespace[renamed[name]]
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__

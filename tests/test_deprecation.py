"""The names renamed in keras_cd 0.2, kept for one release (keras_cd/_deprecation.py).

Each old name gives the new object with a DeprecationWarning that names the
replacement and points at the caller; none is in `__all__`.
"""

import importlib
import re

import pytest

RENAMED = [
    # American spelling, as Keras (robustness)
    ("keras_cd.robustness", "Defence", "Defense"),
    ("keras_cd.robustness", "DefenceSpec", "DefenseSpec"),
    ("keras_cd.robustness", "default_defences", "default_defenses"),
    ("keras_cd.robustness", "train_defences", "train_defenses"),
    ("keras_cd.robustness.attacks", "Defence", "Defense"),
    ("keras_cd.robustness.sweep", "DefenceSpec", "DefenseSpec"),
    ("keras_cd.robustness.sweep", "default_defences", "default_defenses"),
    ("keras_cd.robustness.sweep", "train_defences", "train_defenses"),
    # the forecasting protocol's twins, named as keras_cd.node_classification's
    ("keras_cd.forecasting", "run_forecasting_protocol", "run_protocol"),
    ("keras_cd.forecasting", "ForecastProtocolResult", "ProtocolResult"),
    ("keras_cd.forecasting", "ForecastRun", "RunResult"),
    ("keras_cd.forecasting.protocol", "run_forecasting_protocol", "run_protocol"),
    ("keras_cd.forecasting.protocol", "ForecastProtocolResult", "ProtocolResult"),
    ("keras_cd.forecasting.trainer", "ForecastRun", "RunResult"),
]


def deprecation(old, new):
    """The DeprecationWarning that `old` gives, naming `new` (removed in keras_cd 0.3)."""
    message = f"{old} is deprecated and will be removed in keras_cd 0.3; use {new}"
    return pytest.warns(DeprecationWarning, match=f"^{re.escape(message)}$")


@pytest.mark.parametrize("module, old, new", RENAMED)
def test_each_deprecated_name_is_the_new_object_with_a_warning(module, old, new):
    namespace = importlib.import_module(module)
    with deprecation(f"{module}.{old}", f"{module}.{new}") as warned:
        alias = getattr(namespace, old)
    assert alias is getattr(namespace, new)
    assert warned[0].filename == __file__  # the warning points at the caller
    assert old not in getattr(namespace, "__all__", [])
    with pytest.raises(AttributeError, match=f"has no attribute '{old}_unknown'"):
        getattr(namespace, f"{old}_unknown")

"""Argument checks shared by the keras_cd layers.

Every check raises ``ValueError`` with the same four parts: the argument, what
was expected, what was received and how to fix it.
"""

import math
import numbers


def _fail(name, expected, received, fix):
    raise ValueError(
        f"Invalid value for `{name}`: expected {expected}. "
        f"Received: {name}={received!r}. {fix}"
    )


def non_negative_float(name, value, fix):
    """Returns `value` as a float after checking it is finite and >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(name, "a finite number >= 0", value, fix)
    value = float(value)
    if not math.isfinite(value) or value < 0:
        _fail(name, "a finite number >= 0", value, fix)
    return value


def positive_float(name, value, fix):
    """Returns `value` as a float after checking it is finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(name, "a finite number > 0", value, fix)
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        _fail(name, "a finite number > 0", value, fix)
    return value


def positive_int(name, value, fix):
    """Returns `value` as an int after checking it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(name, "an integer >= 1", value, fix)
    if value < 1:
        _fail(name, "an integer >= 1", value, fix)
    return int(value)


def optional_seed(name, value):
    """Returns `value` unchanged after checking it is None or an int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(name, "None or an integer", value,
              "Pass an int for reproducible noise, or None for a random seed.")
    return int(value)


def one_of(name, value, choices, fix):
    """Returns `value` after checking it is one of `choices`."""
    if value not in choices:
        _fail(name, f"one of {sorted(choices)}", value, fix)
    return value


def input_rank(layer, input_shape, expected, description):
    """Checks that a layer's input has rank `expected` (an int or a range)."""
    rank = len(input_shape)
    ok = rank in expected if isinstance(expected, range) else rank == expected
    if not ok:
        raise ValueError(
            f"Invalid input shape for `{layer.__class__.__name__}` "
            f"(name={layer.name!r}): expected {description}. "
            f"Received: input_shape={tuple(input_shape)} (rank {rank}). "
            "Reshape the input, or use the layer meant for that rank "
            "(`keras_cd.CDBlock` for images, `keras_cd.DenseCDBlock` for "
            "feature vectors)."
        )

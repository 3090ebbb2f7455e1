"""Argument checks shared by keras_cd: the one place they are written.

Every check raises ``ValueError`` with the same four parts: the argument, what
was expected, what was received and how to fix it. Numbers may be Python or
NumPy scalars (``np.int64(7)``, ``np.float32(0.3)``); booleans are never
accepted as numbers.
"""

import math
import numbers


def invalid(name, expected, received, fix):
    """Raises the ValueError for an argument that failed a check of its own."""
    raise ValueError(
        f"Invalid value for `{name}`: expected {expected}. Received: {name}={received!r}. {fix}"
    )


def _is_bool(value):
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy.bool_


def integer(name, value, fix, minimum=None, expected=None):
    """Returns `value` as an int after checking it is an integer >= `minimum`."""
    expected = expected or ("an integer" if minimum is None else f"an integer >= {minimum}")
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        invalid(name, expected, value, fix)
    if minimum is not None and value < minimum:
        invalid(name, expected, value, fix)
    return int(value)


def number(name, value, fix, low=None, high=None, low_open=False, high_open=False):
    """Returns `value` as a float after checking it is finite and in the interval."""
    left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
    if low is not None and high is not None:
        expected = (
            f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        )
    else:
        expected = " ".join(["a finite number", left or right]).strip()
    if _is_bool(value) or not isinstance(value, numbers.Real):
        invalid(name, expected, value, fix)
    value = float(value)
    if (
        not math.isfinite(value)
        or (low is not None and (value <= low if low_open else value < low))
        or (high is not None and (value >= high if high_open else value > high))
    ):
        invalid(name, expected, value, fix)
    return value


def non_negative_float(name, value, fix):
    """Returns `value` as a float after checking it is finite and >= 0."""
    return number(name, value, fix, low=0)


def positive_float(name, value, fix):
    """Returns `value` as a float after checking it is finite and > 0."""
    return number(name, value, fix, low=0, low_open=True)


def rate(name, value, fix=None):
    """Returns a dropout-style rate in [0, 1) as a float."""
    return number(name, value, fix or f"Use e.g. {name}=0.5.", low=0, high=1, high_open=True)


def probability(name, value, fix=None):
    """Returns a probability strictly between 0 and 1 as a float."""
    return number(
        name, value, fix or f"Use e.g. {name}=0.001.", low=0, high=1, low_open=True, high_open=True
    )


def positive_int(name, value, fix):
    """Returns `value` as an int after checking it is an integer >= 1."""
    return integer(name, value, fix, minimum=1)


def non_negative_int(name, value, fix):
    """Returns `value` as an int after checking it is an integer >= 0."""
    return integer(name, value, fix, minimum=0)


def boolean(name, value):
    """Returns `value` as a bool after checking it is one (Python or NumPy)."""
    if not _is_bool(value):
        invalid(name, "True or False", value, f"Pass {name}=True or {name}=False.")
    return bool(value)


def optional_seed(name, value):
    """Returns `value` as an int (or None) after checking it is None or an integer."""
    if value is None:
        return None
    return integer(
        name,
        value,
        "Pass an int for reproducible randomness, or None for a random seed.",
        expected="None or an integer",
    )


def one_of(name, value, choices, fix):
    """Returns `value` after checking it is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        invalid(name, f"one of {sorted(choices)}", value, fix)
    return value


def input_rank(layer, input_shape, expected, description, fix="Reshape the input to that rank."):
    """Checks that `layer`'s input has rank `expected` (an int or a range).

    The message names `layer` (the one that raised) and its own fix.
    """
    rank = len(input_shape)
    ok = rank in expected if isinstance(expected, range) else rank == expected
    if not ok:
        raise ValueError(
            f"Invalid input shape for `{layer.__class__.__name__}` "
            f"(name={layer.name!r}): expected {description}. "
            f"Received: input_shape={tuple(input_shape)} (rank {rank}). {fix}"
        )

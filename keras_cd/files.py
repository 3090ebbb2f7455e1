"""Files written atomically: a reader sees the old content or the complete new one.

Results, exports and checkpoints are built in a temporary sibling of their
final path, flushed to disk, then renamed into place, so a run killed while
writing never leaves a half-written file where a complete one was (or where
a reader expects one).

- [`atomic_path(path)`][keras_cd.files.atomic_path]: a context manager
  yielding the temporary path to write a file or folder with any writer.
- [`write_json(path, data)`][keras_cd.files.write_json]: a JSON file written
  that way.

No mathematics of the paper lives here: this is the storage layer under the
training checkpoints, the exported models and the benchmark results, and it
imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from keras_cd._atomic import atomic_path

if TYPE_CHECKING:
    import os

__all__ = ["atomic_path", "write_json"]


def write_json(
    path: str | os.PathLike, data: Any, indent: int | None = 2, overwrite: bool = True
) -> str:
    """Writes `data` as JSON to `path` atomically.

    The JSON text is encoded in full before anything is written (so a value
    that JSON cannot represent raises before the file is touched), written
    to a temporary sibling, flushed to disk and renamed over `path`.

    Args:
        path: str or path-like, the file to write; missing parent folders are
            created.
        data: a JSON-serializable object (dicts, lists, str, int, float,
            bool, None). NaN and infinity are refused: they are not JSON.
        indent: int or None, as in `json.dumps`. Defaults to `2`.
        overwrite: bool, replace an existing file. Defaults to `True`.

    Returns:
        The absolute path written, a str.

    Raises:
        ValueError: if `data` holds NaN or infinity.
        TypeError: if `data` holds an object JSON cannot encode.
        FileExistsError: if `path` exists and `overwrite=False`.

    Example:
        >>> import json, os, tempfile
        >>> import keras_cd.files
        >>> target = os.path.join(tempfile.mkdtemp(), "result.json")
        >>> path = keras_cd.files.write_json(target, {"mse": 0.5})
        >>> with open(path) as handle:
        ...     json.load(handle)
        {'mse': 0.5}
        >>> keras_cd.files.write_json(target, {"mse": float("nan")})
        Traceback (most recent call last):
        ...
        ValueError: Invalid value for `data`: expected finite numbers only ...
        >>> with open(path) as handle:  # the file is untouched
        ...     json.load(handle)
        {'mse': 0.5}
    """
    import os

    try:
        text = json.dumps(data, indent=indent, allow_nan=False)
    except ValueError as error:
        raise ValueError(
            f"Invalid value for `data`: expected finite numbers only (JSON has no NaN or "
            f"infinity). Received: {error}. Report a failed value as None or a string."
        ) from None
    with atomic_path(path, overwrite=overwrite) as temporary:
        with open(temporary, "w") as handle:
            handle.write(text + "\n")
    return os.path.abspath(os.fspath(path))

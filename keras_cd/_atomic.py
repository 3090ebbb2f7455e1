"""Atomic writes: build in a temporary sibling, then rename into place.

The implementation behind the public `keras_cd.files.atomic_path`, used by the
checkpoints, the exporters and the benchmark records.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
import uuid
from collections.abc import Iterator


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(path):
    paths = (
        [path]
        if os.path.isfile(path)
        else [os.path.join(root, name) for root, _, names in os.walk(path) for name in names]
    )
    for name in paths:
        with open(name, "rb") as handle:
            os.fsync(handle.fileno())


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(first, second):
    """Atomically swaps two paths (Linux renameat2(RENAME_EXCHANGE)).

    Returns False where the OS or file system cannot (another OS, an old
    kernel or C library, a file system without the flag); the caller then
    falls back to two renames.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(error, os.strerror(error), first)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover(directory, name, final_path):
    """Repairs what a writer killed mid-way left beside `final_path`.

    A `.NAME.old-*` folder with no `final_path` is the old content that the
    two-rename fallback had moved aside: it is put back. Otherwise old
    copies and the temporary folders of writers that no longer run are
    removed.
    """
    old_prefix, temporary_prefix = f".{name}.old-", f".{name}.tmp-"
    leftovers = sorted(os.listdir(directory))
    for entry in leftovers:
        if entry.startswith(old_prefix):
            path = os.path.join(directory, entry)
            if not os.path.lexists(final_path):
                os.replace(path, final_path)
            else:
                _remove(path)
        elif entry.startswith(temporary_prefix):
            pid = entry[len(temporary_prefix) :].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                _remove(os.path.join(directory, entry))


@contextlib.contextmanager
def atomic_path(
    final_path: str | os.PathLike, suffix: str = "", overwrite: bool = True
) -> Iterator[str]:
    """Yields a temporary sibling of `final_path` to write a file or folder.

    Write the new content to the yielded path with any writer (a file, or a
    folder such as a SavedModel). When the block succeeds, the temporary path
    is flushed to disk and put in place of `final_path` such that readers see
    the old or the complete new content at every instant: `rename` for a
    file; for a folder replacing a folder, an atomic exchange of the two
    (Linux `renameat2` with `RENAME_EXCHANGE`), the old one then deleted. Where the OS has no
    exchange, two renames are the fallback: the old folder is moved aside to
    `.NAME.old-*`, then the new one into place; a kill between them leaves no
    `final_path` for that instant, and the next `atomic_path` call on the
    same path puts the old folder back (or, once the new one is in place,
    removes the old copy). Temporary folders of killed writers are removed
    by the next call too. When the block fails, the temporary path is removed
    and `final_path` is untouched (and a parent folder this call created is
    removed again if it stayed empty).

    Args:
        final_path: str or path-like, the file or folder to write; missing
            parent folders are created.
        suffix: str, appended to the temporary name, for writers that insist
            on an extension (such as `.keras`). Defaults to `""`.
        overwrite: bool, replace an existing `final_path`. Defaults to `True`.

    Yields:
        str, the absolute temporary path to write; nothing exists there yet.

    Raises:
        FileExistsError: if `final_path` exists and `overwrite=False` (before
            the block runs).

    Example:
        >>> import os, tempfile
        >>> import keras_cd.files
        >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
        >>> with keras_cd.files.atomic_path(path) as temporary:
        ...     with open(temporary, "w") as handle:
        ...         _ = handle.write("complete")
        ...     os.path.exists(path)  # nothing at `path` until the block succeeds
        False
        >>> with open(path) as handle:
        ...     handle.read()
        'complete'
        >>> with keras_cd.files.atomic_path(path, overwrite=False) as temporary:
        ...     pass
        Traceback (most recent call last):
        ...
        FileExistsError: Refusing to overwrite ...
    """
    final_path = os.path.abspath(os.fspath(final_path))
    directory, name = os.path.split(final_path)
    created = not os.path.isdir(directory)
    os.makedirs(directory, exist_ok=True)
    _recover(directory, name, final_path)
    if not overwrite and os.path.lexists(final_path):
        raise FileExistsError(
            f"Refusing to overwrite {final_path!r}: it already exists. "
            "Pass overwrite=True to replace it, or choose another path."
        )
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temporary = os.path.join(directory, f".{name}.tmp-{token}{suffix}")
    succeeded = False
    try:
        yield temporary
        _fsync_tree(temporary)
        if os.path.isdir(temporary) and os.path.isdir(final_path):
            # A folder cannot be renamed over a non-empty one.
            if not _exchange(temporary, final_path):
                retired = os.path.join(directory, f".{name}.old-{token}")
                os.replace(final_path, retired)
                os.replace(temporary, final_path)
                _remove(retired)
            # After an exchange `temporary` holds the old folder: removed below.
        else:
            os.replace(temporary, final_path)
        _fsync_directory(directory)
        succeeded = True
    finally:
        _remove(temporary)
        if created and not succeeded and not os.listdir(directory):
            os.rmdir(directory)  # leave no empty folder from a failed write

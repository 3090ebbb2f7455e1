"""Atomic writes: build in a temporary sibling, then rename into place."""

import contextlib
import os
import shutil
import uuid


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
    paths = [path] if os.path.isfile(path) else [
        os.path.join(root, name) for root, _, names in os.walk(path) for name in names
    ]
    for name in paths:
        with open(name, "rb") as handle:
            os.fsync(handle.fileno())


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def atomic_path(final_path, suffix="", overwrite=True):
    """Yields a temporary sibling of `final_path` to write a file or folder.

    When the block succeeds, the temporary path is flushed to disk and renamed
    onto `final_path`, so readers only ever see the old or the complete new
    content; when it fails, the temporary path is removed and `final_path` is
    untouched. `suffix` is appended to the temporary name (for writers that
    insist on an extension, such as `.keras` or `.weights.h5`).
    """
    final_path = os.path.abspath(os.fspath(final_path))
    directory, name = os.path.split(final_path)
    created = not os.path.isdir(directory)
    os.makedirs(directory, exist_ok=True)
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
            # Directories cannot be renamed over a non-empty one: move the old
            # one aside first; it is deleted only once the new one is in place.
            retired = os.path.join(directory, f".{name}.old-{token}")
            os.replace(final_path, retired)
            os.replace(temporary, final_path)
            _remove(retired)
        else:
            os.replace(temporary, final_path)
        _fsync_directory(directory)
        succeeded = True
    finally:
        _remove(temporary)
        if created and not succeeded and not os.listdir(directory):
            os.rmdir(directory)  # leave no empty folder from a failed write

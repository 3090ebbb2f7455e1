"""keras_cd._atomic: readers see the old or the new folder at every instant, and
a writer killed between any two steps leaves nothing that the next call cannot repair."""

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from keras_cd import _atomic
from keras_cd._atomic import atomic_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_folder(path, content):
    with atomic_path(path) as temporary:
        os.makedirs(temporary)
        with open(os.path.join(temporary, "content.txt"), "w") as handle:
            handle.write(content)


def read_folder(path):
    with open(os.path.join(path, "content.txt")) as handle:
        return handle.read()


def siblings(path):
    return sorted(os.listdir(os.path.dirname(path)))


def test_a_reader_never_finds_the_folder_missing_while_it_is_replaced(tmp_path):
    os.makedirs(tmp_path / "probe_a")
    os.makedirs(tmp_path / "probe_b")
    if not _atomic._exchange(str(tmp_path / "probe_a"), str(tmp_path / "probe_b")):
        pytest.skip(
            "this OS / file system has no atomic exchange (renameat2 RENAME_EXCHANGE); "
            "the documented two-rename fallback applies"
        )
    target = str(tmp_path / "model")
    write_folder(target, "0")
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                seen.append(read_folder(target))
            except FileNotFoundError:
                seen.append(None)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(1, 200):
            write_folder(target, str(version))
    finally:
        stop.set()
        thread.join()
    assert None not in seen and len(seen) > 100
    assert read_folder(target) == "199"
    assert siblings(target) == ["model", "probe_a", "probe_b"]  # no leftovers


KILLER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from keras_cd import _atomic
    target, mode = sys.argv[1], sys.argv[2]
    if mode == "fallback-between-renames":
        _atomic._exchange = lambda a, b: False
        real_replace, calls = os.replace, []
        def replace(source, destination):
            real_replace(source, destination)
            calls.append(destination)
            if len(calls) == 1:  # the old folder is aside, the new one not yet in place
                os.kill(os.getpid(), signal.SIGKILL)
        os.replace = replace
    elif mode == "after-exchange":
        def remove(path):
            os.kill(os.getpid(), signal.SIGKILL)
        _atomic._remove = remove
    with _atomic.atomic_path(target) as temporary:
        os.makedirs(temporary)
        with open(os.path.join(temporary, "content.txt"), "w") as handle:
            handle.write("new")
""")


def kill_while_writing(target, mode):
    script = KILLER.format(root=ROOT)
    result = subprocess.run([sys.executable, "-c", script, target, mode], capture_output=True)
    assert result.returncode == -9, result.stderr.decode()[-2000:]


def test_kill_between_the_two_renames_of_the_fallback_is_repaired(tmp_path):
    target = str(tmp_path / "model")
    write_folder(target, "old")
    kill_while_writing(target, "fallback-between-renames")
    assert not os.path.exists(target)  # the instant the fallback cannot avoid
    assert any(name.startswith(".model.old-") for name in siblings(target))
    with pytest.raises(RuntimeError):
        with atomic_path(target):
            # The next call first puts the old folder back ...
            assert read_folder(target) == "old"
            raise RuntimeError("this write fails too")
    assert read_folder(target) == "old"  # ... and a failed write leaves it there
    assert siblings(target) == ["model"]
    write_folder(target, "newer")
    assert read_folder(target) == "newer" and siblings(target) == ["model"]


def test_kill_after_the_exchange_leaves_the_new_folder_and_the_next_call_cleans_up(tmp_path):
    target = str(tmp_path / "model")
    write_folder(target, "old")
    kill_while_writing(target, "after-exchange")
    if read_folder(target) == "old":
        pytest.skip("no atomic exchange here: the kill came before the folder was replaced")
    assert read_folder(target) == "new"
    assert len(siblings(target)) == 2  # the old content under the dead writer's temporary name
    write_folder(target, "newer")
    assert read_folder(target) == "newer"
    assert siblings(target) == ["model"]


def test_a_failed_block_leaves_the_old_folder_and_no_temporary(tmp_path):
    target = str(tmp_path / "model")
    write_folder(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            os.makedirs(temporary)
            raise RuntimeError("export failed")
    assert read_folder(target) == "old" and siblings(target) == ["model"]

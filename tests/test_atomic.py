"""utils._atomic: a file or folder appears complete at its path, or not at all."""

import os

import pytest

from sklearn_music.utils._atomic import atomic_write, temp_owner, temp_path


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_publishes_complete_file(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.bin.")
        tmp.write_bytes(b"new")
        assert not target.exists()  # nothing at the target until the block ends
    assert target.read_bytes() == b"new"
    assert _names(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_keeps_old_file_and_removes_temp(tmp_path, exc):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(type(exc)):
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"half")
            raise exc
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["out.bin"]


def test_failure_before_the_file_exists(tmp_path):
    with pytest.raises(ValueError, match="early"):
        with atomic_write(tmp_path / "never.bin"):
            raise ValueError("early")
    assert _names(tmp_path) == []


def test_replacing_keeps_open_readers_on_old_inode(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with open(target, "rb") as reader:
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"new")
        assert reader.read() == b"old"
    assert target.read_bytes() == b"new"


def test_directory(tmp_path):
    dest = tmp_path / "unpacked"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(dest, suffix=".part", directory=True) as tmp:
            (tmp / "a.txt").write_text("a")
            raise KeyboardInterrupt
    assert _names(tmp_path) == []
    with atomic_write(dest, suffix=".part", directory=True) as tmp:
        assert tmp.is_dir() and tmp.name.endswith(".part")
        (tmp / "a.txt").write_text("a")
    assert _names(tmp_path) == ["unpacked"] and (dest / "a.txt").read_text() == "a"


class _Lock:
    def __init__(self, target):
        self.target, self.seen = target, []

    def __enter__(self):
        self.seen.append(("enter", self.target.exists()))

    def __exit__(self, *exc):
        self.seen.append(("exit", self.target.exists()))


def test_lock_held_around_the_rename_only_on_success(tmp_path):
    target = tmp_path / "out.bin"
    lock = _Lock(target)
    with atomic_write(target, lock=lock) as tmp:
        tmp.write_bytes(b"x")
        assert lock.seen == []
    assert lock.seen == [("enter", False), ("exit", True)]
    failed = _Lock(target)
    with pytest.raises(RuntimeError):
        with atomic_write(target, lock=failed):
            raise RuntimeError
    assert failed.seen == []


def test_temp_names_carry_the_pid(tmp_path):
    target = tmp_path / "tracks.db"
    name = temp_path(target).name
    assert temp_owner(target, name) == os.getpid()
    assert temp_owner(target, name.replace(".tmp", ".part"), suffix=".part") == os.getpid()
    assert temp_owner(target, name, suffix=".part") is None
    assert temp_owner(tmp_path / "other.db", name) is None
    assert temp_owner(target, ".tracks.db.x1.abc.tmp") is None
    assert temp_owner(target, ".tracks.db.12.tmp") is None
    assert temp_path(target) != temp_path(target)

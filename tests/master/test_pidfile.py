"""Pidfile: claimed from nobody alive, written whole, moved aside on USR2, removed if ours."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from covetd.master.pidfile import Pidfile, PidfileError


@pytest.fixture
def other_process() -> Iterator[int]:
    """The pid of another live process (a ``sleep``), ended after the test."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc.pid
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait(10)
    return proc.pid


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "covetd.pid"


def test_create_writes_the_pid(path: Path) -> None:
    pidfile = Pidfile(path)
    pidfile.create(os.getpid())
    assert path.read_text() == f"{os.getpid()}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert pidfile.validate() == os.getpid()
    assert os.listdir(path.parent) == ["covetd.pid"]  # no temporary file left behind


def test_create_refuses_a_file_naming_another_live_process(path: Path, other_process: int) -> None:
    path.write_text(f"{other_process}\n")
    with pytest.raises(PidfileError) as info:
        Pidfile(path).create(os.getpid())
    message = str(info.value)
    assert f"pidfile {path} names process {other_process}, which is running" in message
    assert "\n" not in message
    assert path.read_text() == f"{other_process}\n"


@pytest.mark.parametrize("content", ["{dead}\n", "", "garbage\n", "0\n", "-1\n", "²\n"])
def test_create_replaces_a_stale_file(path: Path, dead_pid: int, content: str) -> None:
    path.write_text(content.format(dead=dead_pid))
    assert Pidfile(path).validate() is None
    Pidfile(path).create(os.getpid())
    assert path.read_text() == f"{os.getpid()}\n"


def test_create_over_our_own_file(path: Path) -> None:
    Pidfile(path).create(os.getpid())
    Pidfile(path).create(os.getpid())
    assert path.read_text() == f"{os.getpid()}\n"


def test_create_for_a_child_that_holds_the_file_already(path: Path, other_process: int) -> None:
    path.write_text(f"{other_process}\n")
    Pidfile(path).create(other_process)
    assert Pidfile(path).validate() == other_process


def test_create_replaces_the_file_rather_than_rewriting_it(path: Path, dead_pid: int) -> None:
    """A reader holding the old file open still sees it whole: it was renamed over."""
    path.write_text(f"{dead_pid}\n")
    with open(path) as old:
        Pidfile(path).create(os.getpid())
        assert old.read() == f"{dead_pid}\n"
    assert path.read_text() == f"{os.getpid()}\n"


def test_create_in_a_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "covetd.pid"
    with pytest.raises(PidfileError, match=f"^cannot write pidfile {path}: No such file"):
        Pidfile(path).create(os.getpid())


def test_validate(path: Path, other_process: int, dead_pid: int) -> None:
    pidfile = Pidfile(path)
    assert pidfile.validate() is None
    path.write_text(f"{other_process}\n")
    assert pidfile.validate() == other_process
    path.write_text(f"{dead_pid}")
    assert pidfile.validate() is None


def test_validate_an_unreadable_file(path: Path) -> None:
    path.mkdir()
    with pytest.raises(PidfileError, match=f"^cannot read pidfile {path}: Is a directory"):
        Pidfile(path).validate()


def test_unlink_removes_our_file(path: Path) -> None:
    pidfile = Pidfile(path)
    pidfile.create(os.getpid())
    pidfile.unlink()
    assert not path.exists()
    pidfile.unlink()  # already gone: nothing to do


def test_unlink_leaves_a_file_that_is_no_longer_ours(path: Path, other_process: int) -> None:
    pidfile = Pidfile(path)
    pidfile.create(os.getpid())
    path.write_text(f"{other_process}\n")
    pidfile.unlink()
    assert path.read_text() == f"{other_process}\n"


def test_unlink_before_create_touches_nothing(path: Path) -> None:
    path.write_text(f"{os.getpid()}\n")
    Pidfile(path).unlink()
    assert path.exists()


def test_rename_moves_the_file(path: Path) -> None:
    pidfile = Pidfile(path)
    pidfile.create(os.getpid())
    oldbin = Path(f"{path}.oldbin")
    pidfile.rename(oldbin)
    assert not path.exists()
    assert oldbin.read_text() == f"{os.getpid()}\n"
    assert pidfile.path == str(oldbin)
    pidfile.rename(path)  # the new master failed: take the name back
    assert path.read_text() == f"{os.getpid()}\n"
    assert not oldbin.exists()


def test_rename_refuses_a_target_naming_another_live_process(
    path: Path, other_process: int
) -> None:
    oldbin = Path(f"{path}.oldbin")
    oldbin.write_text(f"{other_process}\n")
    pidfile = Pidfile(path)
    pidfile.create(os.getpid())
    with pytest.raises(PidfileError, match="which is running"):
        pidfile.rename(oldbin)
    assert pidfile.path == str(path)
    assert path.read_text() == f"{os.getpid()}\n"
    assert oldbin.read_text() == f"{other_process}\n"


def test_usr2_upgrade(path: Path, other_process: int) -> None:
    """Old master moves aside, the new master claims the name, the old one leaves."""
    old_master = Pidfile(path)
    old_master.create(os.getpid())
    old_master.rename(f"{path}.oldbin")
    new_master_pid = other_process
    Pidfile(path).create(new_master_pid)
    old_master.unlink()
    assert sorted(os.listdir(path.parent)) == ["covetd.pid"]
    assert Pidfile(path).validate() == new_master_pid

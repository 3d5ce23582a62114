"""Process titles: what ``ps`` shows with setproctitle, and never a failure without it.

Each case runs in a child process: a title replaces the process's command line, and
the import of setproctitle is cached per process.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.process import REPO

from covetd.master.proctitle import master_title, worker_title

# Sets the title given as argv[1], then prints what the kernel shows for this process.
SHOW = textwrap.dedent(
    """
    import sys
    {prelude}
    from covetd.master.proctitle import set_title
    set_title(sys.argv[1])
    with open("/proc/self/cmdline", "rb") as f:
        print(f.read().split(b"\\0")[0].decode())
    """
)


def title_in_child(title: str, prelude: str = "", pythonpath: Path | None = None) -> str:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", SHOW.format(prelude=prelude), title],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.strip()


def test_titles() -> None:
    assert master_title("app:app") == "covetd: master [app:app]"
    assert worker_title(3, 1, "app:app") == "covetd: worker [generation 3, slot 1] [app:app]"


@pytest.mark.skipif(
    importlib.util.find_spec("setproctitle") is None,
    reason="setproctitle is not installed (optional dependency)",
)
def test_ps_shows_the_title() -> None:
    assert title_in_child("covetd: master [app:app]") == "covetd: master [app:app]"


def test_without_setproctitle_nothing_changes() -> None:
    shown = title_in_child("covetd: master [x]", prelude="sys.modules['setproctitle'] = None")
    assert shown == sys.executable


def test_a_broken_setproctitle_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "setproctitle.py").write_text("raise OSError('built for another Python')\n")
    assert title_in_child("covetd: master [x]", pythonpath=tmp_path) == sys.executable


def test_a_failing_setproctitle_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "setproctitle.py").write_text(
        "def setproctitle(title):\n    raise RuntimeError('no room for ' + title)\n"
    )
    assert title_in_child("covetd: master [x]", pythonpath=tmp_path) == sys.executable

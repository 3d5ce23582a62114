"""covetd started through another program: ``unshare ... covetd``, ``systemd-socket-activate
... covetd``. Same life cycle and log as ``support.process.Covetd``; ``prefix`` is the
wrapper's command line, which ends by running the covetd command given to it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .process import REPO, Covetd


class WrappedCovetd(Covetd):
    def __init__(
        self,
        app: str,
        config: Mapping[str, Any] | None = None,
        *,
        prefix: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(app, config, **kwargs)
        self.prefix = list(prefix)

    @property
    def command(self) -> list[str]:
        covetd = [sys.executable, "-m", "covetd", "-c", str(self.config_path), *self.args]
        return [*self.prefix, *covetd]

    def start(self, wait: bool = True) -> WrappedCovetd:
        pass_fds = (self.sock.fileno(),) if self.sock is not None else ()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.command,
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

"""A ``worker_started`` hook that appends the pid of every forked worker to a file.

The hook runs in each worker process the master forks, so the file counts every fork
(a fork loop shows as many lines). The file is ``$COVETD_TEST_FORK_LOG``.
"""

import os


def worker_started(info: object) -> None:
    path = os.environ.get("COVETD_TEST_FORK_LOG")
    if path:
        with open(path, "a") as log:
            log.write(f"{os.getpid()}\n")

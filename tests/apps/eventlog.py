"""What test apps use to tell the test process what happened (see support/events.py)."""

import os
from pathlib import Path

ENV_VAR = "COVETD_TEST_EVENTS"


def record(event: str) -> None:
    """Append ``event`` as one line to ``$COVETD_TEST_EVENTS/events.log`` (if set)."""
    directory = os.environ.get(ENV_VAR)
    if not directory:
        return
    with open(Path(directory) / "events.log", "a") as log:
        log.write(event + "\n")
        log.flush()

"""Read the event log that test apps write (``tests/apps/eventlog.py``).

Apps run in other processes; they append one line per event to
``$COVETD_TEST_EVENTS/events.log``. Tests wait for lines with a deadline.
"""

from __future__ import annotations

from pathlib import Path

from support.process import wait_for

ENV_VAR = "COVETD_TEST_EVENTS"


def events_env(directory: Path) -> dict[str, str]:
    """The environment that points a test app's event log at ``directory``."""
    return {ENV_VAR: str(directory)}


def read_events(directory: Path) -> list[str]:
    path = directory / "events.log"
    if not path.exists():
        return []
    return path.read_text().splitlines()


def wait_for_event(directory: Path, event: str, timeout: float = 10.0) -> list[str]:
    """Wait until ``event`` was logged (a line equal to it, or starting ``event:``)."""

    def logged() -> list[str] | None:
        events = read_events(directory)
        found = any(line == event or line.startswith(event + ":") for line in events)
        return events if found else None

    try:
        return wait_for(logged, timeout, what=f"event {event!r}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; events so far: {read_events(directory)}") from None

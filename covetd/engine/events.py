"""What the engine reports as it works (STYLE habit 6).

Metrics and access logs subscribe by installing an ``EngineObserver``; the engine
calls it only when one is installed, so without subscribers the hot path pays one
``is None`` test per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cycle import RequestCycle
    from .protocol import HttpProtocol

__all__ = ["EngineObserver", "ObserverGroup"]


class EngineObserver:
    """Override the events you need; the defaults do nothing."""

    def connection_opened(self, conn: HttpProtocol) -> None:
        """A client connected (after accept)."""

    def connection_closed(self, conn: HttpProtocol) -> None:
        """A connection is gone, whoever closed it."""

    def request_refused(self, conn: HttpProtocol, method: str | None, status: int) -> None:
        """The engine answered an error for a request it could not take (a malformed
        head, a limit, a timeout): no handler ran. ``method`` when the head said it."""

    def request_finished(self, cycle: RequestCycle) -> None:
        """A response was written completely, or its connection was lost first
        (``cycle.started_at`` is when its head was parsed, on the loop's clock)."""


class ObserverGroup(EngineObserver):
    """Several observers as one: the engine holds a single observer (one ``is None``
    test per event), and this hands every event to each, in order."""

    def __init__(self, observers: Sequence[EngineObserver]) -> None:
        self.observers = tuple(observers)

    def connection_opened(self, conn: HttpProtocol) -> None:
        for observer in self.observers:
            observer.connection_opened(conn)

    def connection_closed(self, conn: HttpProtocol) -> None:
        for observer in self.observers:
            observer.connection_closed(conn)

    def request_refused(self, conn: HttpProtocol, method: str | None, status: int) -> None:
        for observer in self.observers:
            observer.request_refused(conn, method, status)

    def request_finished(self, cycle: RequestCycle) -> None:
        for observer in self.observers:
            observer.request_finished(cycle)

"""Metrics: the standard ones covetd keeps, and prometheus-client classes for an app's own.

    from covetd.metrics import Counter
    orders = Counter("shop_orders_total", "Orders placed.", ["kind"])

An app's metrics aggregate across workers like covetd's (prometheus-client's
multiprocess mode, set up by the master) and appear on the master's ``/metrics``.
The names below are loaded on first use: prometheus-client picks its multiprocess
mode when it is first imported, which must happen after the master has made the
metrics directory.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Counter", "Gauge", "Histogram", "Summary"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import prometheus_client

        return getattr(prometheus_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

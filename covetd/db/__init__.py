"""PostgreSQL pools (asyncpg) per worker, from the ``database:`` config section.

``Databases`` holds a worker's pools by name; the worker opens them after fork and
closes them after its in-flight requests finished (``covetd/worker/main.py``). A
Covet app reaches them as ``app.databases`` / ``app.db``; an ASGI app as
``scope["state"]["databases"]`` / ``scope["state"]["db"]`` (lifespan state).
See docs/database.md.
"""

from .asgi import unavailable_handler
from .databases import Databases
from .errors import DatabaseConnectError, DatabaseUnavailable
from .events import PoolObserver, PoolStats
from .pool import Pool

__all__ = [
    "DatabaseConnectError",
    "DatabaseUnavailable",
    "Databases",
    "Pool",
    "PoolObserver",
    "PoolStats",
    "unavailable_handler",
]

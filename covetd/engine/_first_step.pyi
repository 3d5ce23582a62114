from collections.abc import Coroutine
from contextvars import Context
from typing import Any

def first_step(context: Context, coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]: ...

"""A Covet app for the master's failure, stop and platform tests (tests/integration/master/).

Every answer names the worker that gave it (``x-worker-pid``), so a test can tell the
workers apart and see a replacement take over. Handlers that a test must know to be
*running* (not merely sent) leave a marker file in ``$COVETD_TEST_STATE_DIR``: the test
waits for the file, never for a fixed time.

``COVETD_TEST_STARTUP_DELAY`` (seconds) makes the app's startup slow; its start and end
are marked (``starting-<pid>``, ``startup-<pid>``), so a test can check that readiness
waits for every worker, or stop a worker that is still starting.
"""

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

from covetd import Covet, Request, Response

STATE_ENV = "COVETD_TEST_STATE_DIR"
DELAY_ENV = "COVETD_TEST_STARTUP_DELAY"

app = Covet()


def mark(name: str) -> None:
    """Leave ``name`` in the state directory (if the test gave one)."""
    directory = os.environ.get(STATE_ENV)
    if directory:
        Path(directory, name).touch()


def answer(text: str) -> Response:
    return Response(text, headers={"x-worker-pid": str(os.getpid())})


@app.on_startup
async def slow_startup() -> None:
    mark(f"starting-{os.getpid()}")
    await asyncio.sleep(float(os.environ.get(DELAY_ENV, "0")))
    mark(f"startup-{os.getpid()}")


@app.get("/")
async def index() -> Response:
    return answer("hello")


@app.get("/slow")
async def slow(request: Request) -> Response:
    """Sleeps without blocking the loop; marks ``slow-<pid>-<uuid>`` once running."""
    mark(f"slow-{os.getpid()}-{uuid.uuid4().hex}")
    await asyncio.sleep(float(request.query_params.get("s", "1.5")))
    return answer("slow done")


@app.get("/block")
async def block(request: Request) -> Response:
    """Blocks the whole event loop (the bug a heartbeat must catch)."""
    mark(f"blocked-{os.getpid()}")
    time.sleep(float(request.query_params.get("s", "30")))  # BLOCKING-LINE
    return answer("woke up")


# -- processes (PID 1 tests) ------------------------------------------------------------


def _spawn_orphan(seconds: float) -> int:
    """Double fork: the grandchild execs ``sleep``; its parent exits at once, so the
    grandchild is re-parented to PID 1. Returns the grandchild's pid."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_end)
            grandchild = os.fork()
            if grandchild == 0:
                os.close(write_end)
                os.execvp("sleep", ["sleep", str(seconds)])
            os.write(write_end, str(grandchild).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        grandchild = int(pipe.read())
    os.waitpid(child, 0)
    return grandchild


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


@app.get("/orphans")
async def orphans(request: Request) -> dict[str, object]:
    """Start ``n`` orphaned ``sleep s`` processes; report their pids and new parents."""
    count = int(request.query_params.get("n", "3"))
    seconds = float(request.query_params.get("s", "0.5"))
    pids = [_spawn_orphan(seconds) for _ in range(count)]
    return {"pids": pids, "parents": [_parent_of(pid) for pid in pids]}


@app.get("/procs")
async def procs() -> Response:
    """Every process this worker can see in /proc: pid, parent, state, command name."""
    seen = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat.rpartition(")")[2].split()[:2]
        seen.append({"pid": int(entry.name), "ppid": int(ppid), "state": state, "name": name})
    return Response(json.dumps(seen), media_type="application/json")

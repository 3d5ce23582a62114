"""An app behind every built-in middleware: ``covetd -c config/full-stack.yaml``.

The config needs two secrets from the environment (32+ characters each)::

    export COVETD_SESSION_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    export COVETD_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')

- ``/``: public; compressed, security headers, request id, access log, rate limit;
- ``/form``: a form with its CSRF token (GET), and the post it protects (POST), which
  counts visits in the session;
- ``/api/me``: needs a bearer JWT signed with ``COVETD_JWT_SECRET`` (``protect``);
- ``/api/admin``: needs the ``admin`` scope (``@requires``);
- ``/slow?seconds=N``: the ``timeout`` middleware answers 503 after 2 s.
"""

from __future__ import annotations

import asyncio
import html

from covetd import Covet, HTMLResponse, Request
from covetd.middleware.auth import requires
from covetd.middleware.csrf import csrf_token

app = Covet()


@app.get("/")
async def index() -> str:
    return "covetd full stack\n" * 64  # big enough to be compressed


@app.get("/form")
async def form(request: Request) -> HTMLResponse:
    token = html.escape(csrf_token(request))
    return HTMLResponse(
        f'<form method="post"><input type="hidden" name="csrf_token" value="{token}">'
        "<button>Send</button></form>"
    )


@app.post("/form")
async def submit(request: Request) -> dict[str, int]:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return {"visits": request.session["visits"]}


@app.get("/api/me")
async def me(request: Request) -> dict[str, object]:
    user = request.user
    return {"user": user.subject, "scopes": sorted(user.scopes)}


@app.get("/api/admin")
@requires("admin")
async def admin(request: Request) -> dict[str, str]:
    return {"admin": str(request.user.subject)}


@app.get("/slow")
async def slow(request: Request) -> str:
    await asyncio.sleep(float(request.query_params.get("seconds", "0")))
    return "done\n"

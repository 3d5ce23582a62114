"""The app behind tests/middleware/test_mw_auth.py."""

import threading

from covetd import Covet, Request
from covetd.middleware.auth import requires
from covetd.middleware.csrf import csrf_token

app = Covet()


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, object]:
    user = request.user
    return {
        "authenticated": user.is_authenticated,
        "subject": user.subject,
        "scopes": sorted(user.scopes),
        "source": user.source,
    }


@app.get("/admin/panel")
async def admin_panel() -> str:
    return "admin panel"


@app.get("/reports")
@requires("reports:read")
async def reports(request: Request) -> dict[str, object]:
    return {"reports": [], "for": request.user.subject}


@app.get("/items/{item_id:int}")
@requires("items")
async def item(item_id: int) -> dict[str, object]:
    return {"item": item_id}


@app.get("/sync")
@requires()
def sync_handler() -> dict[str, object]:
    """A plain def: it must still run in the thread pool, not on the event loop."""
    return {"thread": threading.current_thread() is not threading.main_thread()}


@app.get("/csrf")
async def csrf(request: Request) -> dict[str, str]:
    """Only for the full-stack test (needs the csrf middleware)."""
    return {"token": csrf_token(request)}


@app.post("/login")
async def login(request: Request) -> str:
    form = await request.form()
    scopes = str(form.get("scopes", "")).split()
    request.session["user"] = {"sub": str(form["user"]), "scopes": scopes}
    return "logged in"


@app.post("/logout")
async def logout(request: Request) -> str:
    request.session.pop("user", None)
    return "logged out"

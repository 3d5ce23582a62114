"""The app behind tests/middleware/test_mw_rate_limit.py."""

from covetd import Covet, Request

app = Covet()


@app.get("/")
async def index() -> str:
    return "ok"


@app.get("/login")
async def login() -> str:
    return "login"


@app.get("/api/{name}")
async def api(name: str) -> str:
    return f"api {name}"


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, object]:
    return {"subject": request.user.subject}

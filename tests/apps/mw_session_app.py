"""The app behind tests/middleware/test_mw_sessions.py: reads and writes request.session."""

from covetd import Covet, Request

app = Covet()


@app.get("/session")
async def show(request: Request) -> dict[str, object]:
    return dict(request.session)


@app.get("/set")
async def set_values(request: Request) -> dict[str, object]:
    request.session.update(request.query_params)
    return dict(request.session)


@app.get("/count")
async def count(request: Request) -> dict[str, object]:
    request.session["count"] = int(request.session.get("count", 0)) + 1
    return dict(request.session)


@app.get("/append")
async def append(request: Request) -> dict[str, object]:
    """A change inside a nested value, not an assignment: it must be saved too."""
    request.session.setdefault("items", [])
    request.session["items"].append(request.query_params.get("item", "x"))
    return dict(request.session)


@app.get("/big")
async def big(request: Request) -> dict[str, object]:
    request.session["blob"] = "x" * int(request.query_params["n"])
    return {"stored": True}


@app.get("/clear")
async def clear(request: Request) -> str:
    request.session.clear()
    return "cleared"


@app.get("/no-session")
async def no_session(request: Request) -> str:
    try:
        request.session  # noqa: B018 - the access is the test
    except RuntimeError as exc:
        return str(exc)
    return "session present"

"""The Covet twin of the bench harness's raw ASGI app: GET /plaintext and GET /json,
TechEmpower style (JSON serialised per request)."""

from covetd import Covet

app = Covet()


@app.get("/plaintext")
async def plaintext() -> str:
    return "Hello, World!"


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}

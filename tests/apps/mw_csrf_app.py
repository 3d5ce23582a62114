"""The app behind tests/middleware/test_mw_csrf.py."""

from covetd import Covet, Request
from covetd.middleware.csrf import csrf_token

app = Covet()


@app.get("/form")
async def form(request: Request) -> dict[str, str]:
    return {"token": csrf_token(request)}


@app.get("/page")
async def page() -> str:
    return "a page that asks for no token"


@app.post("/submit")
async def submit(request: Request) -> dict[str, object]:
    form = await request.form()  # the middleware read it first: the body is cached
    return {"accepted": True, "name": form.get("name")}


@app.put("/submit")
async def replace() -> dict[str, object]:
    return {"accepted": True}


@app.delete("/submit")
async def remove() -> dict[str, object]:
    return {"accepted": True}


@app.patch("/submit")
async def change() -> dict[str, object]:
    return {"accepted": True}


@app.post("/webhooks/{name}")
async def webhook(name: str) -> dict[str, object]:
    return {"webhook": name}

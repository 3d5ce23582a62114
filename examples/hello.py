"""The smallest covetd app: ``covetd examples.hello:app`` (or ``make run``)."""

from covetd import Covet, Request

app = Covet()


@app.get("/")
async def index() -> str:
    return "Hello from covetd!\n"


@app.get("/hello/{name}")
async def hello(name: str) -> dict[str, str]:
    return {"message": f"Hello, {name}!"}


@app.post("/echo")
async def echo(request: Request) -> dict[str, object]:
    return {"received": await request.json()}

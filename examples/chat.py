"""A chat with rooms: ``covetd -c config/chat.yaml``, then open http://127.0.0.1:8000/.

Every browser tab joins a room over a WebSocket; a message sent to the room reaches
every member on every worker (the ``local`` broadcast backend), or on every covetd
instance sharing a Redis (``websocket.broadcast: {backend: redis, url: ...}``).

``/echo`` echoes every message back (the Autobahn conformance target, ``make autobahn``).
"""

from __future__ import annotations

import json

from covetd import Covet, HTMLResponse, WebSocket

app = Covet()

MAX_NAME = 32
MAX_TEXT = 2000


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE)


@app.get("/rooms/{room}")
async def presence(room: str) -> dict[str, object]:
    """Members of ``room`` connected to the worker that answers."""
    return {"room": room, "members_here": app.hub.count(room)}


@app.websocket("/ws/{room}")
async def chat(ws: WebSocket, room: str) -> None:
    name = (ws.query_params.get("name") or "anonymous")[:MAX_NAME]
    await ws.accept()
    await ws.join(room)
    await app.hub.broadcast(room, json.dumps({"event": "joined", "name": name}))
    try:
        async for message in ws:
            if not isinstance(message, str):
                continue  # the page sends text only
            text = message[:MAX_TEXT]
            await app.hub.broadcast(room, json.dumps({"name": name, "text": text}))
    finally:
        await ws.leave(room)
        await app.hub.broadcast(room, json.dumps({"event": "left", "name": name}))


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        if isinstance(message, str):
            await ws.send_text(message)
        else:
            await ws.send_bytes(message)


PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>covetd chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; }
  .event { color: #888; }
</style>
<h1>covetd chat</h1>
<p>
  <label>Room <input id="room" value="lobby" maxlength="64"></label>
  <label>Name <input id="name" value="guest" maxlength="32"></label>
  <button id="join">Join</button>
</p>
<div id="log"></div>
<form id="send"><input id="text" size="50" autocomplete="off"> <button>Send</button></form>
<script>
let socket = null;
const log = document.getElementById("log");
function show(text, cls) {
  const line = document.createElement("div");
  line.textContent = text;  // never innerHTML: messages are untrusted
  if (cls) line.className = cls;
  log.appendChild(line);
  log.scrollTop = log.scrollHeight;
}
document.getElementById("join").onclick = () => {
  if (socket) socket.close();
  const room = encodeURIComponent(document.getElementById("room").value);
  const name = encodeURIComponent(document.getElementById("name").value);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/${room}?name=${name}`);
  socket.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.event) show(`${m.name} ${m.event}`, "event"); else show(`${m.name}: ${m.text}`);
  };
  socket.onclose = (e) => show(`disconnected (${e.code})`, "event");
};
document.getElementById("send").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  if (socket && socket.readyState === WebSocket.OPEN && input.value) {
    socket.send(input.value);
    input.value = "";
  }
};
</script>
</html>
"""

"""The middleware pipeline from YAML: order, scoping, Covet and ASGI apps alike."""

import httpx
import pytest

CHAIN = [
    {"pipeline_mw:Tag": {"tag": "outer"}},
    {"pipeline_mw:Tag": {"tag": "inner", "exclude": ["/stream*"]}},
]


@pytest.mark.parametrize("app", ["basic:app", "asgi_raw:app"])
def test_the_chain_wraps_the_app_outermost_first(covetd, app: str) -> None:
    server = covetd(app, {"middleware": CHAIN})
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.headers["x-chain"] == "inner,outer"


def test_an_excluded_path_skips_only_that_middleware(covetd) -> None:
    server = covetd("basic:app", {"middleware": CHAIN})
    response = httpx.get(server.url + "/stream?n=3")
    assert response.text == "part 0\npart 1\npart 2\n"
    assert response.headers["x-chain"] == "outer"


def test_a_streaming_asgi_response_flows_through_the_chain(covetd) -> None:
    chain = [{"pipeline_mw:Tag": {"tag": "a"}}, {"pipeline_mw:Tag": {"tag": "b"}}]
    server = covetd("asgi_raw:app", {"middleware": chain})
    response = httpx.get(server.url + "/stream")
    assert response.status_code == 200
    assert response.headers["x-chain"] == "b,a"
    assert response.headers.get("transfer-encoding") == "chunked"
    assert response.content

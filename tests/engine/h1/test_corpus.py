"""The raw-request corpus (``tests/corpus/http``) against ``RequestParser``, gunicorn-style.

``valid/NNN.http`` holds the exact bytes of one request and ``valid/NNN.json`` what the
listener must hear (method, raw_path, query_string, http_version, headers, body,
keep_alive, chunked). ``invalid/NNN.http`` must raise ``ProtocolError`` with the
``status`` in ``invalid/NNN.json``; ``stage`` says whether the head was acceptable
("body": the error is in the body framing) or not ("head": no head may reach the
listener). Every case is also fed byte by byte and split at every boundary: how the
bytes arrive must not change the outcome. Add a file pair for every bug found.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.h1 import Recorder, bytewise, feed, split_at, whole

from covetd.engine.h1.errors import ProtocolError

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "http"
VALID = sorted((CORPUS / "valid").glob("*.http"))
INVALID = sorted((CORPUS / "invalid").glob("*.http"))


def expected(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def parse_one(parse, data: bytes) -> dict:
    try:
        recorder: Recorder = parse(data)
    except ProtocolError as error:
        pytest.fail(f"refused a valid request: {error.detail} ({error.status})")
    assert len(recorder.requests) == 1, f"heard {len(recorder.requests)} requests"
    parsed = recorder.requests[0]
    assert parsed.complete, "request never completed"
    return parsed.describe()


def test_the_corpus_is_complete() -> None:
    assert len(VALID) >= 25
    assert len(INVALID) >= 30
    for path in VALID + INVALID:
        assert path.with_suffix(".json").exists(), path
        assert path.read_bytes(), path


@pytest.mark.parametrize("path", VALID, ids=case_id)
def test_valid_request_parses_as_expected(path: Path) -> None:
    want = expected(path)
    got = parse_one(whole, path.read_bytes())
    assert got == {key: want[key] for key in got}, want["why"]


@pytest.mark.parametrize("path", VALID, ids=case_id)
def test_valid_request_fed_byte_by_byte_parses_the_same(path: Path) -> None:
    want = expected(path)
    got = parse_one(bytewise, path.read_bytes())
    assert got == {key: want[key] for key in got}, want["why"]


@pytest.mark.parametrize("path", VALID, ids=case_id)
def test_valid_request_split_anywhere_parses_the_same(path: Path) -> None:
    data = path.read_bytes()
    want = expected(path)
    for index in range(1, len(data)):
        got = parse_one(lambda d, i=index: split_at(d, i), data)
        assert got == {key: want[key] for key in got}, f"split at {index}: {want['why']}"


@pytest.mark.parametrize("path", INVALID, ids=case_id)
def test_invalid_request_is_refused_with_its_status(path: Path) -> None:
    want = expected(path)
    recorder = Recorder()
    with pytest.raises(ProtocolError) as caught:
        feed([path.read_bytes()], recorder=recorder)
    assert caught.value.status == want["status"], f"{want['why']}: {caught.value.detail}"
    assert not any(r.complete for r in recorder.requests), "a refused request completed"
    if want["stage"] == "head":
        assert recorder.requests == [], "a refused head reached the listener"


@pytest.mark.parametrize("path", INVALID, ids=case_id)
def test_invalid_request_fed_byte_by_byte_is_refused_the_same(path: Path) -> None:
    want = expected(path)
    with pytest.raises(ProtocolError) as caught:
        bytewise(path.read_bytes())
    assert caught.value.status == want["status"], f"{want['why']}: {caught.value.detail}"

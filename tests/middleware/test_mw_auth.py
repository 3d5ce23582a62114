"""auth: JWT bearer tokens and their attacks, session auth, scopes, @requires."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from support.mwsecurity import check_config
from support.process import Covetd

from covetd.middleware.auth import AuthMiddleware

APP = "mw_auth_app:app"
SECRET = "jwt-test-secret-0123456789abcdefghijklmnopqrstuv"
AUDIENCE = "covetd-tests"
ISSUER = "https://issuer.test"
SESSIONS = {
    "sessions": {"secret_keys": ["auth-test-session-key-0123456789abcdef"], "secure": False}
}


# --- keys and tokens --------------------------------------------------------------------


@dataclasses.dataclass
class Keys:
    rsa: rsa.RSAPrivateKey
    other_rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    directory: Path

    def public_pem(self, key: Any = None) -> str:
        public = (key or self.rsa).public_key()
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return str(pem.decode())

    @property
    def public_key_file(self) -> str:
        path = self.directory / "public.pem"
        path.write_text(self.public_pem())
        return str(path)

    @property
    def jwks_file(self) -> str:
        keys = []
        for kid, key, alg in (
            ("rsa-1", self.rsa, "RS256"),
            ("rsa-2", self.other_rsa, None),
            ("ec-1", self.ec, "ES256"),
        ):
            jwk = json.loads(
                jwt.algorithms.get_default_algorithms()[alg or "RS256"].to_jwk(key.public_key())
            )
            jwk["kid"] = kid
            if alg:
                jwk["alg"] = alg
            keys.append(jwk)
        path = self.directory / "jwks.json"
        path.write_text(json.dumps({"keys": keys}))
        return str(path)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(
        rsa.generate_private_key(65537, 2048),
        rsa.generate_private_key(65537, 2048),
        ec.generate_private_key(ec.SECP256R1()),
        tmp_path_factory.mktemp("keys"),
    )


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "ada",
        "iat": now,
        "exp": now + 300,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "scope": "reports:read",
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def plain(**changes: Any) -> dict[str, Any]:
    """Claims for the servers configured without audience (a token with aud is refused
    there: PyJWT will not ignore an audience nobody checks)."""
    return claims(aud=None, **changes)


def hs256(**changes: Any) -> str:
    return jwt.encode(claims(**changes), SECRET, algorithm="HS256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand, as an attacker would: any header, HMAC with any bytes."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def invalid_token(response: httpx.Response, description: str) -> bool:
    challenge = response.headers.get("www-authenticate", "")
    return (
        response.status_code == 401
        and challenge.startswith('Bearer error="invalid_token"')
        and f'error_description="{description}"' in challenge
    )


# --- servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hs_server() -> Iterator[Covetd]:
    auth = {
        "secret": "${JWT_SECRET}",
        "audience": AUDIENCE,
        "issuer": ISSUER,
        "session_key": "user",
        "protect": {"/admin/*": ["admin"], "/whoami-strict": []},
    }
    server = Covetd(
        APP, {"middleware": [SESSIONS, {"auth": auth}]}, env={"JWT_SECRET": SECRET}
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rs_server(keys: Keys) -> Iterator[Covetd]:
    auth = {"algorithms": ["RS256"], "public_key_file": keys.public_key_file, "leeway": 60}
    auth["required_claims"] = ["exp", "sub"]
    server = Covetd(APP, {"middleware": [{"auth": auth}]}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mixed_server(keys: Keys) -> Iterator[Covetd]:
    auth = {"algorithms": ["HS256", "RS256"], "secret": SECRET, "public_key": "${JWT_PUBLIC_KEY}"}
    server = Covetd(
        APP, {"middleware": [{"auth": auth}]}, env={"JWT_PUBLIC_KEY": keys.public_pem()}
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def jwks_server(keys: Keys) -> Iterator[Covetd]:
    auth = {"algorithms": ["RS256", "ES256"], "jwks_file": keys.jwks_file}
    server = Covetd(APP, {"middleware": [{"auth": auth}]}).start()
    yield server
    server.stop()


def get(server: Covetd, path: str = "/whoami", token: str | None = None, **kw: Any) -> Any:
    headers = bearer(token) if token is not None else {}
    return httpx.get(server.url + path, headers={**headers, **kw.pop("headers", {})}, **kw)


# --- valid tokens -------------------------------------------------------------------------


def test_a_valid_token_sets_request_user(hs_server: Covetd) -> None:
    response = get(hs_server, token=hs256(scope="reports:read admin"))
    assert response.json() == {
        "authenticated": True,
        "subject": "ada",
        "scopes": ["admin", "reports:read"],
        "source": "jwt",
    }


def test_without_credentials_the_user_is_anonymous(hs_server: Covetd) -> None:
    assert get(hs_server).json() == {
        "authenticated": False,
        "subject": None,
        "scopes": [],
        "source": "anonymous",
    }


def test_scopes_may_be_a_list(hs_server: Covetd) -> None:
    response = get(hs_server, token=hs256(scope=["admin", "x"]))
    assert response.json()["scopes"] == ["admin", "x"]


def test_rs256_es256_and_jwks_kids(keys: Keys, rs_server: Covetd, jwks_server: Covetd) -> None:
    rs = jwt.encode(plain(), keys.rsa, algorithm="RS256")
    assert get(rs_server, token=rs).json()["subject"] == "ada"
    by_kid = {
        "rsa-1": jwt.encode(plain(), keys.rsa, "RS256", headers={"kid": "rsa-1"}),
        "rsa-2": jwt.encode(plain(), keys.other_rsa, "RS256", headers={"kid": "rsa-2"}),
        "ec-1": jwt.encode(plain(), keys.ec, "ES256", headers={"kid": "ec-1"}),
    }
    for kid, token in by_kid.items():
        assert get(jwks_server, token=token).status_code == 200, kid


# --- attacks ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(hs_server: Covetd, alg: str) -> None:
    token = handmade({"alg": alg, "typ": "JWT"}, claims(scope="admin"), None)
    assert invalid_token(get(hs_server, "/admin/panel", token), "algorithm not allowed")
    with_signature = token + b64(b"whatever")
    assert get(hs_server, token=with_signature).status_code == 401


def test_hs256_signed_with_the_rsa_public_key_is_refused(
    keys: Keys, rs_server: Covetd, mixed_server: Covetd
) -> None:
    """The key confusion attack: the public key is public, so an attacker can HMAC with
    it; a verifier that takes the key for the token's own alg would accept the result."""
    public = keys.public_pem().encode()
    for pem in (public, public.strip()):
        forged = handmade({"alg": "HS256", "typ": "JWT"}, plain(), pem)
        assert invalid_token(get(rs_server, token=forged), "algorithm not allowed")
        # HS256 allowed too: it is checked against the HMAC secret, never the public key
        assert invalid_token(get(mixed_server, token=forged), "signature verification failed")
    genuine_rs = jwt.encode(plain(), keys.rsa, algorithm="RS256")
    assert get(mixed_server, token=genuine_rs).status_code == 200
    genuine_hs = jwt.encode(plain(), SECRET, algorithm="HS256")
    assert get(mixed_server, token=genuine_hs).status_code == 200


def test_an_expired_token_is_refused(hs_server: Covetd, keys: Keys, rs_server: Covetd) -> None:
    expired = hs256(exp=int(time.time()) - 5)
    assert invalid_token(get(hs_server, token=expired), "the token has expired")
    within_leeway = jwt.encode(plain(exp=int(time.time()) - 30), keys.rsa, "RS256")
    beyond_leeway = jwt.encode(plain(exp=int(time.time()) - 120), keys.rsa, "RS256")
    assert get(rs_server, token=within_leeway).status_code == 200  # leeway: 60
    assert invalid_token(get(rs_server, token=beyond_leeway), "the token has expired")


def test_a_token_not_yet_valid_is_refused(hs_server: Covetd) -> None:
    later = int(time.time()) + 300
    assert invalid_token(get(hs_server, token=hs256(nbf=later)), "the token is not valid yet")
    assert get(hs_server, token=hs256(iat=later)).status_code == 401  # issued in the future
    assert get(hs_server, token=hs256(nbf=int(time.time()) - 5)).status_code == 200


@pytest.mark.parametrize(
    ("changes", "description"),
    [
        ({"aud": "another-service"}, "wrong audience"),
        ({"aud": None}, "a required claim is missing"),
        ({"iss": "https://evil.test"}, "wrong issuer"),
        ({"exp": None}, "a required claim is missing"),
        ({"iat": None}, "a required claim is missing"),
        ({"sub": None}, "a required claim is missing"),
    ],
)
def test_claims_are_checked(hs_server: Covetd, changes: dict[str, Any], description: str) -> None:
    assert invalid_token(get(hs_server, token=hs256(**changes)), description)


def test_a_tampered_token_is_refused(hs_server: Covetd) -> None:
    header, payload, signature = hs256().split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert invalid_token(
        get(hs_server, token=f"{header}.{payload}.{flipped}"), "signature verification failed"
    )
    promoted = b64(json.dumps(claims(scope="admin")).encode())
    response = get(hs_server, "/admin/panel", f"{header}.{promoted}.{signature}")
    assert invalid_token(response, "signature verification failed")
    other_secret = jwt.encode(claims(), "another-secret-0123456789abcdefghijklmn", "HS256")
    assert invalid_token(get(hs_server, token=other_secret), "signature verification failed")


def test_kid_must_name_a_known_key_of_the_right_type(keys: Keys, jwks_server: Covetd) -> None:
    unknown = jwt.encode(plain(), keys.rsa, "RS256", headers={"kid": "rsa-9"})
    assert invalid_token(get(jwks_server, token=unknown), "unknown key id")
    no_kid = jwt.encode(plain(), keys.rsa, "RS256")
    assert invalid_token(get(jwks_server, token=no_kid), "the token names no key id")
    wrong_family = jwt.encode(plain(), keys.rsa, "RS256", headers={"kid": "ec-1"})
    assert invalid_token(
        get(jwks_server, token=wrong_family), "the key does not match the algorithm"
    )
    # rsa-2 with the other RSA key's signature: the kid selects the key, the signature fails
    swapped = jwt.encode(plain(), keys.rsa, "RS256", headers={"kid": "rsa-2"})
    assert invalid_token(get(jwks_server, token=swapped), "signature verification failed")


@pytest.mark.parametrize(
    "authorization", ["Bearer", "Bearer garbage", "Bearer a.b.c", "Bearer " + "x" * 9000]
)
def test_malformed_bearer_tokens_are_refused(hs_server: Covetd, authorization: str) -> None:
    response = httpx.get(hs_server.url + "/whoami", headers={"authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_other_schemes_are_ignored(hs_server: Covetd) -> None:
    response = httpx.get(hs_server.url + "/whoami", headers={"authorization": "Basic YTpi"})
    assert response.json()["authenticated"] is False


# --- protection -----------------------------------------------------------------------


def test_protected_paths_need_their_scopes(hs_server: Covetd) -> None:
    anonymous = get(hs_server, "/admin/panel")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    lacking = get(hs_server, "/admin/panel", hs256(scope="reports:read"))
    assert lacking.status_code == 403
    assert lacking.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="admin"'
    assert get(hs_server, "/admin/panel", hs256(scope="admin")).text == "admin panel"


def test_requires_protects_a_handler(hs_server: Covetd) -> None:
    assert get(hs_server, "/reports").status_code == 401
    assert get(hs_server, "/reports").headers["www-authenticate"] == "Bearer"
    forbidden = get(hs_server, "/reports", hs256(scope="other"))
    assert forbidden.status_code == 403
    assert 'scope="reports:read"' in forbidden.headers["www-authenticate"]
    allowed = get(hs_server, "/reports", hs256(scope="reports:read"))
    assert allowed.json() == {"reports": [], "for": "ada"}


def test_requires_keeps_path_parameters_and_sync_handlers(hs_server: Covetd) -> None:
    assert get(hs_server, "/items/5", hs256(scope="items")).json() == {"item": 5}
    assert get(hs_server, "/items/5", hs256(scope="x")).status_code == 403
    assert get(hs_server, "/items/five", hs256(scope="items")).status_code == 404
    assert get(hs_server, "/sync").status_code == 401
    assert get(hs_server, "/sync", hs256()).json() == {"thread": True}


def test_requires_fails_closed_without_the_middleware(covetd) -> None:
    server = covetd(APP)
    assert httpx.get(server.url + "/reports").status_code == 401
    assert httpx.get(server.url + "/whoami").json()["authenticated"] is False


def test_protect_works_for_asgi_apps(covetd) -> None:
    auth = {"secret": SECRET, "protect": {"/": []}, "exclude": ["/__probe__"]}
    server = covetd("asgi_raw:app", {"middleware": [{"auth": auth}]})
    assert httpx.get(server.url + "/").status_code == 401
    token = jwt.encode(plain(), SECRET, algorithm="HS256")
    assert httpx.get(server.url + "/", headers=bearer(token)).status_code == 200


def test_a_starlette_app_sees_the_user_and_the_session(covetd) -> None:
    """scope["user"], scope["auth"] and scope["session"], where Starlette looks: its
    request.user, requires() and request.session work behind covetd's middleware."""
    server = covetd("mw_starlette:app", {"middleware": [SESSIONS, {"auth": {"secret": SECRET}}]})
    with httpx.Client(base_url=server.url) as client:
        anonymous = client.get("/whoami").json()
        assert anonymous == {"authenticated": False, "display_name": "", "scopes": []}
        assert client.get("/reports").status_code == 403  # Starlette's requires()
        token = bearer(jwt.encode(plain(), SECRET, algorithm="HS256"))
        assert client.get("/whoami", headers=token).json() == {
            "authenticated": True,
            "display_name": "ada",
            "scopes": ["reports:read"],
        }
        assert client.get("/reports", headers=token).text == "reports"
        stored = client.get("/session/put", params={"value": "kept"})
        assert stored.text == "stored" and "session=" in stored.headers["set-cookie"]
        assert client.get("/session/get").json() == {"value": "kept"}


def test_an_asgi_app_without_the_middleware_has_no_user_or_session(covetd) -> None:
    """As in Starlette: no middleware, no keys (its request.user then raises)."""
    server = covetd("mw_starlette:app", {"middleware": [{"request_id": {}}]})
    assert httpx.get(server.url + "/whoami").status_code == 500
    assert httpx.get(server.url + "/session/get").status_code == 500


# --- session auth ------------------------------------------------------------------------


def test_session_auth(hs_server: Covetd) -> None:
    with httpx.Client(base_url=hs_server.url) as client:
        assert client.get("/admin/panel").status_code == 401
        client.post("/login", data={"user": "grace", "scopes": "admin"})
        assert client.get("/whoami").json() == {
            "authenticated": True,
            "subject": "grace",
            "scopes": ["admin"],
            "source": "session",
        }
        assert client.get("/admin/panel").status_code == 200
        # a bearer token, when sent, is what counts (and a bad one is refused)
        assert client.get("/whoami", headers=bearer(hs256())).json()["subject"] == "ada"
        assert client.get("/whoami", headers=bearer("x.y.z")).status_code == 401
        client.post("/logout")
        assert client.get("/whoami").json()["authenticated"] is False
        assert client.get("/admin/panel").status_code == 401


def test_the_security_stack_together(covetd, tmp_path) -> None:
    """sessions -> csrf -> auth -> rate_limit, the order the docs recommend."""
    stack = [
        SESSIONS,
        {"csrf": {}},
        {"auth": {"session_key": "user", "protect": {"/admin/*": ["admin"]}}},
        {"rate_limit": {"key": "user", "rate": "1/hour", "burst": 3, "directory": str(tmp_path)}},
    ]
    stack[-1]["rate_limit"]["exclude"] = ["/__probe__", "/csrf", "/login"]
    server = covetd(APP, {"middleware": stack})
    with httpx.Client(base_url=server.url, headers={"origin": server.url}) as client:
        token = client.get("/csrf").json()["token"]
        assert client.post("/login", data={"user": "grace", "scopes": "admin"}).status_code == 403
        login = {"user": "grace", "scopes": "admin", "csrf_token": token}
        assert client.post("/login", data=login).status_code == 200
        assert client.get("/admin/panel").status_code == 200
        assert [client.get("/whoami").status_code for _ in range(3)] == [200, 200, 429]
        with httpx.Client(base_url=server.url) as stranger:  # another user's bucket
            assert stranger.get("/whoami").json()["authenticated"] is False


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"algorithms": ["none"], "secret": SECRET}, "algorithms", '"none"'),
        ({"algorithms": ["HS256", "None"], "secret": SECRET}, "algorithms", '"none"'),
        ({"secret": "too-short"}, "secret", "too short"),
        ({"algorithms": ["HS512"], "secret": SECRET}, "secret", "at least 64 bytes"),
        ({"algorithms": ["RS256"], "secret": SECRET}, "algorithms", "no configured key"),
        ({"jwks_file": "/nonexistent/jwks.json"}, "jwks_file", "file not found"),
        ({"algorithms": ["RS256"], "public_key": "not a key"}, "public_key", "not a PEM"),
        ({"protect": {"admin/*": ["admin"]}}, "protect", "path pattern"),
        ({"algorithm": ["HS256"]}, "algorithm", 'did you mean "algorithms"'),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], key: str, message: str) -> None:
    server = Covetd(APP, {"middleware": [{"auth": options}]}, bind=False)
    try:
        result = check_config(server)
    finally:
        server.stop()
    assert result.returncode == 1
    assert re.search(rf"covetd\.yaml:\d+: middleware\.auth\.{key}", result.stderr), result.stderr
    assert message in result.stderr


def test_every_option_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs/middleware/auth.md").read_text()
    for field in dataclasses.fields(AuthMiddleware.Options):
        assert f"`{field.name}`" in doc, field.name

"""Helpers for the security middleware tests (rate_limit, sessions, csrf, auth).

- ``start_per_slot``: a covetd on a fixed port with one SO_REUSEPORT socket per worker,
  as production binds, so the kernel spreads connections over the workers;
- ``fire``: many concurrent keep-alive connections sending requests at once;
- ``redis_keys``: a unique Redis key prefix for one test, its keys deleted after;
- ``self_signed``: a certificate for 127.0.0.1, for real HTTPS;
- ``raw_get``: one request with exact bytes on the wire, the raw response head back.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .process import REPO, Covetd
from .rawhttp import RawConnection, RawResponse

HOST = "127.0.0.1"


def reserve_port() -> socket.socket:
    """A port nobody else can take while the socket lives (SO_REUSEPORT, never listening:
    covetd binds it again per worker slot; no connection ever queues here)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((HOST, 0))
    return sock


def start_per_slot(
    start: Callable[..., Covetd], app: str, config: dict[str, Any], **kwargs: Any
) -> Covetd:
    """``start`` is the ``covetd`` fixture; the server listens on its own per-slot sockets."""
    with reserve_port() as reserved:
        port = reserved.getsockname()[1]
        config = {**config, "server": {**config.get("server", {}), "bind": [f"{HOST}:{port}"]}}
        server = start(app, config, wait=False, bind=False, **kwargs)
        server.port = port
        server.wait_ready()
    return server


def fire(
    port: int,
    *,
    connections: int,
    per_connection: int,
    path: str = "/",
    headers: Sequence[tuple[str, str]] = (),
) -> list[RawResponse]:
    """``connections`` connections, opened first, then all released at once by a barrier,
    each sending ``per_connection`` requests one after the other (keep-alive)."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()
    barrier = threading.Barrier(connections)
    responses: list[RawResponse] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client() -> None:
        try:
            with RawConnection(HOST, port, timeout=20) as conn:
                barrier.wait(20)
                for _ in range(per_connection):
                    conn.send(request)
                    response = conn.read_response()
                    with lock:
                        responses.append(response)
        except BaseException as exc:
            with lock:
                errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:3]
    assert len(responses) == connections * per_connection
    return responses


@contextlib.contextmanager
def redis_keys(url: str) -> Iterator[str]:
    """A fresh key prefix; every key under it is deleted afterwards."""
    import redis

    prefix = f"covetd-test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def dead_port() -> int:
    """A port with nothing listening (bound, never listened, closed)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung Redis)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def self_signed(directory: Path) -> tuple[str, str]:
    """``(certfile, keyfile)`` for a certificate valid for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "covetd-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


def raw_exchange(port: int, request: bytes) -> tuple[bytes, RawResponse]:
    """Send ``request`` as is; return the response head as sent, and the response."""
    with RawConnection(HOST, port) as conn:
        conn.send(request)
        head = conn.read_until(b"\r\n\r\n")
        conn.buffer = head + conn.buffer
        return head, conn.read_response()


def check_config(server: Covetd) -> subprocess.CompletedProcess[str]:
    """``covetd -c FILE --check-config`` on ``server``'s config, with its environment."""
    return subprocess.run(
        [sys.executable, "-m", "covetd", "-c", str(server.config_path), "--check-config"],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )

"""covetd processes for the built-in middleware tests (tests/middleware/).

- ``ServerPool``: one process per distinct (app, config), started on first use and
  stopped when the pool closes (a module-scoped fixture), so the many tests of one
  configuration share a server;
- ``Ipv6Covetd``, ``UnixCovetd``, ``TlsCovetd``: a server reached over ``[::1]``, a Unix
  socket or TLS, for the peers and schemes a 127.0.0.1 socket cannot give;
- ``client_from(address)``: an httpx client whose connections come from ``address``
  (any 127.0.0.0/8 address works on Linux loopback: an untrusted peer for free).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import signal
import socket
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from support.process import Covetd, listening_socket, wait_for


class ServerPool:
    """Servers by (app, config); all stopped by ``close``."""

    def __init__(self) -> None:
        self.servers: dict[str, Covetd] = {}
        self.failures: dict[str, str] = {}

    def __call__(self, app: str, config: dict[str, Any] | None = None, **kwargs: Any) -> Covetd:
        key = json.dumps([app, config, sorted(kwargs.items())], default=str)  # order counts
        if key in self.failures:
            raise AssertionError(f"this server failed to start earlier: {self.failures[key]}")
        server = self.servers.get(key)
        if server is None:
            server = Covetd(app, config, **kwargs)
            self.servers[key] = server  # registered first: stopped even if start fails
            keep_mapping_order(server, config or {})
            try:
                server.start()
            except AssertionError as exc:
                self.failures[key] = f"{exc}\n{server.log()}"
                raise
        elif server.proc is not None and server.proc.poll() is not None:
            raise AssertionError(f"covetd exited with {server.proc.returncode}:\n{server.log()}")
        return server

    def close(self) -> None:
        """Stop them all: TERM to every one first, so they drain side by side."""
        for server in self.servers.values():
            if server.proc is not None and server.proc.poll() is None:
                server.signal(signal.SIGTERM)
        for server in self.servers.values():
            server.stop()
        self.servers.clear()

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def keep_mapping_order(server: Covetd, config: dict[str, Any]) -> None:
    """Write ``config``'s keys in their order: ``Covetd`` sorts them, which loses the
    order of mappings whose order means something (timeout ``routes``)."""
    settings = yaml.safe_load(server.config_path.read_text())
    settings.update(config)
    server.config_path.write_text(yaml.safe_dump(settings, sort_keys=False))


def client_from(address: str, **kwargs: Any) -> httpx.Client:
    """An httpx client that connects from ``address`` (e.g. ``127.0.0.2``)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), **kwargs)


def _rewrite_config(process: Covetd, **changes: Any) -> None:
    settings = yaml.safe_load(process.config_path.read_text())
    for section, values in changes.items():
        settings.setdefault(section, {}).update(values)
    process.config_path.write_text(yaml.safe_dump(settings))


class Ipv6Covetd(Covetd):
    """A covetd listening on ``[::1]`` (its clients' address is ``::1``)."""

    def __init__(self, app: str, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(app, config, bind=False, **kwargs)
        self.sock = listening_socket("::1")
        self.host, self.port = "::1", self.sock.getsockname()[1]
        _rewrite_config(self, server={"bind": [f"fd://{self.sock.fileno()}"]})

    @property
    def url(self) -> str:
        return f"http://[::1]:{self.port}"


class UnixCovetd(Covetd):
    """A covetd on a Unix socket: its requests have no client address."""

    def __init__(self, app: str, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(app, config, bind=False, **kwargs)
        self.path = str(Path(self._dir.name) / "covetd.sock")
        _rewrite_config(self, server={"bind": [f"unix:{self.path}"]})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(uds=self.path), base_url="http://unix")

    def wait_ready(self, timeout: float = 15.0) -> None:
        def connect() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(1)
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
            return sock

        _wait_answer(self, connect, "covetd to answer on its unix socket", timeout)


class TlsCovetd(Covetd):
    """A covetd serving https with a throwaway self-signed certificate for 127.0.0.1."""

    def __init__(self, app: str, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(app, config, **kwargs)
        self.cert_dir = tempfile.TemporaryDirectory(prefix="covetd-tls-")
        certfile, keyfile = self_signed_certificate(Path(self.cert_dir.name))
        self.certfile = certfile
        _rewrite_config(self, tls={"certfile": str(certfile), "keyfile": str(keyfile)})

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certfile))

    def client(self) -> httpx.Client:
        return httpx.Client(verify=self.ssl_context(), base_url=self.url)

    def wait_ready(self, timeout: float = 15.0) -> None:
        context = self.ssl_context()

        def connect() -> socket.socket:
            sock = socket.create_connection((self.host, self.port), timeout=1)
            try:
                return context.wrap_socket(sock, server_hostname=self.host)
            except OSError:
                sock.close()
                raise

        _wait_answer(self, connect, "covetd to answer https", timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        try:
            return super().stop(timeout)
        finally:
            self.cert_dir.cleanup()


def _wait_answer(
    process: Covetd, connect: Callable[[], socket.socket], what: str, timeout: float
) -> None:
    """Wait until a request on a fresh ``connect()`` gets an HTTP answer."""

    def answered() -> bool:
        if process.proc is not None and process.proc.poll() is not None:
            raise AssertionError(f"covetd exited with {process.proc.returncode}:\n{process.log()}")
        try:
            with connect() as conn:
                conn.sendall(b"GET /__probe__ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                return conn.recv(16).startswith(b"HTTP/1.1 ")
        except OSError:
            return False

    wait_for(answered, timeout, 0.05, what)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A key and a certificate valid for 127.0.0.1 and localhost, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "covetd test")])
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
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    keyfile, certfile = directory / "key.pem", directory / "cert.pem"
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certfile, keyfile


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True

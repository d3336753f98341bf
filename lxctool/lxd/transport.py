"""How the one LXD door reaches a daemon: its unix socket, or HTTPS with a client certificate.

A remote is always HTTPS, 127.0.0.1 included, and never falls back to the local socket. The
server's certificate is self-signed, so the usual CA check cannot apply: the TLS layer accepts any
certificate and the connection then compares the SHA-256 fingerprint of the certificate the server
presented with the one pinned at `remote add`, before a single byte of a request is sent.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import urllib.parse

from lxctool.core.errors import LxdError


class CertificateMismatch(LxdError):
    """The server presented a certificate other than the pinned one; nothing was sent."""

    exit_code = 2


def cert_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, lowercase hex (the form `lxc config trust list` shows)."""
    return hashlib.sha256(der).hexdigest()


class UnixConnection(http.client.HTTPConnection):
    """HTTP over the daemon's unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("lxd", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        """Connect to the socket file."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS whose server certificate must match a pinned SHA-256 fingerprint.

    With pin=None the connection only records what the server presented (`remote add` shows
    it to the user before pinning it); it is never used to send a request in that state.
    """

    def __init__(self, host: str, port: int, context: ssl.SSLContext, pin: str | None,
                 timeout: float, where: str) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.pin = pin
        self.where = where
        self.seen: str | None = None

    def connect(self) -> None:
        """TLS handshake, then the pin check; a mismatch closes the socket before any request."""
        super().connect()
        assert isinstance(self.sock, ssl.SSLSocket)
        der = self.sock.getpeercert(binary_form=True) or b""
        self.seen = cert_fingerprint(der)
        if self.pin is not None and self.seen != self.pin.lower():
            self.close()
            raise CertificateMismatch(
                f"{self.where}: the server's certificate changed: pinned {self.pin}, "
                f"presented {self.seen}; refusing to talk to it",
                hint="if the server really got a new certificate: lxctool remote remove NAME, "
                     "then remote add it again")


def client_context(cert: str | None, key: str | None) -> ssl.SSLContext:
    """A TLS client context presenting cert/key; the server is checked by pin, not by a CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # Self-signed LXD server certificates cannot pass a CA check; PinnedHTTPSConnection
    # compares the fingerprint instead, which is the stronger check here.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert and key:
        ctx.load_cert_chain(cert, key)
    return ctx


def split_url(url: str) -> tuple[str, int]:
    """(host, port) of https://HOST[:PORT]; LXD's port 8443 by default."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{url!r} is not an https://HOST[:PORT] address")
    return parts.hostname, parts.port or 8443


class UnixTransport:
    """The local daemon's unix socket."""

    is_local = True

    def __init__(self, path: str) -> None:
        self.path = path
        self.where = path

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        """A fresh (not yet connected) connection."""
        return UnixConnection(self.path, timeout)


class HttpsTransport:
    """A remote daemon over HTTPS with lxctool's client certificate and a pinned server cert."""

    is_local = False

    def __init__(self, name: str, url: str, pin: str | None, cert: str | None,
                 key: str | None) -> None:
        self.name = name
        self.url = url
        self.host, self.port = split_url(url)
        self.pin = pin
        self.where = f"remote {name} ({url})"
        self._ctx = client_context(cert, key)

    def connection(self, timeout: float) -> PinnedHTTPSConnection:
        """A fresh (not yet connected) connection that checks the pin when it connects."""
        return PinnedHTTPSConnection(self.host, self.port, self._ctx, self.pin, timeout, self.where)

    def server_fingerprint(self, timeout: float = 10.0) -> str:
        """Connect once and return the fingerprint of the certificate the server presents."""
        conn = PinnedHTTPSConnection(self.host, self.port, self._ctx, None, timeout, self.where)
        try:
            conn.connect()
            assert conn.seen is not None
            return conn.seen
        finally:
            conn.close()

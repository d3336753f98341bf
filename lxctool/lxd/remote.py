"""Remote LXD servers: the client key pair, the remotes file, and joining a server's trust store.

Everything lives under the user's config directory ($LXCTOOL_CONFIG_DIR, else
$XDG_CONFIG_HOME/lxctool, else ~/.config/lxctool): client.crt and client.key (0600, made once)
and remotes.json ({"default": NAME|null, "remotes": {NAME: {"url", "fingerprint"}}}).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxctool.core.errors import LxdError, NotFound, SpecError
from lxctool.lxd.transport import HttpsTransport, cert_fingerprint, split_url
from lxctool.report.progress import progress

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
LOCAL = "local"  # the name of the local daemon; `remote switch local` goes back to the socket


def config_dir() -> Path:
    """Where lxctool keeps its client key pair and remotes."""
    if os.environ.get("LXCTOOL_CONFIG_DIR"):
        return Path(os.environ["LXCTOOL_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "lxctool"


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (created 0600, never briefly wider)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def client_keypair() -> tuple[str, str]:
    """Paths of lxctool's client certificate and key, generated once on first use."""
    d = config_dir()
    crt, key = d / "client.crt", d / "client.key"
    if crt.exists() and key.exists():
        return str(crt), str(key)
    # lazy: cryptography costs ~0.1 s to import and is needed only the first time a remote is added
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    pkey = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lxctool"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"lxctool@{socket.gethostname()}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(pkey.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(pkey, hashes.SHA384()))
    _write_private(key, pkey.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    _write_private(crt, cert.public_bytes(serialization.Encoding.PEM))
    return str(crt), str(key)


def client_cert_pem() -> str:
    """The client certificate, PEM text."""
    return Path(client_keypair()[0]).read_text()


def client_fingerprint() -> str:
    """SHA-256 fingerprint of lxctool's client certificate (as `lxc config trust list` shows it)."""
    return cert_fingerprint(ssl.PEM_cert_to_DER_cert(client_cert_pem()))


@dataclass(frozen=True)
class Remote:
    """One registered remote server."""

    name: str
    url: str
    fingerprint: str

    def transport(self) -> HttpsTransport:
        """The HTTPS transport with the client key pair and this remote's pin."""
        crt, key = client_keypair()
        return HttpsTransport(self.name, self.url, self.fingerprint, crt, key)


def _store_path() -> Path:
    return config_dir() / "remotes.json"


def load() -> dict[str, Any]:
    """The remotes file as a dict (empty when there is none)."""
    path = _store_path()
    if not path.exists():
        return {"default": None, "remotes": {}}
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        raise LxdError(f"{path} is not valid JSON; fix or remove it") from None
    doc.setdefault("default", None)
    doc.setdefault("remotes", {})
    return doc


def save(doc: dict[str, Any]) -> None:
    """Write the remotes file (0600: it names servers and pins, not secrets, but stays private)."""
    _write_private(_store_path(), (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


def get(name: str) -> Remote:
    """The registered remote NAME; NotFound (exit 2) naming it when there is none."""
    entry = load()["remotes"].get(name)
    if entry is None:
        raise NotFound(f"--remote: no remote named {name!r}; see `lxctool remote list`")
    return Remote(name, entry["url"], entry["fingerprint"])


def selected(explicit: str | None) -> Remote | None:
    """The remote to use: --remote / LXCTOOL_REMOTE, else the default; None means the local socket."""
    name = explicit or load().get("default")
    if not name or name == LOCAL:
        return None
    return get(name)


def check_new(name: str, url: str) -> None:
    """Refuse a bad name or address (exit 2) before touching the network."""
    errors = []
    if not NAME_RE.match(name) or name == LOCAL:
        errors.append(f"NAME: {name!r} is not usable; letters, digits, '.', '_', '-', starting "
                      f"with a letter (and not {LOCAL!r})")
    elif name in load()["remotes"]:
        errors.append(f"NAME: a remote named {name!r} exists already; remove it first")
    try:
        split_url(url)
    except ValueError as exc:
        errors.append(f"URL: {exc}")
    if errors:
        raise SpecError(errors)


def join_trust(lxd: Any, secret: str | None, client_name: str) -> str:
    """Make the server trust our client certificate with a token or password; its `auth` after.

    LXD 5.0.2 has no `explicit_trust_token` API extension: there the token travels in the
    `password` field of POST /1.0/certificates; newer servers take `trust_token`.
    """
    info = lxd.server()
    if info.get("auth") == "trusted":
        return "trusted"
    if not secret:
        raise LxdError(f"{lxd.where} does not trust this client yet",
                       hint="get a token on the server with `lxc config trust add --name NAME` "
                            "and pass it with --token (or --password where the server allows one)")
    field = "trust_token" if "explicit_trust_token" in (info.get("api_extensions") or []) else "password"
    try:
        lxd.call("POST", "/1.0/certificates", body={"type": "client", "name": client_name, field: secret})
    except LxdError as exc:
        raise LxdError(f"{lxd.where} refused the token or password ({exc.message})") from None
    auth = lxd.server().get("auth")
    if auth != "trusted":
        raise LxdError(f"{lxd.where} still does not trust this client after the token was accepted")
    return str(auth)


def warn_host_only(lxd: Any, what: str) -> None:
    """One stderr warning that a check only the server's host can make was skipped."""
    progress(f"warning: {lxd.where}: {what} can only be checked on that machine; skipped")


class RemoteCapabilities:
    """What a remote server can enforce, as far as its API tells.

    Limits LXD applies itself are left to LXD: a NIC's limits.egress is passed to it (LXD refuses
    it, and lxctool with exit 2, when the remote's kernel lacks the tc police action); the IFB
    fallback, which acts on the host, is never used on a remote.
    """

    cgroup_layout = "remote"
    tc_police = True
    ifb = False
    swap_accounting = True

    def __init__(self, lxd: Any) -> None:
        res = lxd.get("/1.0/resources") or {}
        self.cpus = int((res.get("cpu") or {}).get("total") or 1)
        self.swap_bytes = 0

"""The one door to LXD.

Hot paths (launch, list, info, limits, state reads, recorded exec) use a lean HTTP client on
the daemon's unix socket: importing pylxd alone costs ~0.3 s here, more than a whole
`lxc launch`. pylxd is imported lazily, only where it does a job better than a few requests:
exec with live output over LXD's websockets. Every request is counted in `requests`, so tests can
prove that a batched read costs a constant number of requests.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import time
import urllib.parse
from typing import Any, BinaryIO, Iterable

from lxctool.core.errors import ApiError, DaemonUnreachable, LxctoolError, LxdError, NotFound, Timeout, Unsupported
from lxctool.lxd.instance_io import InstanceIOMixin, wait_path
from lxctool.lxd.paths import path as api_path  # methods below have a parameter named path
from lxctool.lxd.resources import ResourcesMixin
from lxctool.lxd.transport import HttpsTransport, UnixTransport
from lxctool.lxd.views import Instance, ipv4_of_state

SOCKET_CANDIDATES = ("/var/lib/lxd/unix.socket", "/var/snap/lxd/common/lxd/unix.socket")
START_HINT = "start it with: scripts/setup-host.sh (or: lxd --group root --logfile /var/log/lxd/lxd.log &)"


def default_socket() -> str:
    """LXCTOOL_SOCKET, else $LXD_DIR/unix.socket, else the first socket that exists."""
    if os.environ.get("LXCTOOL_SOCKET"):
        return os.environ["LXCTOOL_SOCKET"]
    if os.environ.get("LXD_DIR"):
        return os.path.join(os.environ["LXD_DIR"], "unix.socket")
    for path in SOCKET_CANDIDATES:
        if os.path.exists(path):
            return path
    return SOCKET_CANDIDATES[0]


class Lxd(ResourcesMixin, InstanceIOMixin):
    """A connection to one LXD daemon, optionally scoped to a project."""

    def __init__(self, socket_path: str | None = None, project: str | None = None,
                 timeout: float = 120.0, transport: UnixTransport | HttpsTransport | None = None) -> None:
        self.transport: UnixTransport | HttpsTransport = (
            transport or UnixTransport(socket_path or default_socket()))
        # Host-side code (disk usage of LXD's dir, a second local client) needs the path; a
        # remote has none, and is_local says so before anything reads it.
        self.socket_path = self.transport.path if isinstance(self.transport, UnixTransport) else ""
        self.project = project if project and project != "default" else None
        self.timeout = timeout
        self.requests = 0
        self.target: str | None = None  # cluster member new instances go to (None: LXD chooses)
        self._conn: http.client.HTTPConnection | None = None

    @property
    def is_local(self) -> bool:
        """True when this daemon runs on this machine (its cgroups, tc and iptables are ours)."""
        return self.transport.is_local

    @property
    def where(self) -> str:
        """The socket path, or `remote NAME (URL)`, for messages."""
        return self.transport.where

    def _unreachable(self, exc: BaseException) -> DaemonUnreachable:
        if self.is_local:
            detail = getattr(exc, "strerror", None) or exc
            return DaemonUnreachable(f"LXD is not answering on {self.where} ({detail})", hint=START_HINT)
        detail = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        return DaemonUnreachable(f"{self.where} is not answering ({detail})")

    # -- transport ---------------------------------------------------------
    def _url(self, path: str, params: dict[str, Any] | None) -> str:
        q = dict(params or {})
        if self.project and "project" not in q:
            q["project"] = self.project
        q = {k: v for k, v in q.items() if v is not None}  # project=None: not scoped (all-projects)
        return path + ("?" + urllib.parse.urlencode(q) if q else "")

    def raw(self, method: str, path: str, *, params: dict[str, Any] | None = None,
            body: Any = None, data: bytes | BinaryIO | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """Send one request; return (HTTP status, body bytes)."""
        url = self._url(path, params)
        hdrs = dict(headers or {})
        payload: Any = data
        if body is not None:
            payload = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self.transport.connection(self.timeout)
            try:
                self.requests += 1
                self._conn.request(method, url, body=payload, headers=hdrs)
                resp = self._conn.getresponse()
                return resp.status, resp.read()
            except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
                self.close()
                raise self._unreachable(exc) from None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()  # a kept-alive connection the daemon closed: reconnect once
                if attempt == 2 or hasattr(payload, "read"):
                    raise self._unreachable(ConnectionResetError("it closed the connection")) from None
            except socket.timeout:
                self.close()
                raise Timeout(f"LXD did not answer {method} {path} within {self.timeout:.0f}s") from None
            except http.client.HTTPException as exc:  # something answered, but not in HTTP
                self.close()
                raise DaemonUnreachable(f"{self.where} answered something that is not LXD's HTTP API "
                                        f"({type(exc).__name__}); is LXCTOOL_SOCKET right?",
                                        hint=START_HINT if self.is_local else None) from None
            except (ssl.SSLError, OSError) as exc:  # TLS refused, no route, unknown host, not a socket
                self.close()
                raise self._unreachable(exc) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """One API call; return its metadata (waiting for an async operation's result)."""
        wait = kw.pop("wait", True)
        status, raw = self.raw(method, path, **kw)
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            raise LxdError(f"LXD answered {path} with something that is not JSON") from None
        if not isinstance(doc, dict):
            raise LxdError(f"LXD answered {path} with JSON that is not an LXD response")
        if status == 403 and not self.is_local:
            raise ApiError(403, f"{self.where} does not trust this client ({doc.get('error', 'forbidden')})",
                           path)
        if doc.get("type") == "error" or status >= 400:
            self._refuse_host_only(str(doc.get("error", "")))
            if "cluster member" in str(doc.get("error", "")) and not self.is_local:
                raise ApiError(status, f"the cluster member that holds it is not answering "
                               f"({doc.get('error')}); see `lxctool cluster list`", path)
            raise ApiError(doc.get("error_code", status), doc.get("error", f"HTTP {status}"), path)
        if doc.get("type") == "async" and wait:
            return self.wait_operation(doc["operation"])
        return doc.get("metadata")

    def get(self, path: str, **params: Any) -> Any:
        """GET path; metadata."""
        return self.call("GET", path, params=params or None)

    def get_or_none(self, path: str, **params: Any) -> Any:
        """GET path; None when LXD says 404."""
        try:
            return self.get(path, **params)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def wait_operation(self, op_path: str, timeout: float | None = None) -> Any:
        """Wait for an operation to finish; return its metadata, raise on failure."""
        params = {"timeout": int(timeout if timeout is not None else self.timeout)}
        op = self.call("GET", wait_path(op_path), params=params)
        if op.get("status_code") == 200:
            return op.get("metadata") or {}
        if op.get("status_code") in (100, 103, 105):  # still running
            raise Timeout(f"LXD operation {op.get('description', op_path)} still running after "
                          f"{params['timeout']}s")
        self._refuse_host_only(str(op.get("err") or ""))
        raise LxdError(f"LXD: {op.get('description', 'operation')} failed: {op.get('err') or op.get('status')}")

    def _refuse_host_only(self, message: str) -> None:
        """A remote without the tc police action: the IFB fallback would act on its host; refuse."""
        if not self.is_local and "Failed to load TC action module" in message:
            raise Unsupported(
                f"--net-out: {self.where}: LXD cannot apply limits.egress there (its kernel lacks the "
                "tc police action), and the host-side IFB fallback can only be set up on the machine "
                "that runs the container; nothing was kept")

    # -- server ------------------------------------------------------------
    def server(self) -> dict[str, Any]:
        """GET /1.0: API and server environment."""
        return self.get("/1.0")

    def ping(self) -> None:
        """Raise DaemonUnreachable when the daemon does not answer."""
        self.server()

    def require_project(self) -> None:
        """NotFound (exit 2) when this connection's project does not exist on the daemon."""
        if self.project and self.get_or_none(api_path("projects", self.project)) is None:
            raise NotFound(f"--project: no LXD project named {self.project!r}; "
                           f"use one of: {', '.join(self.projects())}")

    # -- instances ---------------------------------------------------------
    def instance(self, name: str) -> dict[str, Any] | None:
        """The instance's record, or None."""
        return self.get_or_none(api_path("instances", name))

    def require_instance(self, name: str) -> dict[str, Any]:
        """The instance's record; NotFound when there is none."""
        inst = self.instance(name)
        if inst is None:
            where = f" in project {self.project}" if self.project else ""
            raise NotFound(f"NAME: no container named {name!r}{where}; see `lxctool list`")
        return inst

    def instances_full(self) -> list[dict[str, Any]]:
        """Every instance with its state, in one request (recursion=2)."""
        return self.get(api_path("instances"), recursion=2) or []

    def instances_brief(self) -> list[dict[str, Any]]:
        """Every instance's record and status without its state (recursion=1): no per-container
        work in the daemon, unlike instances_full."""
        return self.get(api_path("instances"), recursion=1) or []

    def instance_state(self, name: str) -> dict[str, Any]:
        """GET the instance's state (status, pid, processes, cpu, memory, network)."""
        return self.get(api_path("instances", name, "state"))

    def create_instance(self, body: dict[str, Any]) -> None:
        """POST /1.0/instances and wait (on self.target's member when one is set)."""
        self.call("POST", api_path("instances"), body=body,
                  params={"target": self.target} if self.target else None)

    def set_state(self, name: str, action: str, *, force: bool = False, timeout: int = 30) -> None:
        """start / stop / restart / freeze / unfreeze."""
        self.call("PUT", api_path("instances", name, "state"),
                  body={"action": action, "force": force, "timeout": timeout})

    def patch_instance(self, name: str, body: dict[str, Any]) -> None:
        """PATCH config/devices of an instance (applies live where LXD can)."""
        self.call("PATCH", api_path("instances", name), body=body)

    def delete_instance(self, name: str) -> None:
        """DELETE the instance (must be stopped)."""
        self.call("DELETE", api_path("instances", name))

    def operations_on(self, name: str) -> list[str]:
        """Paths of LXD operations still running (or queued) on instance NAME."""
        target = api_path("instances", name)
        ops: list[str] = []
        for group in (self.get(api_path("operations"), recursion=1) or {}).values():
            for op in group or []:
                urls = [u.split("?")[0] for u in ((op.get("resources") or {}).get("instances") or [])]
                if target in urls and op.get("status_code") in (100, 103, 105):
                    ops.append(api_path("operations", op["id"]))
        return ops

    def remove_instance(self, name: str, timeout: float = 60.0) -> bool:
        """Stop (forcibly) and delete NAME on a fresh connection, waiting out LXD operations in flight.

        Cleanup after a failure or a signal must not reuse a connection that may be mid-request
        (http.client raises CannotSendRequest), and LXD refuses a delete while its own 'stop'
        after a failed start still runs ("Instance is busy running a stop operation"): so wait
        for every operation on the instance, then retry. True when it is gone.
        """
        from lxctool.host.signals import deferred  # lazy: host-side helper, only when removing

        fresh = self.clone()
        deadline = time.monotonic() + timeout
        with deferred():  # a signal now would leave it half removed: it waits until this is done
            return self._remove(fresh, name, deadline)

    @staticmethod
    def _remove(fresh: "Lxd", name: str, deadline: float) -> bool:
        try:
            looked_twice = False
            while time.monotonic() < deadline:
                # first wait out LXD's operations on it: a create still in flight makes it appear
                # only afterwards (seen: Ctrl-C during the create request, 'removed', yet it stayed)
                for op in fresh.operations_on(name):
                    try:
                        fresh.wait_operation(op, timeout=max(1.0, deadline - time.monotonic()))
                    except LxctoolError:
                        pass  # failed or timed out: the retry below tells
                inst = fresh.instance(name)
                if inst is None:
                    if looked_twice:
                        return True
                    looked_twice = True  # a request sent just now may not be an operation yet
                    time.sleep(0.3)
                    continue
                try:
                    if inst.get("status") not in ("Stopped", "Error"):
                        fresh.set_state(name, "stop", force=True)
                    fresh.delete_instance(name)
                    return True
                except LxctoolError:
                    time.sleep(0.2)  # busy, or raced its own stop: look again
            return fresh.instance(name) is None
        finally:
            fresh.close()

    def clone(self) -> "Lxd":
        """A new connection to the same daemon and project (this one may be mid-request)."""
        fresh = Lxd(project=self.project, timeout=self.timeout, transport=self.transport)
        fresh.target = self.target
        return fresh

    def metrics_text(self) -> str | None:
        """The daemon's /1.0/metrics in Prometheus text, or None when it does not answer 200."""
        status, body = self.raw("GET", "/1.0/metrics")
        return body.decode(errors="replace") if status == 200 else None

    def put_instance(self, name: str, record: dict[str, Any], devices: dict[str, Any]) -> None:
        """PUT the instance's writable fields from its record, with these local devices.

        A PUT (not a PATCH) because PATCH merges devices: it cannot remove one.
        """
        body = {k: record[k] for k in ("config", "profiles", "ephemeral", "description") if k in record}
        self.call("PUT", api_path("instances", name), body={**body, "devices": devices})

    def instance_names_all_projects(self) -> list[tuple[str, str | None]]:
        """(name, project) of every instance in every project; project None for the default one."""
        out = []
        for url in self.get(api_path("instances"), **{"all-projects": "true", "project": None}) or []:
            path, _, query = url.partition("?project=")
            out.append((path.rsplit("/", 1)[-1], query or None))
        return out


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> Any:
    """Call predicate until it returns something truthy or timeout passes; return that or None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def ipv4_addresses(state: dict[str, Any] | None, skip: Iterable[str] = ("lo",)) -> list[str]:
    """Global IPv4 addresses in an instance state record (see views.Instance.ipv4)."""
    return ipv4_of_state(state, skip)


def host_veth(state: dict[str, Any], nic: str = "eth0") -> str | None:
    """The host-side veth of a running container's NIC (renamed at every start); see views.Instance."""
    return Instance.from_state("", state).veth(nic)

"""Inside an instance: run commands (recorded, or streamed live through pylxd) and move files and
image tarballs. Mixed into lxd.Lxd (still the one door to LXD); split out to keep client.py
about the connection, requests and instance records.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from lxctool.core.errors import ApiError, ExecFailed, LxdError, Timeout
from lxctool.lxd.paths import path as api_path  # methods below have a parameter named path


@dataclass
class ExecResult:
    """Outcome of a command run inside a container."""

    exit_code: int
    stdout: str
    stderr: str


class _Api(Protocol):
    """What the mixin needs from Lxd."""

    timeout: float
    requests: int
    project: str | None
    socket_path: str
    transport: Any

    @property
    def is_local(self) -> bool: ...
    def raw(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
            data: bytes | BinaryIO | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]: ...
    def call(self, method: str, path: str, **kw: Any) -> Any: ...
    def _url(self, path: str, params: dict[str, Any] | None) -> str: ...
    def _unreachable(self, exc: BaseException) -> LxdError: ...
    def exec(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
             timeout: float | None = None, cwd: str | None = None) -> ExecResult: ...


def wait_path(op_path: str) -> str:
    """/1.0/operations/ID[?project=P] -> /1.0/operations/ID/wait (a cluster adds the query)."""
    return op_path.split("?", 1)[0] + "/wait"


class InstanceIOMixin:
    """Commands and files inside instances, and image export, of one LXD daemon."""

    def exec(self: _Api, name: str, argv: list[str], *, env: dict[str, str] | None = None,
             timeout: float | None = None, cwd: str | None = None) -> ExecResult:
        """Run argv in the container without websockets; LXD records stdout and stderr."""
        body: dict[str, Any] = {"command": argv, "wait-for-websocket": False, "interactive": False,
                                "record-output": True, "environment": env or {}}
        if cwd:
            body["cwd"] = cwd
        status, raw = self.raw("POST", api_path("instances", name, "exec"), body=body)
        doc = json.loads(raw)
        if doc.get("type") == "error":
            raise ApiError(doc.get("error_code", status), doc.get("error", ""), "exec")
        op = self.call("GET", wait_path(doc["operation"]),
                       params={"timeout": int(timeout or self.timeout)})
        meta = op.get("metadata") or {}
        if op.get("status_code") in (100, 103, 105):
            raise Timeout(f"{name}: {' '.join(argv)} still running after {timeout}s")
        if op.get("status_code") != 200 and "return" not in meta:
            raise LxdError(f"{name}: exec failed: {op.get('err')}")
        outputs = []
        for fd in ("1", "2"):
            path = (meta.get("output") or {}).get(fd)
            if not path:
                outputs.append("")
                continue
            st, data = self.raw("GET", path)
            outputs.append(data.decode(errors="replace"))
            self.raw("DELETE", path)
        return ExecResult(int(meta.get("return", -1)), outputs[0], outputs[1])

    def exec_status(self: _Api, name: str, argv: list[str], timeout: float | None = None) -> int | None:
        """Run argv in the container, output not kept: its exit code (2 requests; exec() takes 6).

        None when LXD could not run it or it did not end within timeout.
        """
        body = {"command": argv, "wait-for-websocket": False, "interactive": False,
                "record-output": False, "environment": {}}
        status, raw = self.raw("POST", f"/1.0/instances/{name}/exec", body=body)
        doc = json.loads(raw)
        if doc.get("type") == "error":
            return None
        op = self.call("GET", wait_path(doc["operation"]), params={"timeout": int(timeout or self.timeout)})
        code = (op.get("metadata") or {}).get("return")
        still_running = op.get("status_code") in (100, 103, 105)
        return None if still_running or code is None else int(code)

    def push_file(self: _Api, name: str, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file inside the container."""
        self.call("POST", api_path("instances", name, "files"), params={"path": path}, data=data,
                  headers={"Content-Type": "application/octet-stream", "X-LXD-type": "file",
                           "X-LXD-mode": f"{mode:04o}", "X-LXD-write": "overwrite"})

    def pull_file(self: _Api, name: str, path: str) -> bytes:
        """Read a file from inside the container."""
        status, data = self.raw("GET", api_path("instances", name, "files"), params={"path": path})
        if status >= 400:
            raise ApiError(status, data.decode(errors="replace")[:200], f"file {path}")
        return data

    def export_image(self: _Api, fingerprint: str, dest: str) -> int:
        """Stream a unified image's tarball into file DEST (not held in memory); return its size."""
        conn = self.transport.connection(self.timeout)
        try:
            self.requests += 1
            conn.request("GET", self._url(api_path("images", fingerprint, "export"), None))
            resp = conn.getresponse()
            if resp.status >= 400:
                raise ApiError(resp.status, resp.read().decode(errors="replace")[:200], "image export")
            size = 0
            with open(dest, "wb") as out:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    size += len(chunk)
            return size
        except OSError as exc:
            raise self._unreachable(exc) from None
        finally:
            conn.close()

    def exec_stream(self: _Api, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        """Run argv with its output streamed live to this process's stdout/stderr; its exit code.

        Streaming needs LXD's exec websockets, which pylxd implements well; imported only here
        (0.3 s). LXD's refusals raise ExecFailed: 127 not found, 126 not executable, 125 other.
        """
        if not self.is_local:
            # pylxd's TLS handling refused LXD's self-signed certificates here (LXD-HOST-NOTES),
            # so a remote runs the command with recorded output, shown when it ends.
            res = self.exec(name, argv, env=env)
            sys.stdout.write(res.stdout)
            sys.stderr.write(res.stderr)
            return res.exit_code

        import pylxd  # lazy: ~0.3 s, only `exec` streams
        from pylxd.exceptions import LXDAPIException

        def out(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        def err(text: str) -> None:
            sys.stderr.write(text)
            sys.stderr.flush()

        _quiet_websocket_manager_shutdown()
        try:
            client = pylxd.Client(endpoint=self.socket_path, project=self.project)
            result = client.instances.get(name).execute(argv, environment=env or {},
                                                        stdout_handler=out, stderr_handler=err)
        except LXDAPIException as exc:
            message = str(exc)
            if "not found" in message.lower():
                raise ExecFailed(f"{name}: {message}", 127) from None
            if any(s in message.lower() for s in ("not executable", "permission denied", "exec format")):
                raise ExecFailed(f"{name}: {message}", 126) from None
            raise ExecFailed(f"{name}: {message}", 125) from None
        return int(result.exit_code)


def _quiet_websocket_manager_shutdown() -> None:
    """Hide a known ws4py race: its manager thread may poll a closed epoll after the command ended.

    The command's output and exit code are already delivered by then (pylxd issue 538 and its
    kin); any other exception in any thread is still reported as usual.
    """
    default = threading.excepthook

    def hook(args: Any) -> None:
        if (args.thread is not None and args.thread.name == "WebSocketManager"
                and isinstance(args.exc_value, (ValueError, OSError))):
            return
        default(args)

    threading.excepthook = hook

"""The per-service half of compose conversion: each compose service key mapped to its stack key
(limits, image, ports, environment, depends_on, healthcheck, networks, volumes), with a note for
every key that is not carried over. compose.py reads the document and its networks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lxctool.core.units import UnitError, format_size
from lxctool.stacks.compose_units import (compose_bytes, compose_cpus, compose_cpuset, compose_seconds,
                                          compose_shares)

EXTENSION = "x-lxctool"


@dataclass(frozen=True)
class Note:
    """A key that was not carried over (or carried over with a change of meaning)."""

    path: str
    reason: str
    dropped: bool = True             # False: carried over, only spelled differently (an image name)

    def line(self) -> str:
        """One human line."""
        return f"{self.path}: {self.reason}"


class ServiceMapper:
    """Compose services -> stack services, collecting notes and errors (shared with compose.py)."""

    def __init__(self, folder: Path, allow_bind_mounts: bool, recipe_exists: Callable[[str], bool]) -> None:
        self.folder = folder
        self.allow_binds = allow_bind_mounts
        self.recipe_exists = recipe_exists
        self.notes: list[Note] = []
        self.errors: list[str] = []

    def note(self, path: str, reason: str, dropped: bool = True) -> None:
        """Record a key that was not carried over (or carried over spelled differently)."""
        self.notes.append(Note(path, reason, dropped))

    def service(self, sname: str, svc: dict[str, Any], stack: dict[str, Any]) -> dict[str, Any] | None:
        """One compose service as a stack service (None: it became the stack monitor or is dropped)."""
        where = f"services.{sname}"
        ext = svc.get(EXTENSION) or {}
        done = {"image", "build", EXTENSION}
        if ext.get("role") == "monitor":
            self._monitor(sname, svc, ext, stack)
            return None
        if ext.get("role") == "dashboard":
            self.note(where, "a dashboard service is not run as a container: use `lxctool dashboard -f FILE`")
            return None
        out: dict[str, Any] = {"image": self._image(where, svc, ext)}
        limits: dict[str, Any] = {}
        res = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}

        def conv(key: str, value: Any, fn: Callable[[Any], Any], limit_key: str) -> None:
            try:
                limits[limit_key] = fn(value)
            except UnitError as exc:
                self.errors.append(f"{where}.{key}: {exc}")

        cpus = res.get("cpus", svc.get("cpus"))
        if cpus is not None:
            conv("cpus", cpus, compose_cpus, "cpu-allowance")
        if svc.get("cpu_shares") is not None:
            if cpus is not None:
                self.note(f"{where}.cpu_shares", "dropped: a hard cpus quota is set, and LXD keeps one "
                                                 "limits.cpu.allowance")
            else:
                conv("cpu_shares", svc["cpu_shares"], compose_shares, "cpu-allowance")
        if svc.get("cpuset") is not None:
            conv("cpuset", svc["cpuset"], compose_cpuset, "cpu")
        mem = res.get("memory", svc.get("mem_limit"))
        if mem is not None:
            conv("mem_limit", mem, lambda v: format_size(compose_bytes(v)), "mem")
        pids = res.get("pids", svc.get("pids_limit"))
        if pids is not None and int(pids) > 0:
            limits["processes"] = int(pids)
        done |= {"cpus", "cpu_shares", "cpuset", "mem_limit", "pids_limit", "deploy"}
        for key in ("memswap_limit", "mem_reservation", "mem_swappiness", "cpu_quota", "cpu_period",
                    "cpu_count", "cpu_percent", "blkio_config"):
            if key in svc:
                self.note(f"{where}.{key}", "not carried over; use x-lxctool limits or lxctool limit keys")
                done.add(key)
        deploy = svc.get("deploy") or {}
        for key in deploy:
            if key not in ("resources", "replicas"):
                self.note(f"{where}.deploy.{key}", "not carried over")
        if (deploy.get("resources") or {}).get("reservations"):
            self.note(f"{where}.deploy.resources.reservations", "reservations are not limits; not carried over")
        limits.update(ext.get("limits") or {})
        if limits:
            out["limits"] = limits
        replicas = deploy.get("replicas", svc.get("scale"))
        done.add("scale")
        if replicas is not None:
            out["replicas"] = int(replicas)
        self._ports(where, svc, out)
        self._environment(where, svc, out)
        self._depends(where, svc, out)
        self._health(where, svc, out)
        self._service_networks(where, svc, out)
        self._volumes(where, svc, out)
        for key in ("command", "entrypoint"):
            if key in svc:
                self.note(f"{where}.{key}", "a system container runs its image's init, not a command; the "
                                            "recipe's services start it (or use x-lxctool provision)")
        for key in ("provision", "healthcheck", "logs", "profiles"):  # lxctool's own keys, as they are
            if ext.get(key):
                out[key] = ext[key]
        done |= {"ports", "environment", "env_file", "depends_on", "healthcheck", "networks", "volumes",
                 "command", "entrypoint"}
        for key in svc:
            if key not in done:
                self.note(f"{where}.{key}", "not carried over")
        return out

    def _image(self, where: str, svc: dict[str, Any], ext: dict[str, Any]) -> str:
        if ext.get("image"):
            return str(ext["image"])
        if "build" in svc:
            self.errors.append(f"{where}.build: a Dockerfile build cannot be converted; build an lxctool "
                               f"image recipe and name it with {EXTENSION}: {{image: RECIPE}}")
            return ""
        image = str(svc.get("image") or "")
        base = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
        if base and self.recipe_exists(base):
            if base != image:
                self.note(f"{where}.image", f"{image!r} runs as the local recipe {base!r}", dropped=False)
            return base
        return image

    def _monitor(self, sname: str, svc: dict[str, Any], ext: dict[str, Any],
                 stack: dict[str, Any]) -> None:
        """The telegraf-like service becomes the stack's host-side monitor."""
        deps = svc.get("depends_on") or []
        influx = ext.get("influxdb") or (list(deps)[0] if deps else None)
        stack["monitor"] = {"influxdb": influx, "database": ext.get("database", "telegraf"),
                            "interval": int(ext.get("interval", 10))}
        for key in svc:
            if key not in ("image", "build", EXTENSION, "depends_on"):
                self.note(f"services.{sname}.{key}", "dropped: this service is the stack's host-side "
                                                      "monitor (x-lxctool role: monitor), which reads the host itself")

    def _ports(self, where: str, svc: dict[str, Any], out: dict[str, Any]) -> None:
        publish = []
        for i, port in enumerate(svc.get("ports") or []):
            if isinstance(port, dict):
                target, published = port.get("target"), port.get("published")
                host_ip, proto = port.get("host_ip"), port.get("protocol", "tcp")
            else:
                m = re.fullmatch(r"(?:(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):)?(?:(\d+):)?(\d+)(?:/(tcp|udp))?", str(port))
                if not m:
                    self.errors.append(f"{where}.ports.{i}: {port!r} is not HOST:CONTAINER[/tcp|udp] "
                                       "(ranges are not supported)")
                    continue
                host_ip, published, target, proto = m.group(1), m.group(2), m.group(3), m.group(4) or "tcp"
            if not published:
                self.note(f"{where}.ports.{i}", "a port without a host port is not published "
                                                "(containers reach each other on the stack network)")
                continue
            spec = f"{host_ip or '127.0.0.1'}:{published}:{target}" + ("/udp" if proto == "udp" else "")
            publish.append(spec)
        if publish:
            out["publish"] = publish
        if "expose" in svc:
            self.note(f"{where}.expose", "every port is reachable on the stack network; nothing to do")

    def _environment(self, where: str, svc: dict[str, Any], out: dict[str, Any]) -> None:
        env: dict[str, str] = {}
        files = svc.get("env_file") or []
        for i, f in enumerate([files] if isinstance(files, str) else files):
            fpath = (self.folder / (f if isinstance(f, str) else f.get("path", ""))).resolve()
            try:
                for line in fpath.read_text().splitlines():
                    line = line.strip()
                    if line and not line.startswith("#") and "=" in line:
                        k, v = line.split("=", 1)
                        env[k.strip()] = v.strip().strip('"').strip("'")
            except OSError as exc:
                self.errors.append(f"{where}.env_file.{i}: cannot read {fpath}: {exc.strerror}")
        raw = svc.get("environment") or {}
        items: list[tuple[str, Any]] = list(raw.items()) if isinstance(raw, dict) else [
            (e.split("=", 1)[0], e.split("=", 1)[1] if "=" in e else None) for e in raw]
        for k, v in items:
            if v is None:
                env[k] = "${" + k + "}"  # compose: take it from the environment
            else:
                env[k] = str(v).lower() if isinstance(v, bool) else str(v)
        if env:
            out["environment"] = env

    def _depends(self, where: str, svc: dict[str, Any], out: dict[str, Any]) -> None:
        raw = svc.get("depends_on")
        if not raw:
            return
        conds = {"service_started": "started", "service_healthy": "healthy"}
        deps: dict[str, Any] = {}
        for dep, cfg in (raw.items() if isinstance(raw, dict) else ((d, {}) for d in raw)):
            cond = (cfg or {}).get("condition", "service_started")
            if cond not in conds:
                self.note(f"{where}.depends_on.{dep}.condition", f"{cond!r} becomes 'started'")
            deps[dep] = {"condition": conds.get(cond, "started")}
        out["depends_on"] = deps

    def _health(self, where: str, svc: dict[str, Any], out: dict[str, Any]) -> None:
        hc = svc.get("healthcheck")
        if not hc or hc.get("disable"):
            return
        test = hc.get("test")
        if isinstance(test, str):
            command = ["sh", "-c", test]
        elif test and test[0] == "CMD":
            command = [str(t) for t in test[1:]]
        elif test and test[0] == "CMD-SHELL":
            command = ["sh", "-c", " ".join(str(t) for t in test[1:])]
        else:
            return  # ["NONE"]: no check
        check: dict[str, Any] = {"command": command}
        for key in ("interval", "timeout", "start_period"):
            if key in hc:
                try:
                    check[key] = compose_seconds(hc[key])
                except UnitError as exc:
                    self.errors.append(f"{where}.healthcheck.{key}: {exc}")
        if "retries" in hc:
            check["retries"] = int(hc["retries"])
        out["healthcheck"] = check

    def _service_networks(self, where: str, svc: dict[str, Any], out: dict[str, Any]) -> None:
        raw = svc.get("networks")
        if raw is None:
            if svc.get("network_mode"):
                self.note(f"{where}.network_mode", "not carried over; the service joins the stack network")
            return
        nets: dict[str, Any] = {}
        for net, cfg in (raw.items() if isinstance(raw, dict) else ((n, {}) for n in raw)):
            cfg = cfg or {}
            nets[net] = {"ip": cfg["ipv4_address"]} if cfg.get("ipv4_address") else {}
            for key in cfg:
                if key != "ipv4_address":
                    self.note(f"{where}.networks.{net}.{key}", "not carried over")
        out["networks"] = nets

    def _volumes(self, where: str, svc: dict[str, Any], out: dict[str, Any]) -> None:
        named: dict[str, str] = {}
        binds: dict[str, str] = {}
        for i, vol in enumerate(svc.get("volumes") or []):
            if isinstance(vol, dict):
                source, target, kind = vol.get("source"), vol.get("target"), vol.get("type", "volume")
                readonly = bool(vol.get("read_only"))
            else:
                parts = str(vol).split(":")
                source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
                kind = "bind" if source and (source.startswith((".", "/", "~"))) else "volume"
                readonly = len(parts) > 2 and "ro" in parts[2].split(",")
                if len(parts) > 2 and parts[2] not in ("ro", "rw"):
                    self.note(f"{where}.volumes.{i}", f"mode {parts[2]!r} not carried over")
            if not source:
                self.note(f"{where}.volumes.{i}", "an anonymous volume is not carried over")
            elif kind == "bind":
                if not self.allow_binds:
                    self.errors.append(f"{where}.volumes.{i}: {source} is a bind mount into the host; "
                                       "add --allow-bind-mounts to allow it")
                else:
                    host = (self.folder / Path(source).expanduser()).resolve()
                    binds[str(host)] = str(target) + (":ro" if readonly else "")
            else:
                named[str(source)] = str(target)
        if named:
            out["volumes"] = named
        if binds:
            out["binds"] = binds

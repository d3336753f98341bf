"""Provision a replica: push its files, run its commands. Secrets reach only these files and the
commands' environment; any output shown is masked."""

from __future__ import annotations

from typing import Any, Mapping

from lxctool.core.errors import LxctoolError
from lxctool.lxd.client import Lxd
from lxctool.stacks import model as m
from lxctool.stacks import templates
from lxctool.stacks.desired import PROVISION_KEY
from lxctool.stacks.validate import source_text


class ProvisionFailed(LxctoolError):
    """A provision command failed inside a replica."""

    exit_code = 1


def _fill(text: str, ctx: Mapping[str, Any], sec: templates.Secrets) -> str:
    return templates.substitute(templates.render(text, ctx), sec.values)


def provision(lxd: Lxd, name: str, svc: m.Service, ctx: Mapping[str, Any], sec: templates.Secrets,
              done_hash: str) -> None:
    """Push files and run commands in order; on success record done_hash on the container."""
    prov = svc.provision

    for f in prov.files:
        text = f.content if f.content is not None else source_text(f)
        # a binary source file is pushed as it is; text is a template like content:
        data = _fill(text, ctx, sec).encode() if text is not None else (f.source.read_bytes() if f.source else b"")
        parent = f.path.rsplit("/", 1)[0] or "/"
        lxd.exec(name, ["mkdir", "-p", parent])
        lxd.push_file(name, f.path, data, mode=f.mode)
    env = {k: _fill(v, ctx, sec) for k, v in prov.env}
    for cmd in prov.commands:
        argv = [_fill(a, ctx, sec) for a in cmd]
        res = lxd.exec(name, argv, env=env)
        if res.exit_code != 0:
            out = sec.mask((res.stdout + res.stderr).strip())[-600:]
            shown = sec.mask(" ".join(argv))
            raise ProvisionFailed(f"services.{svc.name}: provision command `{shown}` failed in {name} "
                                  f"with exit {res.exit_code}" + (f": {out}" if out else ""))
    lxd.patch_instance(name, {"config": {PROVISION_KEY: done_hash}})

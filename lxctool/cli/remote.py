"""`lxctool remote add|list|remove|switch`: remote LXD servers reached over HTTPS."""

from __future__ import annotations

import os

import click

from lxctool.cli import emit
from lxctool.cli import format_option
from lxctool.core.errors import DaemonUnreachable, SpecError
from lxctool.report.render import render


@click.group()
def remote() -> None:
    """Remote LXD servers: HTTPS with lxctool's client certificate and a pinned server certificate.

    \b
    On the server:  lxc config set core.https_address 127.0.0.1:8443
                    lxc config trust add --name lxctool      (prints a token)
    Here:           lxctool remote add lab https://127.0.0.1:8443 --token TOKEN
                    lxctool --remote lab launch web1 --cpu 1 --mem 512MB
                    lxctool remote switch lab                (make it the default)
    """


@remote.command()
@click.argument("name")
@click.argument("url")
@click.option("--token", metavar="TOKEN", help="Trust token from `lxc config trust add` on the server.")
@click.option("--password", is_flag=True, help="Ask for the server's trust password instead (older servers).")
@click.option("--accept-certificate", is_flag=True,
              help="Pin the server's certificate without asking (after showing its fingerprint).")
def add(name: str, url: str, token: str | None, password: bool,
        accept_certificate: bool) -> None:
    """Register server URL (https://HOST[:8443]) as NAME, pin its certificate, and get trusted."""
    # lazy: the HTTPS door (http.client, ssl) costs ~35 ms, not paid by --help
    from lxctool.lxd import remote as remotes
    from lxctool.lxd.client import Lxd
    from lxctool.lxd.transport import HttpsTransport

    remotes.check_new(name, url)
    if token and password:
        raise SpecError("--token/--password: give one of them, not both")
    crt, key = remotes.client_keypair()
    probe = HttpsTransport(name, url, None, crt, key)
    try:
        seen = probe.server_fingerprint()
    except OSError as exc:
        raise DaemonUnreachable(f"{probe.where} is not answering "
                                f"({getattr(exc, 'reason', None) or exc.strerror or exc})") from None
    click.echo(f"lxctool: {url} presents certificate fingerprint {seen}", err=True)
    if not accept_certificate and not click.confirm("Pin this certificate and trust the server?",
                                                    err=True):
        raise click.exceptions.Exit(2)
    secret = token
    if password:
        secret = click.prompt("Server trust password", hide_input=True, err=True)
    lxd = Lxd(transport=HttpsTransport(name, url, seen, crt, key))
    remotes.join_trust(lxd, secret, f"lxctool-{os.uname().nodename}")
    doc = remotes.load()
    doc["remotes"][name] = {"url": url, "fingerprint": seen}
    remotes.save(doc)
    click.echo(f"lxctool: remote {name} added ({url}); use it with --remote {name}", err=True)


@remote.command(name="list")
@format_option
def list_(fmt: str) -> None:
    """Registered remotes: name, URL, pinned fingerprint, and which one is the default."""
    from lxctool.lxd import remote as remotes  # lazy: ~35 ms (http.client, ssl), not paid by --help

    doc = remotes.load()
    default = doc.get("default") or remotes.LOCAL
    rows = [{"name": remotes.LOCAL, "url": "unix://", "fingerprint": "",
             "default": default == remotes.LOCAL}]
    for rname, entry in sorted(doc["remotes"].items()):
        rows.append({"name": rname, "url": entry["url"], "fingerprint": entry["fingerprint"],
                     "default": default == rname})
    emit(render(rows, ["name", "url", "fingerprint", "default"], fmt))


@remote.command()
@click.argument("name")
def remove(name: str) -> None:
    """Forget remote NAME here (the server's trust entry for this client stays; remove it there)."""
    from lxctool.lxd import remote as remotes  # lazy: ~35 ms (http.client, ssl), not paid by --help

    remotes.get(name)
    doc = remotes.load()
    del doc["remotes"][name]
    if doc.get("default") == name:
        doc["default"] = None
    remotes.save(doc)
    click.echo(f"lxctool: remote {name} removed", err=True)


@remote.command()
@click.argument("name")
def switch(name: str) -> None:
    """Make NAME the default for commands without --remote (`local` = this machine's daemon)."""
    from lxctool.lxd import remote as remotes  # lazy: ~35 ms (http.client, ssl), not paid by --help

    if name != remotes.LOCAL:
        remotes.get(name)
    doc = remotes.load()
    doc["default"] = None if name == remotes.LOCAL else name
    remotes.save(doc)
    click.echo(f"lxctool: default remote is now {name}", err=True)


def register(cli: click.Group) -> None:
    """Add `remote` to the CLI."""
    cli.add_command(remote)

"""`lxctool network create|list|show|delete` and `lxctool net check`."""

from __future__ import annotations

from typing import Any

import click

from lxctool.cli import App
from lxctool.cli import emit
from lxctool.cli import format_option
from lxctool.cli import pass_app
from lxctool.cli import emit_ops
from lxctool.cli.params import NETWORK, finite
from lxctool.core.errors import CheckFailed, PreflightError
from lxctool.report.progress import progress
from lxctool.report.render import render


@click.group()
def network() -> None:
    """Private lab networks: LXD managed bridges, isolated by default.

    \b
    Examples:
      lxctool network create lab1 --subnet 10.20.0.1/24
      lxctool launch db --network lab1 --ip 10.20.0.10
      lxctool network show lab1
      lxctool net check lab1 lab2
    """


@network.command()
@click.argument("name", callback=NETWORK)
@click.option("--subnet", required=True, metavar="GATEWAY/PREFIX",
              help="Private IPv4 range given by the bridge's own address, e.g. 10.20.0.1/24.")
@click.option("--nat/--no-nat", default=False, show_default=True,
              help="Masquerade traffic leaving the bridge (needs --no-isolated).")
@click.option("--isolated/--no-isolated", default=True, show_default=True,
              help="Forward nothing out of the bridge; containers on it still reach each other and the host.")
@click.option("--dhcp-range", metavar="FIRST-LAST", help="Addresses DHCP hands out (default: the whole subnet).")
@click.option("--domain", metavar="DOMAIN", help="DNS domain of container names on the bridge (default: lxd).")
@click.option("--dry-run", is_flag=True, help="Print the operations and change nothing.")
@format_option
@pass_app
def create(app: App, name: str, subnet: str, nat: bool, isolated: bool, dhcp_range: str | None,
           domain: str | None, dry_run: bool, fmt: str) -> None:
    """Create bridge NAME; refuse a public, overlapping or malformed subnet before any change."""
    from lxctool.apply.executor import apply  # lazy: 40-90 ms, not paid by --help
    from lxctool.apply.lifecycle import plan_network  # lazy: 40-90 ms, not paid by --help
    from lxctool.net import network as core  # lazy: 40-90 ms, not paid by --help

    # the options alone first: bad input is refused even when the daemon is down (exit 2, not 1)
    core.parse_network_spec(name, subnet, nat, isolated, dhcp_range, domain, [])
    spec = core.parse_network_spec(name, subnet, nat, isolated, dhcp_range, domain,
                                   core.taken_subnets(app.lxd))
    if app.lxd.network(name) is not None:
        raise PreflightError(f"NAME: a network named {name!r} already exists; choose another name")
    if spec.isolated and not app.lxd.is_local:
        raise PreflightError(f"--isolated: {app.lxd.where}: the drop rule that isolates a bridge is set in "
                             "that machine's iptables, which lxctool can only do there; use --no-isolated "
                             "(and isolate it on the server) or run lxctool on that machine")
    ops = plan_network(app.lxd, name, spec.lxd_config(), core.description(spec))
    if dry_run:
        emit_ops(ops, fmt)
        return
    progress(f"creating network {name} {spec.subnet}{' (isolated)' if isolated else ''}")
    apply(app.lxd, ops)
    _emit_show(core.show(app.lxd, name, resolve=False), fmt)


@network.command(name="list")
@click.option("--all", "all_networks", is_flag=True, help="Also managed bridges lxctool did not create.")
@format_option
@pass_app
def list_cmd(app: App, all_networks: bool, fmt: str) -> None:
    """List lxctool's networks with subnet, NAT, isolation (and whether its rule is in place)."""
    from lxctool.net.network import list_rows  # lazy: 40-90 ms, not paid by --help

    emit(render(list_rows(app.lxd, all_networks), ["name", "subnet", "nat", "isolated", "isolation_rule",
                                                   "dhcp_range", "domain", "containers", "state"], fmt))


def _emit_show(data: dict[str, Any], fmt: str) -> None:
    cols = ["name", "state", "nic", "ipv4", "assigned", "mac", "host_veth", "dns"]
    if fmt != "table":
        emit(render(data["members"], cols, fmt, data=data))
        return
    emit(f"network: {data['name']}  subnet: {data['subnet']}  gateway: {data['gateway']}  "
         f"nat: {'yes' if data['nat'] else 'no'}  isolated: {'yes' if data['isolated'] else 'no'}"
         f"{' (drop rule in place)' if data['isolated'] and data['isolation_rule'] else ''}  "
         f"dhcp: {data['dhcp_range']}  domain: {data['domain']}")
    if data["members"]:
        emit("")
        emit(render(data["members"], cols, fmt))


@network.command()
@click.argument("name", callback=NETWORK)
@format_option
@pass_app
def show(app: App, name: str, fmt: str) -> None:
    """Show NAME: subnet, gateway, isolation, and which container holds which address, MAC and veth.

    The dns column names the container's name as the bridge's DNS resolves it right now.
    """
    from lxctool.net.network import show as gather  # lazy: 40-90 ms, not paid by --help

    _emit_show(gather(app.lxd, name), fmt)


@network.command()
@click.argument("name", callback=NETWORK)
@click.option("--force", is_flag=True, help="Also delete a network lxctool did not create; detach the "
              "containers that use it first by removing their NIC on it (and say so).")
@click.option("--dry-run", is_flag=True, help="Print the operations and change nothing.")
@format_option
@pass_app
def delete(app: App, name: str, force: bool, dry_run: bool, fmt: str) -> None:
    """Delete network NAME (only one lxctool created, unless --force); refuses while containers use it
    unless --force, which removes their NIC on it (never moves it onto another network)."""
    from lxctool.apply.executor import apply  # lazy: 40-90 ms, not paid by --help
    from lxctool.apply.lifecycle import plan_delete_network  # lazy: 40-90 ms, not paid by --help

    ops = plan_delete_network(app.lxd, name, force)
    if dry_run:
        emit_ops(ops, fmt)
        return
    apply(app.lxd, ops)
    progress(f"deleted network {name}")


@click.group(name="net")
def net() -> None:
    """Network checks."""


@net.command()
@click.argument("names", nargs=-1, metavar="[NETWORK...]", callback=NETWORK)
@click.option("--outside", "outside", multiple=True, metavar="ADDR[:PORT]",
              help="An address outside every bridge (e.g. in a host network namespace) that isolated "
                   "containers must NOT reach; the host must reach it (the positive control).")
@click.option("--timeout", type=float, default=2.0, show_default=True, callback=finite(0.5, 600),
              help="Seconds one probe waits for an answer.")
@format_option
@pass_app
def check(app: App, names: tuple[str, ...], outside: tuple[str, ...], timeout: float, fmt: str) -> int:
    """Prove the reachability the layout implies (default: every lxctool network).

    \b
    Same network: reachable. Different isolated networks: not. Host to container: reachable.
    Out of an isolated bridge (--outside): nothing forwarded.
    Probes: ICMP (ping) and TCP (a temporary HTTP listener on each target).
    Exit 3 when anything observed differs from what is expected.
    """
    from lxctool.net.check import run_check  # lazy: 40-90 ms, not paid by --help

    rows = run_check(app.lxd, list(names), list(outside), timeout)
    if not rows:
        # exit 2, not 3: no check ran, so nothing was found to differ (DESIGN.md: 3 is "a check ran
        # and found a difference"); a script must not read "0 probes" as "isolation proven"
        from lxctool.core.errors import PreflightError

        raise PreflightError("NETWORK: nothing to check: no running containers on "
                             f"{', '.join(names) or 'any lxctool network'}; launch some first")
    emit(render(rows, ["source", "target", "probe", "expected", "observed", "control", "verdict"], fmt))
    bad = [r for r in rows if r["verdict"] != "ok"]
    if bad:
        raise CheckFailed(f"{len(bad)} of {len(rows)} probes differ from the layout")
    return 0


def register(group: click.Group) -> None:
    """Add the network and net groups."""
    group.add_command(network)
    group.add_command(net)

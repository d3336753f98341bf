"""Container commands: launch, list, info, limits, start, stop, restart, delete, exec."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import click

from lxctool.cli import App
from lxctool.cli import emit
from lxctool.cli import emit_ops
from lxctool.cli import format_option
from lxctool.cli import pass_app
from lxctool.cli.params import CONTAINER, IMAGE, NETWORK, env_pairs, finite, profile_ref
from lxctool.core.errors import ExecFailed, LxctoolError, SpecError
from lxctool.lxd.cluster import check_target
from lxctool.report.render import render

LIST_COLUMNS = ["name", "state", "ipv4", "limits", "processes", "memory_bytes"]


def limit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The limit options shared by launch and limits (values are parsed, with field names, in spec)."""
    opts = [
        click.option("--cpu", metavar="VALUE", help="CPUs: N (count), 0-1 / 0,2 / 1-1 (pin a set), "
                     "or 0.5 / 1.5 (a hard quota in CPUs, as docker --cpus)."),
        click.option("--cpu-allowance", metavar="N%|Xms/Yms",
                     help="CPU time: N% is a soft share; Xms/Yms a hard quota per period."),
        click.option("--mem", metavar="SIZE", help="Memory limit: 512MB (10^6) or 512MiB (2^20)."),
        click.option("--swap/--no-swap", default=None, help="Allow or forbid swap (limits.memory.swap)."),
        click.option("--processes", metavar="N", help="Most processes/threads (limits.processes)."),
        click.option("--disk", metavar="SIZE", help="Root disk size (needs a pool that enforces quotas)."),
        click.option("--disk-read", metavar="RATE", help="Root disk read limit: 10MB (bytes/s) or 100iops."),
        click.option("--disk-write", metavar="RATE", help="Root disk write limit: 10MB (bytes/s) or 100iops."),
        click.option("--net-in", metavar="RATE", help="Traffic into the container: 10Mbit (bits/s)."),
        click.option("--net-out", metavar="RATE", help="Traffic out of the container: 10Mbit (bits/s)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _limits_from(kw: dict[str, Any], errors: list[str]) -> Any:
    from lxctool.core.spec import option_label, parse_limits  # lazy: ~14 ms, not paid by --help

    raw = {key: kw.pop(key.replace("-", "_")) for key in
           ("cpu", "cpu-allowance", "mem", "swap", "processes", "disk", "disk-read", "disk-write",
            "net-in", "net-out")}
    return parse_limits(raw, option_label, errors)


@click.command()
@click.argument("name", callback=CONTAINER)
@click.option("--image", default="busybox", envvar="LXCTOOL_IMAGE", show_default=True, callback=IMAGE,
              help="Image alias (a recipe name from images/). Env: LXCTOOL_IMAGE.")
@limit_options
@click.option("--profile", "profiles", multiple=True, metavar="P", callback=profile_ref(),
              help="A limit profile: a file profiles/P.yaml or a path (made into LXD profile lxctool-P-HASH, "
                   "named by its content), "
                   "else an existing LXD profile. Repeatable; options override it.")
@click.option("--network", "networks", multiple=True, envvar="LXCTOOL_NETWORK", metavar="NET", callback=NETWORK,
              help="Managed bridge for eth0 (default lxctool0); repeat for eth1, eth2... Env: LXCTOOL_NETWORK.")
@click.option("--publish", "publish", multiple=True, metavar="[HOST_IP:]HOST_PORT:PORT[/tcp|udp]",
              help="Forward a host port into the container (LXD proxy device); host side binds to "
                   "127.0.0.1 unless HOST_IP is given. Repeatable.")
@click.option("--ip", "ips", multiple=True, metavar="[NET=]ADDR",
              help="Fixed IPv4 (default: DHCP): ADDR for the first network, NET=ADDR for another.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until it has its IPv4 and its image's readiness check passes.")
@click.option("--timeout", type=float, default=60, show_default=True, callback=finite(1, 86400),
              help="Seconds to wait for the IPv4 (the readiness check gets at least 180).")
@click.option("--build", "build_image", is_flag=True,
              help="Build the image from its recipe first when it is missing or its recipe changed.")
@click.option("--dry-run", is_flag=True, help="Print the operations and change nothing.")
@click.option("--target", metavar="MEMBER", help="Cluster member to run it on (default: LXD chooses).")
@format_option
@pass_app
def launch(app: App, name: str, image: str, profiles: tuple[str, ...], networks: tuple[str, ...],
           publish: tuple[str, ...], ips: tuple[str, ...], wait: bool, timeout: float, build_image: bool, dry_run: bool,
           target: str | None, fmt: str, **kw: Any) -> None:
    """Create and start container NAME with limits; wait for its IPv4 and report it.

    \b
    Examples:
      lxctool launch web1 --cpu 1 --mem 512MB
      lxctool launch exp --cpu 0.25 --mem 128MB --no-swap --processes 50
      lxctool launch db --profile medium --ip 10.191.0.20
      lxctool launch gw --network lab1 --network lab2 --ip lab2=10.2.0.5
      lxctool launch web --publish 8080:80 --net-in 10Mbit --net-out 10Mbit
      lxctool launch wiki --image mediawiki --build
    """
    # lazy: launch's modules (~110 ms with the LXD client), not paid by --help
    from lxctool.apply.launch import apply_launch, prepare_launch
    from lxctool.core.spec import LaunchSpec
    from lxctool.net.attach import parse_attachments, parse_publish
    from lxctool.net.network import address_lock

    errors: list[str] = []
    limits = _limits_from(kw, errors)
    nets = list(networks) or ["lxctool0"]
    attachments = parse_attachments(nets, list(ips), errors)
    published = parse_publish(list(publish), errors)
    from lxctool.core.spec import check_floors, option_label
    from lxctool.images.recipes import image_family

    errors += check_floors(limits, image_family(image), option_label)  # measured minimum to start
    if errors:
        raise SpecError(errors)
    if limits.cpu_allowance is not None and not limits.cpu_allowance.hard:
        click.echo(f"lxctool: note: --cpu-allowance {limits.cpu_allowance.lxd()} is a soft share "
                   "(cpu.shares): it only matters when CPUs are contended; Xms/Yms is a hard cap", err=True)
    if target:
        check_target(app.lxd, target)
        app.lxd.target = target
    spec = LaunchSpec(name=name, image=image, limits=limits, profiles=profiles, network=nets[0],
                      ip=attachments[0].ip, wait=wait, timeout=timeout, build=build_image)
    plan = prepare_launch(app.lxd, spec, app.caps, attachments, published)  # refusals take no lock
    if dry_run:
        emit_ops(plan.ops, fmt)
        return
    fixed = any(a.ip for a in attachments)
    from lxctool.core.plan import OpKind

    from lxctool.apply import gc

    creates = any(op.kind == OpKind.CREATE and op.target == name for op in plan.ops)
    try:
        # fixed-address launches one at a time: check the address again under the lock, then create
        with address_lock() if fixed else contextlib.nullcontext():
            if fixed:
                plan = prepare_launch(app.lxd, spec, app.caps, attachments, published)
            # temporary until the result line: after a kill -9 mid-launch `lxctool gc` removes it
            config_hash = gc.mark_plan(plan.ops, name)
            result = apply_launch(app.lxd, plan)
            if config_hash is not None:
                gc.settle(app.lxd, name, config_hash)
    except KeyboardInterrupt:  # Ctrl-C/SIGTERM before the result line: what this launch made goes
        if creates:  # also once it runs (the executor keeps a started container on other failures)
            app.lxd.remove_instance(name)
        raise
    from lxctool.cli import quiet_signals

    quiet_signals()  # from the result line on, the container is the user's: a signal changes nothing
    emit(render([result], ["name", "state", "ipv4", "limits"], fmt, data=result))


@click.command(name="list")
@click.option("--all", "all_instances", is_flag=True, help="Also containers lxctool did not create.")
@format_option
@pass_app
def list_cmd(app: App, all_instances: bool, fmt: str) -> None:
    """List containers with state, IPv4, limits, processes and memory.

    One LXD request for the containers plus one per network for its DHCP leases; processes
    and memory are read from each container's cgroups on this host (on a remote or a cluster:
    one request for every container's full state).
    """
    from lxctool.observe.listing import list_rows  # lazy: ~100 ms with the LXD client, not paid by --help

    rows = list_rows(app.lxd, all_instances)
    if rows is None:  # a remote or a cluster: the cgroups are elsewhere, ask LXD for the full state
        from lxctool.apply.lifecycle import list_rows as state_rows  # lazy: only a remote or a cluster

        rows = state_rows(app.lxd, all_instances)
    member = ["member"] if any("member" in r for r in rows) else []  # a cluster: where each runs
    emit(render(rows, LIST_COLUMNS[:1] + member + LIST_COLUMNS[1:]
                + (["memory_limit_bytes"] if fmt != "table" else []), fmt))
    lost = sorted({r["member"] for r in rows if r.get("member") and r["state"] == "ERROR"})
    if lost:
        click.echo(f"lxctool: warning: cluster member {', '.join(lost)} is not answering: its "
                   "containers' state is unknown; see `lxctool cluster list`", err=True)


def _limits_table(data: dict[str, Any], fmt: str) -> str:
    return render(data["limits"], ["limit", "configured", "effective_text", "source"], fmt,
                  headers=["limit", "configured (LXD)", "effective (kernel)", "read from"], data=data)


@click.command()
@click.argument("name", callback=CONTAINER)
@format_option
@pass_app
def info(app: App, name: str, fmt: str) -> None:
    """Show each limit of NAME as configured in LXD and as enforced by the kernel, plus usage."""
    from lxctool.observe.info import info as gather  # lazy: ~100 ms, not paid by --help

    data = gather(app.lxd, name)
    if fmt != "table":
        emit(_limits_table(data, fmt))
        return
    emit(f"name: {data['name']}  state: {data['state']}  ipv4: {', '.join(data['ipv4']) or '-'}  "
         f"pid: {data['pid'] or '-'}  veth: {data['host_veth'] or '-'}  cgroups: {data['cgroup_layout']}")
    emit("")
    emit(_limits_table(data, fmt))
    emit("")
    emit(render([data["usage"]], list(data["usage"]), fmt))


@click.command()
@click.argument("name", callback=CONTAINER)
@limit_options
@click.option("--force", is_flag=True, help="Also change a container lxctool did not create.")
@click.option("--dry-run", is_flag=True, help="Print the change and make none.")
@format_option
@pass_app
def limits(app: App, name: str, force: bool, dry_run: bool, fmt: str, **kw: Any) -> None:
    """Show NAME's limits, or change them live and show before and after.

    \b
    Examples:
      lxctool limits web1                      # show
      lxctool limits web1 --mem 1GB --cpu 0.5  # change while it runs
    """
    # lazy: ~100 ms with the LXD client, not paid by --help
    from lxctool.apply.executor import apply
    from lxctool.apply.lifecycle import prepare_limits
    from lxctool.core.plan import OpKind
    from lxctool.observe.info import info as gather

    errors: list[str] = []
    new = _limits_from(kw, errors)
    if errors:
        raise SpecError(errors)
    if new.is_empty():
        emit(_limits_table(gather(app.lxd, name), fmt))
        return
    from lxctool.core.spec import option_label  # lazy: not paid by --help
    from lxctool.observe.headroom import below_current_use  # lazy: not paid by --help

    inst = app.lxd.require_instance(name)
    errors = below_current_use(inst, app.lxd.instance_state(name), new, option_label)
    if errors:  # floors and current use: refused before LXD sees the change
        raise SpecError(errors)
    _, ops = prepare_limits(app.lxd, name, new, app.caps, force)
    unchanged = all(op.kind == OpKind.NOOP for op in ops)
    if dry_run and (fmt == "json" or not unchanged):
        emit_ops(ops, fmt)
        return
    if unchanged:
        if not dry_run and new.net_out is not None:
            from lxctool.host.shaping import sync  # lazy: ~8 ms, only a net-out limit asked again

            sync(app.lxd, name)  # same rate asked again: put host-side shaping back if it is gone
        emit(f"{name}: limits already as asked; nothing to change")
        return
    before = {r["limit"]: r for r in gather(app.lxd, name)["limits"]}
    apply(app.lxd, ops)
    after = gather(app.lxd, name)["limits"]
    rows = [{"limit": r["limit"],
             "configured_before": before.get(r["limit"], {}).get("configured"),
             "effective_before": before.get(r["limit"], {}).get("effective_text"),
             "configured": r["configured"], "effective": r["effective_text"]} for r in after
            if before.get(r["limit"], {}).get("effective_text") != r["effective_text"]
            or before.get(r["limit"], {}).get("configured") != r["configured"]]
    emit(render(rows, ["limit", "configured_before", "effective_before", "configured", "effective"], fmt))


def _state_command(action: str, doc: str) -> click.Command:
    @click.command(name=action, help=doc)
    @click.argument("names", nargs=-1, required=True, metavar="NAME...", callback=CONTAINER)
    @click.option("--force", is_flag=True, help="Also act on containers lxctool did not create; "
                  "stop/restart: do not wait for a clean shutdown.")
    @click.option("--dry-run", is_flag=True, help="Print the operations and change nothing.")
    @format_option
    @pass_app
    def command(app: App, names: tuple[str, ...], force: bool, dry_run: bool, fmt: str) -> None:
        from lxctool.apply.lifecycle import change_state, plan_change_state  # lazy: ~100 ms, not paid by --help

        ops = plan_change_state(app.lxd, list(names), action, force)
        if dry_run:
            emit_ops(ops, fmt)
            return
        emit(render(change_state(app.lxd, ops), ["name", "state", "ipv4"], fmt))

    return command


@click.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...", callback=CONTAINER)
@click.option("--force", is_flag=True, help="Also delete containers lxctool did not create.")
@click.option("--dry-run", is_flag=True, help="Print the operations and change nothing.")
@format_option
@pass_app
def delete(app: App, names: tuple[str, ...], force: bool, dry_run: bool, fmt: str) -> None:
    """Stop and delete containers (only those lxctool created, unless --force)."""
    from lxctool.apply.lifecycle import delete as do_delete, plan_delete  # lazy: ~100 ms, not paid by --help

    ops = plan_delete(app.lxd, list(names), force)
    if dry_run:
        emit_ops(ops, fmt)
        return
    for name in do_delete(app.lxd, ops):
        click.echo(f"lxctool: deleted {name}", err=True)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("name", callback=CONTAINER)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", callback=env_pairs,
              help="Set an environment variable.")
@pass_app
def exec(app: App, name: str, command: tuple[str, ...], env: tuple[str, ...]) -> int:  # noqa: A001
    """Run COMMAND in NAME (write it after --), output streamed live; exit with its exit code.

    \b
    125: lxctool could not run it (no such container, not running, daemon down)
    126: not executable    127: not found
    Example: lxctool exec web1 -- ps
    """
    from lxctool.apply.lifecycle import require_running  # lazy: ~100 ms, not paid by --help

    try:
        require_running(app.lxd, name)
    except LxctoolError as exc:  # not there, not running, daemon down: could not run it
        raise ExecFailed(exc.message, 125) from None
    environment = dict(e.split("=", 1) for e in env)
    return app.lxd.exec_stream(name, list(command), environment)


def register(group: click.Group) -> None:
    """Add these commands to the lxctool group."""
    for cmd in (launch, list_cmd, info, limits, delete, exec):
        group.add_command(cmd)
    group.add_command(_state_command("start", "Start stopped containers (only those lxctool created, unless --force)."))
    group.add_command(_state_command("stop", "Stop running containers cleanly (--force kills, and also stops "
                                             "containers lxctool did not create)."))
    group.add_command(_state_command("restart", "Restart containers (only those lxctool created, unless --force)."))

"""Host firewall rules that keep lxctool bridges isolated (no forwarding out of the bridge).

LXD's `ipv4.routing=false` is not an isolation switch here: with br_netfilter on, its REJECT
rules also cut container-to-container traffic. One FORWARD rule per bridge drops only what
leaves it. scripts/setup-host.sh writes the same rule (same comment) for lxctool0.
"""

from __future__ import annotations

from lxctool.core.errors import LxdError
from lxctool.host import run


def _rule(bridge: str) -> list[str]:
    return ["FORWARD", "-i", bridge, "!", "-o", bridge, "-m", "comment",
            "--comment", f"lxctool isolation {bridge}", "-j", "DROP"]


def _iptables(*args: str) -> run.Completed:
    return run.run(["iptables", "-w", *args], check=False)


def available() -> bool:
    """Whether iptables is installed."""
    return run.which("iptables") is not None


def isolation_rule_present(bridge: str) -> bool:
    """Whether the drop rule for traffic leaving bridge is in FORWARD."""
    return available() and _iptables("-C", *_rule(bridge)).returncode == 0


def ensure_isolation(bridge: str) -> bool:
    """Add the drop rule at the top of FORWARD unless present; True when it changed something."""
    if isolation_rule_present(bridge):
        return False
    proc = _iptables("-I", *_rule(bridge))
    if not proc.ok:
        raise LxdError(f"iptables refused the isolation rule for {bridge}: {run.last_line(proc.stderr)}")
    return True


def remove_isolation(bridge: str) -> None:
    """Remove the drop rule (every copy of it)."""
    while isolation_rule_present(bridge):
        _iptables("-D", *_rule(bridge))

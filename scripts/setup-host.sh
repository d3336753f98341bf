#!/usr/bin/env bash
# Set up this host for lxctool: install LXD and its helpers, start the daemon,
# add lxctool's own storage pool, isolated bridge, firewall rule and profile,
# install the Python package into a virtual environment, build the busybox image.
# Root, idempotent: a re-run checks each step and changes nothing that is already right.
#
# Usage: scripts/setup-host.sh [--demo]
#   --demo   afterwards launch web1 --cpu 1 --mem 512MB, print `info web1` and `list`.
# Environment: LXCTOOL_POOL_SIZE (default 30GiB, a sparse loop file),
#              LXCTOOL_SUBNET (default 10.191.0.1/24).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
POOL=lxctool
BRIDGE=lxctool0
PROFILE=lxctool
SUBNET=${LXCTOOL_SUBNET:-10.191.0.1/24}
POOL_SIZE=${LXCTOOL_POOL_SIZE:-30GiB}
VENV=$REPO/.venv
LOGDIR=/var/log/lxd
DEMO=0
[[ ${1:-} == --demo ]] && DEMO=1

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and configures LXD)"

# --- 1. packages ------------------------------------------------------------
SNAP_SOCKET=/var/snap/lxd/common/lxd/unix.socket
use_snap=0
if [[ -S $SNAP_SOCKET ]] && LXD_DIR=/var/snap/lxd/common/lxd lxc info >/dev/null 2>&1; then
  use_snap=1
  export LXD_DIR=/var/snap/lxd/common/lxd
  say "a snap LXD answers on $SNAP_SOCKET: using it"
fi
need=(iptables busybox-static btrfs-progs debootstrap iproute2 iputils-ping python3-venv influxdb influxdb-client zstd)
((use_snap)) || need+=(lxd lxd-client lxd-tools)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
else
  say "packages present"
fi

# --- 2. daemon --------------------------------------------------------------
if ! lxc info >/dev/null 2>&1; then
  ((use_snap)) && die "the snap LXD stopped answering; start it with: snap start lxd"
  mkdir -p "$LOGDIR"
  say "starting lxd (no init system manages it here)"
  setsid nohup lxd --group root --logfile "$LOGDIR/lxd.log" >/dev/null 2>&1 < /dev/null &
  lxd waitready --timeout 60 || die "lxd did not become ready; see $LOGDIR/lxd.log"
fi
say "lxd $(lxc query /1.0 | python3 -c 'import json,sys; print(json.load(sys.stdin)["environment"]["server_version"])') answers"

# --- 3. storage pool ---------------------------------------------------------
if lxc storage show "$POOL" >/dev/null 2>&1; then
  say "pool $POOL exists ($(lxc storage get "$POOL" source 2>/dev/null || true))"
else
  if grep -qw btrfs /proc/filesystems && command -v mkfs.btrfs >/dev/null; then
    say "creating btrfs pool $POOL on a ${POOL_SIZE} loop file (enforces disk quotas)"
    lxc storage create "$POOL" btrfs size="$POOL_SIZE" >&2
  else
    say "no btrfs in this kernel: creating a dir pool $POOL (disk size quotas not enforced)"
    lxc storage create "$POOL" dir >&2
  fi
fi
# Room check: the shipped images unpack to about 1.5 GiB in the pool (debian 170 MiB, nginx 170,
# influxdb 190, mediawiki 470, mariadb 520; busybox 1) and a running MediaWiki stack writes a few
# hundred MiB more; rebuilds hold an old and a new copy for a moment. 30GiB leaves ample room.
pool_total=$(lxc query "/1.0/storage-pools/$POOL/resources" 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["space"]["total"])' 2>/dev/null || echo 0)
if (( pool_total > 0 && pool_total < 8 * 1024 ** 3 )); then
  say "warning: pool $POOL holds only $((pool_total / 1024 ** 2)) MiB; the shipped images and a stack need about 8 GiB"
fi

# --- 4. isolated bridge ------------------------------------------------------
if lxc network show "$BRIDGE" >/dev/null 2>&1; then
  say "bridge $BRIDGE exists ($(lxc network get "$BRIDGE" ipv4.address))"
else
  say "creating bridge $BRIDGE $SUBNET (no NAT, no IPv6)"
  # raw.dnsmasq no-resolv: the bridge's DNS answers container names only and
  # never forwards a query to an upstream server.
  lxc network create "$BRIDGE" ipv4.address="$SUBNET" ipv4.nat=false \
    ipv6.address=none ipv6.nat=false dns.domain=lxd raw.dnsmasq=no-resolv \
    user.lxctool.managed=true user.lxctool.isolated=true >&2
fi
# LXD's ipv4.routing=false would also cut container-to-container traffic (the
# rule sees -i BR -o BR with br_netfilter), so drop only what leaves the bridge.
ensure_drop_rule() {
  local rule=(FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP -m comment --comment "lxctool isolation $BRIDGE")
  if iptables -C "${rule[@]}" 2>/dev/null; then
    first=$(iptables -S FORWARD | sed -n 2p)
    if [[ $first != *"lxctool isolation $BRIDGE"* ]]; then
      iptables -D "${rule[@]}"; iptables -I "${rule[@]}"; say "moved isolation rule to the top of FORWARD"
    fi
  else
    iptables -I "${rule[@]}"; say "added FORWARD drop rule for traffic leaving $BRIDGE"
  fi
}
ensure_drop_rule

# --- 5. profile -------------------------------------------------------------
lxc profile show "$PROFILE" >/dev/null 2>&1 || lxc profile create "$PROFILE" >&2
lxc profile edit "$PROFILE" <<EOF
description: lxctool default - root disk on pool $POOL, NIC on $BRIDGE, unprivileged, no nesting
config:
  security.privileged: "false"
  security.nesting: "false"
devices:
  root:
    type: disk
    path: /
    pool: $POOL
  eth0:
    type: nic
    name: eth0
    network: $BRIDGE
EOF
say "profile $PROFILE in step"

# --- 6. python package -------------------------------------------------------
if [[ ! -x $VENV/bin/python ]]; then
  say "creating virtual environment $VENV"
  python3 -m venv "$VENV"
fi
stamp=$VENV/.lxctool-installed
if [[ ! -f $stamp || $REPO/pyproject.toml -nt $stamp ]]; then
  say "installing lxctool into $VENV"
  "$VENV/bin/pip" install -q --upgrade pip >&2
  # compat mode: a plain path entry; the default import-hook finder costs ~16 ms at every
  # start. setuptools calls compat mode transitional, so fall back to the default if it goes.
  "$VENV/bin/pip" install -q -e "$REPO[test]" --config-settings editable_mode=compat >&2 2>/dev/null ||
    "$VENV/bin/pip" install -q -e "$REPO[test]" >&2
  touch "$stamp"
fi
# byte-compile now: an environment with PYTHONDONTWRITEBYTECODE would otherwise recompile
# every module at every command (~40 ms of each launch)
"$VENV/bin/python" -m compileall -q "$REPO/lxctool" >/dev/null
ln -sf "$VENV/bin/lxctool" /usr/local/bin/lxctool
say "lxctool on PATH: $(command -v lxctool)"

# --- 7. default image ----------------------------------------------------------
lxctool image build busybox >&2

if ((DEMO)); then
  say "demo: launching web1 --cpu 1 --mem 512MB"
  if lxc info web1 >/dev/null 2>&1; then
    say "web1 exists already: showing it"
  else
    lxctool launch web1 --cpu 1 --mem 512MB
  fi
  lxctool info web1
  lxctool list
fi
say "done"

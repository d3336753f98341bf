#!/bin/bash
# A real N-member LXD cluster on this one machine, built the way LXD's own test suite builds one
# (test/includes/clustering.sh in canonical/lxd): every daemon gets its own LXD_DIR and its own
# network (and mount) namespace, the namespaces hang off one private bridge, and the members
# join with `lxd init --preseed`.
#
#   scripts/cluster-sandbox.sh up [N]     N members (default 3), registered as lxctool remote `sandbox`
#   scripts/cluster-sandbox.sh down       remove everything `up` made, and the remote
#   scripts/cluster-sandbox.sh status     members and PIDs
#   scripts/cluster-sandbox.sh kill M     kill -9 member M's daemon (to see how lxctool copes)
#   scripts/cluster-sandbox.sh revive M   start member M's daemon again
#
# Network safety: the bridge is private (10.252.0.0/24), has no NAT, the namespaces have no
# default route, and forwarding into or out of the bridge is dropped. Each member's own
# container bridge `lxctool0` (10.253.0.0/24, NAT off, no IPv6) lives inside its namespace.
# Containers of all members share this host's cgroup tree: give them distinct names.
# Env: LXCTOOL (the lxctool command), LXCTOOL_SANDBOX_DIR, LXCTOOL_SANDBOX_REMOTE.
set -euo pipefail

DIR=${LXCTOOL_SANDBOX_DIR:-/var/lib/lxctool-sandbox}
BRIDGE=lxcsb0
NET=10.252.0
CT_NET=10.253.0
REMOTE=${LXCTOOL_SANDBOX_REMOTE:-sandbox}
LXCTOOL=${LXCTOOL:-lxctool}

say() { echo "cluster-sandbox: $*" >&2; }
die() { say "error: $*"; exit 1; }
mdir() { echo "$DIR/m$1"; }
holder() { cat "$DIR/ns$1/PID" 2>/dev/null || true; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
mlxc() { local m=$1; shift; LXD_DIR=$(mdir "$m") lxc "$@"; }

members() {  # member numbers that have a directory
    local d
    for d in "$DIR"/m[0-9]*; do [ -d "$d" ] && echo "${d##*/m}"; done | sort -n
}

make_netns() {  # a mount + network namespace held by a sleeping process, with eth0 on the bridge
    local m=$1 ns="$DIR/ns$1"
    mkdir -p "$ns"
    # Same recipe as LXD's setup_clustering_netns: a fresh sysfs shows the namespace's own
    # network devices to LXD; the host's cgroup tree is moved back in place.
    unshare -m -n /bin/sh <<EOF
set -e
mount --move /sys /mnt
umount -l /proc
mount -t sysfs sysfs /sys
mount --move /mnt/fs/cgroup /sys/fs/cgroup
mount -t proc proc /proc
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || true
umount -l /mnt
exec 0</dev/null 1>/dev/null 2>&1
sleep infinity &
echo \$! > "$ns/PID"
EOF
    local pid
    pid=$(holder "$m")
    readlink "/proc/$pid/ns/net" > "$ns/netns"
    ip link add "vsb${m}h" type veth peer name "vsb${m}c"
    ip link set "vsb${m}c" netns "$pid"
    ip link set "vsb${m}h" master "$BRIDGE" up
    nsenter -n -t "$pid" /bin/sh -c "set -e; ip link set lo up; ip link set vsb${m}c name eth0;
        ip link set eth0 up; ip addr add $NET.1$m/24 dev eth0"
}

spawn() {  # start member m's daemon inside its namespaces; wait until it answers
    local m=$1 d pid
    d=$(mdir "$m")
    pid=$(holder "$m")
    alive "$pid" || die "namespace holder of member $m is gone; run: $0 down"
    LXD_DIR=$d nsenter -n -m -t "$pid" lxd --group root --logfile "$d/lxd.log" </dev/null >>"$d/lxd.out" 2>&1 &
    echo $! > "$d/lxd.pid"
    LXD_DIR=$d timeout 90 lxd waitready --timeout 80 || die "member $m did not start; see $d/lxd.log"
}

up() {
    local n=${1:-3} m token cert
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 9 ] || { say "N: '$n' must be 1 to 9"; exit 2; }
    [ ! -e "$DIR" ] || die "$DIR exists: a sandbox is up already (or half made); run: $0 down"
    lxc image info busybox >/dev/null 2>&1 || die "the host daemon has no busybox image; run scripts/setup-host.sh"
    ip -4 addr | grep -q " $NET\." && die "$NET.0/24 is in use on this host"
    mkdir -p "$DIR"
    chmod 711 "$DIR"  # containers' unprivileged root must traverse it
    say "bridge $BRIDGE $NET.1/24 (private: no NAT, forwarding in or out dropped)"
    ip link add "$BRIDGE" type bridge
    ip addr add "$NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    iptables -w -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
    iptables -w -I FORWARD -o "$BRIDGE" ! -i "$BRIDGE" -j DROP
    touch "$DIR/iptables"
    lxc image export busybox "$DIR/busybox" >/dev/null
    for m in $(seq 1 "$n"); do
        mkdir -p "$(mdir "$m")"
        make_netns "$m"
        spawn "$m"
        if [ "$m" = 1 ]; then
            say "member1: bootstrap the cluster"
            lxd_init 1 <<EOF
config:
  core.https_address: $NET.11:8443
  images.auto_update_interval: 0
storage_pools:
- name: lxctool
  driver: dir
networks:
- name: lxctool0
  type: bridge
  config:
    ipv4.address: $CT_NET.1/24
    ipv4.nat: "false"
    ipv6.address: none
    raw.dnsmasq: no-resolv
    user.lxctool.managed: "true"
profiles:
- name: default
  devices:
    root: {path: /, pool: lxctool, type: disk}
cluster:
  server_name: member1
  enabled: true
EOF
        else
            say "member$m: join"
            token=$(mlxc 1 cluster add "member$m" --quiet)
            cert=$(sed 's/^/    /' "$(mdir 1)/cluster.crt")
            lxd_init "$m" <<EOF
cluster:
  enabled: true
  server_name: member$m
  server_address: $NET.1$m:8443
  cluster_address: $NET.11:8443
  cluster_token: $token
  cluster_certificate: |
$cert
  member_config:
  - entity: storage-pool
    name: lxctool
    key: source
    value: ""
EOF
        fi
    done
    # a killed member shows as offline after ~11 s instead of 20 (set once clustered: a lone
    # 5.0.2 daemon drops the connection on this key)
    mlxc 1 config set cluster.offline_threshold 11 || say "warning: could not lower cluster.offline_threshold"
    say "profile lxctool, image busybox (cluster-wide)"
    lxc profile show lxctool | sed '/^used_by:/,$d' | mlxc 1 profile create lxctool >/dev/null 2>&1 || true
    lxc profile show lxctool | sed '/^used_by:/,$d' | mlxc 1 profile edit lxctool
    mlxc 1 image import "$DIR"/busybox* --alias busybox >/dev/null
    say "register lxctool remote $REMOTE"
    token=$(mlxc 1 config trust add --name "lxctool-$REMOTE" | tail -1)
    "$LXCTOOL" remote remove "$REMOTE" >/dev/null 2>&1 || true
    "$LXCTOOL" remote add "$REMOTE" "https://$NET.11:8443" --token "$token" --accept-certificate
    touch "$DIR/remote"
    mlxc 1 cluster list >&2
}

lxd_init() {  # member $1: lxd init --preseed from stdin
    LXD_DIR=$(mdir "$1") lxd init --preseed || die "member $1: lxd init --preseed failed; see $(mdir "$1")/lxd.log"
}

netns_pids() {  # PIDs in member m's network namespace (dnsmasq, forkdns... that LXD started there)
    local want p
    want=$(cat "$DIR/ns$1/netns" 2>/dev/null) || return 0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$want" ] && echo "${p#/proc/}"
    done
    return 0
}

delete_containers() {  # member m deletes the containers it runs (while every member is up)
    local m=$1 d pid name
    d=$(mdir "$m")
    pid=$(cat "$d/lxd.pid" 2>/dev/null || true)
    [ -S "$d/unix.socket" ] && alive "$pid" || return 0
    # containers first, so no payload cgroup or monitor process outlives the sandbox
    for name in $(LXD_DIR=$d timeout 30 lxc list --format csv -c nL 2>/dev/null |
                  awk -F, -v me="member$m" '$2==me {print $1}'); do
        LXD_DIR=$d timeout 60 lxc delete --force "$name" >/dev/null 2>&1 || say "member$m: could not delete $name"
    done
}

stop_member() {
    local m=$1 d pid i
    d=$(mdir "$m")
    pid=$(cat "$d/lxd.pid" 2>/dev/null || true)
    if alive "$pid"; then
        LXD_DIR=$d timeout 20 lxd shutdown >/dev/null 2>&1 || true
        for i in $(seq 25); do alive "$pid" || break; sleep 0.2; done
        alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    fi
    for i in $(netns_pids "$m"); do kill -9 "$i" 2>/dev/null || true; done
}

down() {
    local m d pid
    [ -d "$DIR" ] || { say "no sandbox at $DIR"; "$LXCTOOL" remote remove "$REMOTE" >/dev/null 2>&1 || true; return 0; }
    # a killed member cannot delete its containers: start it again first (as LXD's tests respawn)
    for m in $(members); do
        pid=$(cat "$(mdir "$m")/lxd.pid" 2>/dev/null || true)
        if ! alive "$pid" && alive "$(holder "$m")"; then
            say "member$m: daemon not running; starting it to clean up"
            (spawn "$m") || say "member$m: could not be started; its containers may be left"
        fi
    done
    for m in $(members); do delete_containers "$m" & done
    wait
    for m in $(members); do stop_member "$m" & done  # in parallel: each waits for its own daemon
    wait
    for m in $(members); do
        pid=$(holder "$m")
        alive "$pid" && kill -9 "$pid"
        ip link del "vsb${m}h" 2>/dev/null || true
    done
    if [ -e "$DIR/iptables" ]; then
        iptables -w -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null || true
        iptables -w -D FORWARD -o "$BRIDGE" ! -i "$BRIDGE" -j DROP 2>/dev/null || true
    fi
    ip link del "$BRIDGE" 2>/dev/null || true
    "$LXCTOOL" remote remove "$REMOTE" >/dev/null 2>&1 || true
    # the daemons' mounts lived in their own mount namespaces, gone with them
    rm -rf "$DIR"
    say "sandbox removed"
}

status() {
    local m pid
    for m in $(members); do
        pid=$(cat "$(mdir "$m")/lxd.pid" 2>/dev/null || true)
        echo "member$m pid=${pid:-none} $(alive "$pid" && echo running || echo stopped)"
    done
}

case "${1:-}" in
    up) up "${2:-3}" ;;
    down) down ;;
    status) status ;;
    kill) pid=$(cat "$(mdir "${2:?member number}")/lxd.pid"); kill -9 "$pid"; say "member${2} daemon (PID $pid) killed" ;;
    revive) spawn "${2:?member number}"; say "member${2} daemon started again" ;;
    *) echo "usage: $0 up [N] | down | status | kill M | revive M" >&2; exit 2 ;;
esac

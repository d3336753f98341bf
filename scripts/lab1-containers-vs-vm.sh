#!/usr/bin/env bash
# Lab 1: containers vs the VM they run in.
#   1. processes: what the VM (this host) sees and what a container sees, and why;
#   2. addresses: each container's private IPv4, and how the bridge connects them;
#   3. limits: which resources limits.* can limit, each set live and shown in the kernel.
# Every answer is measured, printed beside its explanation, and checked: the lab fails when it
# cannot show its point. It removes everything it created, also when it fails or is interrupted.
# Needs: scripts/setup-host.sh done (LXD running, bridge lxctool0, image busybox). About 30 s.
set -euo pipefail

LXCTOOL=${LXCTOOL:-lxctool}
RUN="lab-$(printf '%04x%04x' $RANDOM $RANDOM)"
A="$RUN-a"
B="$RUN-b"
TMP=$(mktemp -d /tmp/lxctool-lab1.XXXXXX)

cleanup() {
  local rc=$?
  "$LXCTOOL" delete "$A" "$B" >/dev/null 2>&1 || true
  rm -rf "$TMP"
  [[ $rc -eq 0 ]] && echo && echo "lab1: done; removed $A and $B"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "lab1: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

# shellcheck source=scripts/lab-common.sh
source "$(dirname "$0")/lab-common.sh"
py() { python3 -c "$1" "${@:2}"; }      # small JSON look-ups (stdin)
ge() { py 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$1" "$2"; }
le() { ge "$2" "$1"; }

section "setting up two containers on the lxctool0 bridge"
"$LXCTOOL" launch "$A" >/dev/null
"$LXCTOOL" launch "$B" >/dev/null
answer "launched $A and $B (busybox)"

# ---------------------------------------------------------------------------------------------
section "1. processes: the VM sees every container's processes; a container sees only its own"
host_procs=$(ps -e --no-headers | wc -l)
"$LXCTOOL" exec "$A" -- ps -o pid,comm > "$TMP/ps-a"
inside=$(awk 'NR > 1 && $2 != "ps"' "$TMP/ps-a" | wc -l)
answer "host (the VM): ps -e shows $host_procs processes"
answer "container $A: ps shows $inside processes:"
sed 's/^/        /' "$TMP/ps-a"
explain "A container is not a VM: there is no second kernel and no emulated hardware. Its" \
        "processes are ordinary host processes placed in their own PID namespace, so inside" \
        "it PID 1 is the container's init and the host's other processes do not exist."
check "the container sees far fewer processes than the host" le $((inside * 5)) "$host_procs"
check "PID 1 inside the container is its init" grep -Eq '^ *1 +init' "$TMP/ps-a"

init_pid=$("$LXCTOOL" info "$A" --format json | py 'import json,sys; print(json.load(sys.stdin)["pid"])')
nspid=$(awk '/^NSpid:/ {print $2 "->" $NF}' "/proc/$init_pid/status")
answer "the same init seen from the host: PID $init_pid (NSpid host->container: $nspid)"
check "the container's init is a host process that is PID 1 in its namespace" \
      test "${nspid##*->}" = 1
"$LXCTOOL" compare "$A" --explain > "$TMP/compare" 2>/dev/null
grep -E "^- Processes:" "$TMP/compare" | fold -s -w 96 | sed 's/^/    /'
kernel_in=$("$LXCTOOL" exec "$A" -- uname -r)
answer "kernel: host $(uname -r), inside $A $kernel_in"
explain "Same kernel release inside and outside: containers share the VM's kernel; a VM would boot its own."
check "the container runs on the host's kernel" test "$kernel_in" = "$(uname -r)"

# ---------------------------------------------------------------------------------------------
section "2. addresses: each container has its own private IPv4 on the bridge"
"$LXCTOOL" list --format json > "$TMP/list"
ip_of() { py 'import json,sys; print([r for r in json.load(sys.stdin) if r["name"] == sys.argv[1]][0]["ipv4"][0])' "$1" < "$TMP/list"; }
ip_a=$(ip_of "$A"); ip_b=$(ip_of "$B")
bridge_cidr=$(ip -4 -o addr show dev lxctool0 | awk '{print $4}')
answer "$A: $ip_a    $B: $ip_b    bridge lxctool0 (the host's side): $bridge_cidr"
in_subnet() { py 'import ipaddress,sys; sys.exit(0 if ipaddress.ip_address(sys.argv[1]) in ipaddress.ip_interface(sys.argv[2]).network else 1)' "$1" "$2"; }
check "both addresses are private, in the bridge's subnet" in_subnet "$ip_a" "$bridge_cidr"
check "$B's address too" in_subnet "$ip_b" "$bridge_cidr"
check "each container has its own address" test "$ip_a" != "$ip_b"
for c in "$A" "$B"; do
  veth=$("$LXCTOOL" info "$c" --format json | py 'import json,sys; print(json.load(sys.stdin)["host_veth"])')
  master=$(basename "$(readlink "/sys/class/net/$veth/master")")
  answer "$c's eth0 is one end of a veth pair; the host end $veth is plugged into bridge $master"
  check "$c's veth is a port of lxctool0" test "$master" = lxctool0
done
route=$("$LXCTOOL" exec "$A" -- ip route | awk '/^default/ {print $3}')
answer "$A's default route goes via $route (the bridge's own address on the host)"
check "the bridge is the containers' gateway" test "$route" = "${bridge_cidr%/*}"
explain "The bridge is a virtual switch in the host kernel: frames between $A and $B cross it" \
        "without leaving the VM. lxctool's bridge has NAT off and a firewall rule that drops" \
        "anything forwarded out of it, so the containers reach each other and the host only."
"$LXCTOOL" exec "$A" -- ping -c 2 -W 2 "$ip_b" > "$TMP/ping"
answer "$A -> $B: $(grep -E 'packets transmitted' "$TMP/ping")"
check "the containers reach each other across the bridge" grep -q ' 0% packet loss' "$TMP/ping"

# ---------------------------------------------------------------------------------------------
section "3. limits: what limits.* can limit, set live on $A and read back from the kernel"
"$LXCTOOL" limits "$A" --cpu 0.5 --mem 128MB --no-swap --processes 40 --disk-read 20MB \
  --disk-write 20MB --net-in 20Mbit > /dev/null
"$LXCTOOL" info "$A" --format json > "$TMP/info"
eff() { py 'import json,sys; r=[r for r in json.load(sys.stdin)["limits"] if r["limit"] == sys.argv[1]][0]; print(r["effective_text"] + "  <- " + str(r["source"]))' "$1" < "$TMP/info"; }
for key in limits.cpu.allowance limits.memory limits.processes root.limits.read root.limits.write eth0.limits.ingress; do
  answer "$(printf '%-22s' "$key") $(eff "$key")"
done
explain "Each limit is a kernel mechanism the host applies to the container's processes:" \
        "CPU quota (cgroup cpu.cfs_quota_us), memory (memory.limit_in_bytes), processes (pids.max)," \
        "disk throughput (blkio throttle on the pool's device), network (tc on the host-side veth)." \
        "Changed live: no restart, the cgroup files change under the running processes."
P=/sys/fs/cgroup
check "CPU quota 0.5 CPU in the kernel" grep -qx 50000 "$P/cpu/lxc.payload.$A/cpu.cfs_quota_us"
check "memory limit 128MB in the kernel" grep -qx 128000000 "$P/memory/lxc.payload.$A/memory.limit_in_bytes"
check "process limit 40 in the kernel" grep -qx 40 "$P/pids/lxc.payload.$A/pids.max"
check "disk read limit in the blkio throttle" grep -q ' 20000000$' "$P/blkio/lxc.payload.$A/blkio.throttle.read_bps_device"
veth_a=$("$LXCTOOL" info "$A" --format json | py 'import json,sys; print(json.load(sys.stdin)["host_veth"])')
check "network limit as an htb class on $veth_a" sh -c "tc class show dev $veth_a | grep -q 'rate 20Mbit'"

answer "live: two busy loops in $A while compare measures it"
"$LXCTOOL" exec "$A" -- sh -c 'for i in 1 2; do timeout 5 sh -c "while :; do :; done" & done; wait' &
burn=$!
sleep 1
"$LXCTOOL" compare "$A" --interval 2 --format json 2>/dev/null > "$TMP/cmp"
wait "$burn" || true
cpu=$(py 'import json,sys; print([r for r in json.load(sys.stdin) if r["name"] == sys.argv[1]][0]["cpu_percent"])' "$A" < "$TMP/cmp")
answer "$A used $cpu% of one CPU with 2 loops that could use 200%"
explain "The CFS quota lets it run 50 ms in every 100 ms period, however many CPUs are idle."
check "CPU use held at the 0.5 CPU quota" le "$cpu" 53
check "...and the loops really ran" ge "$cpu" 25

#!/usr/bin/env bash
# Lab 2: set each limit, prove it with `lxctool verify`, and watch `lxctool compare` while a
# workload runs into it. CPU, memory, processes, disk I/O, disk size, network.
# Every answer is measured, printed beside its explanation, and checked: the lab fails when it
# cannot show its point. It removes everything it created, also when it fails or is interrupted.
# Needs: scripts/setup-host.sh done (LXD running, bridge lxctool0, image busybox). About 60 s.
set -euo pipefail

LXCTOOL=${LXCTOOL:-lxctool}
C="lab-$(printf '%04x%04x' $RANDOM $RANDOM)-limits"
TMP=$(mktemp -d /tmp/lxctool-lab2.XXXXXX)

cleanup() {
  local rc=$?
  "$LXCTOOL" delete "$C" >/dev/null 2>&1 || true
  rm -rf "$TMP"
  [[ $rc -eq 0 ]] && echo && echo "lab2: done; removed $C"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "lab2: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

# shellcheck source=scripts/lab-common.sh
source "$(dirname "$0")/lab-common.sh"
py() { python3 -c "$1" "${@:2}"; }
ge() { py 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$1" "$2"; }
le() { ge "$2" "$1"; }

verify() {  # verify KIND: run lxctool verify --only KIND; show the rows; keep the JSON
  local kind=$1; shift
  local rc=0
  "$LXCTOOL" verify "$C" --only "$kind" --format json "$@" > "$TMP/$kind.json" 2> "$TMP/$kind.err" || rc=$?
  py 'import json,sys
for r in json.load(sys.stdin)["findings"]:
    print("  > verify %s=%s: measured %s" % (r["limit"], r["configured"], r["measured"]))
    print("           evidence: %s" % r["evidence"])
    print("           verdict: %s" % r["verdict"])' < "$TMP/$kind.json"
  return $rc
}
verdicts() { py 'import json,sys; print(" ".join(sorted({r["verdict"] for r in json.load(sys.stdin)["findings"]})))' < "$TMP/$1.json"; }
compare_field() {  # compare_field FIELD: one sample of compare for the container
  "$LXCTOOL" compare "$C" --interval "${2:-1}" --format json 2>/dev/null |
    py 'import json,sys; print([r for r in json.load(sys.stdin) if r["name"] == sys.argv[1]][0][sys.argv[2]])' "$C" "$1"
}

section "a container with no limits yet"
"$LXCTOOL" launch "$C" >/dev/null
answer "launched $C"

# ---------------------------------------------------------------------------------------------
section "CPU: a hard quota of 0.25 CPU"
"$LXCTOOL" limits "$C" --cpu 0.25 >/dev/null
explain "--cpu 0.25 sets limits.cpu.allowance=25ms/100ms: a CFS quota, enforced even on an idle host." \
        "(--cpu-allowance 25% would only be a share: it weighs the container against busy neighbours.)"
verify cpu --duration 3 || true
check "verify proves the quota" test "$(verdicts cpu)" = ENFORCED
"$LXCTOOL" exec "$C" -- sh -c 'for i in 1 2; do timeout 4 sh -c "while :; do :; done" & done; wait' &
sleep 1
cpu=$(compare_field cpu_percent 2)
of_limit=$(compare_field cpu_percent_of_limit 1)
wait
answer "compare while 2 busy loops run: $cpu% of one CPU ($of_limit% of its limit)"
check "compare sees the container pinned at its quota" le "$cpu" 27
check "...while the loops are really running" ge "$cpu" 15

# ---------------------------------------------------------------------------------------------
section "memory: 64MB without swap"
"$LXCTOOL" limits "$C" --mem 64MB --no-swap >/dev/null
explain "The memory cgroup charges every page the container uses; at the limit the kernel first" \
        "reclaims cache, then the OOM killer ends the biggest process in the container only."
verify memory || true
check "verify proves the limit (peak held, OOM kill counted)" test "$(verdicts memory)" = ENFORCED
peak=$(compare_field memory_peak_bytes)
answer "compare afterwards: memory peak $peak B against a limit of 64000000 B"
check "compare's peak never went over the limit" le "$peak" 64000000

# ---------------------------------------------------------------------------------------------
section "processes: at most 30"
"$LXCTOOL" limits "$C" --processes 30 >/dev/null
explain "pids.max counts every task in the container's cgroup (init included); fork() fails at the limit:" \
        "a fork bomb inside cannot take the VM's process table with it."
verify processes || true
check "verify proves the limit (fork refused, pids.events max rose)" test "$(verdicts processes)" = ENFORCED
# in the background (its own session, output to /dev/null) so exec returns at once; the loop's
# shell dies at the refused fork, and its EXIT trap waits (a builtin: no fork) so it still counts
"$LXCTOOL" exec "$C" -- sh -c 'setsid sh -c "trap wait EXIT; i=0; while [ \$i -lt 60 ]; do sleep 6 & i=\$((i+1)); done" </dev/null >/dev/null 2>&1 &'
sleep 1
tasks=$(compare_field tasks)
answer "compare while a loop tries to start 60 sleepers: $tasks tasks"
check "compare shows the count stopped at 30" test "$tasks" = 30
sleep 6   # the sleepers end by themselves

# ---------------------------------------------------------------------------------------------
section "disk I/O: 10MB/s read and write on the root disk"
"$LXCTOOL" limits "$C" --disk-read 10MB --disk-write 10MB >/dev/null
explain "blkio throttles the pool's block device for this cgroup. Direct I/O is throttled; buffered" \
        "writes are written back later by the kernel on nobody's account (cgroup v1), so verify uses O_DIRECT."
verify disk-io --duration 2 || true
check "verify proves both directions within 15%" test "$(verdicts disk-io)" = ENFORCED

# ---------------------------------------------------------------------------------------------
section "disk size: a 64MB root disk"
driver=$(lxc storage show lxctool 2>/dev/null | awk '/^driver:/ {print $2}')
"$LXCTOOL" limits "$C" --disk 64MB >/dev/null 2>&1 || true
explain "The root disk's size is kept by the storage pool ($driver), not by a cgroup:" \
        "btrfs, zfs and lvm enforce it; a dir pool accepts the key and ignores it."
rc=0; verify disk-size || rc=$?
if [[ $driver == btrfs || $driver == zfs || $driver == lvm ]]; then
  check "verify proves the quota stops the write" test "$(verdicts disk-size)" = ENFORCED
else
  check "verify reports the pool cannot enforce it (exit 3)" test "$rc" = 3
fi

# ---------------------------------------------------------------------------------------------
section "network: 20Mbit into the container, 10Mbit out of it"
"$LXCTOOL" limits "$C" --net-in 20Mbit --net-out 10Mbit >/dev/null
explain "Into the container: an htb class on the host end of its veth. Out of it: LXD's limits.egress" \
        "needs the tc police action this kernel lacks, so lxctool redirects the veth's ingress to an" \
        "IFB device and shapes it there. verify streams to and from a temporary peer container."
verify net --duration 2 || true
check "verify proves both directions within 15%" test "$(verdicts net)" = ENFORCED
peer=$(sed -n 's/.*starting peer container \([^ ]*\).*/\1/p' "$TMP/net.err")
answer "verify's peer container was $peer"
check "the temporary peer container is gone" sh -c "! lxc info '$peer' >/dev/null 2>&1"

section "what is left in $C"
"$LXCTOOL" exec "$C" -- ps -o pid,comm > "$TMP/ps"
sed 's/^/        /' "$TMP/ps"
check "no workload left behind" test "$(awk 'NR > 1 && $2 != "ps"' "$TMP/ps" | wc -l)" -le 2

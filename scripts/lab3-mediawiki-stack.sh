#!/usr/bin/env bash
# Lab 3: the lab's MediaWiki application as a stack of LXD system containers
# (examples/mediawiki/stack.yaml: an nginx load balancer, two MediaWiki replicas, one MariaDB,
# InfluxDB fed by the stack's monitor), brought up with one command and taken apart again.
#   1. up, ps, and a plan that is empty once the stack matches its file;
#   2. processes per service against the host (the VM);
#   3. where each request went through the balancer (X-Served-By over N requests);
#   4. what survives recreating the web tier: a page written through the API;
#   5. a live limit change (the init PID stays), every limit proven with verify -f;
#   6. the monitor's samples in InfluxDB; down, and what it keeps.
# Every answer is measured, printed beside its explanation, and checked: the lab fails when it
# cannot show its point. It removes everything it created (containers, network, volume, secrets),
# also when it fails or is interrupted.
# Needs: scripts/setup-host.sh done, 127.0.0.1:8080 free, 10.77.10.0/24 unused. The images are
# built on the first run (minutes); after that about 2 minutes.
set -euo pipefail

LXCTOOL=${LXCTOOL:-lxctool}
HERE=$(cd "$(dirname "$0")" && pwd)
STACK_NAME="lab-$(printf '%04x%04x' $RANDOM $RANDOM)"
TMP=$(mktemp -d /tmp/lxctool-lab3.XXXXXX)
F="$TMP/stack.yaml"
URL=http://127.0.0.1:8080
N=10   # requests through the balancer

cleanup() {
  local rc=$?
  "$LXCTOOL" down -f "$F" --volumes >/dev/null 2>&1 || true
  rm -rf "$TMP"
  [[ $rc -eq 0 ]] && echo && echo "lab3: done; removed stack $STACK_NAME (containers, network, volume, secrets)"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "lab3: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

# shellcheck source=scripts/lab-common.sh
source "$HERE/lab-common.sh"
py() { python3 -c "$1" "${@:2}"; }
ge() { py 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$1" "$2"; }
le() { ge "$2" "$1"; }
now() { date +%s.%N; }
since() { py 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$(now)"; }
curl() { command curl --noproxy '*' "$@"; }   # only loopback and the stack's own containers
c() { echo "$STACK_NAME-$1"; }   # container of SERVICE-N: the stack's naming rule
served_by() { curl -s -o /dev/null -D - "$1" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-served-by" {print $2}'; }
init_pid() { "$LXCTOOL" info "$1" --format json | py 'import json,sys; print(json.load(sys.stdin)["pid"])'; }
plan_kinds() {  # plan_kinds: "kind target" per op of `plan -f --format json`
  "$LXCTOOL" plan -f "$F" --format json 2>/dev/null |
    py 'import json,sys; [print(o["kind"], o["target"]) for o in json.load(sys.stdin)]'
}

# the lab's own copy of the example: its own name, so it never touches a stack of yours
cp "$HERE/../examples/mediawiki/"* "$TMP/"
sed -i "s/^name: mediawiki$/name: $STACK_NAME/" "$F"
check "the copy carries the lab's own stack name" grep -q "^name: $STACK_NAME$" "$F"

# ---------------------------------------------------------------------------------------------
section "1. up: one command for five containers, in dependency order"
explain "database (MariaDB, data on a volume) -> web x2 (MediaWiki, installed once) -> loadbalancer" \
        "(nginx, published on $URL); metrics (InfluxDB) beside them. Secrets are generated and never" \
        "written into LXD's config."
t0=$(now)
"$LXCTOOL" up -f "$F" > /dev/null 2> "$TMP/up.err" || { tail -20 "$TMP/up.err" >&2; false; }   # ps shows more
answer "up took $(since "$t0") s"
"$LXCTOOL" ps -f "$F"
"$LXCTOOL" ps -f "$F" --format json > "$TMP/ps.json"
py 'import json,sys
rows = json.load(sys.stdin)
rows = rows["services"] if isinstance(rows, dict) else rows   # the replicas; "monitor" beside them
print(len(rows), " ".join(sorted(str(r.get("health")) for r in rows)))' < "$TMP/ps.json" > "$TMP/ps.sum"
check "ps shows 5 containers, all healthy" grep -qx "5 healthy healthy healthy healthy healthy" "$TMP/ps.sum"
secrets_env=/var/lib/lxctool/stacks/$STACK_NAME/secrets.env
check "up generated the secrets once, kept mode 0600" test "$(stat -c %a "$secrets_env")" = 600
for name in $(c database-1) $(c web-1) $(c web-2); do lxc config show "$name"; done > "$TMP/config"
cut -d= -f2- "$secrets_env" | grep -v '^#' | sed '/^$/d' > "$TMP/secret-values"
check "no secret value in the containers' LXD config" sh -c "! grep -qFf '$TMP/secret-values' '$TMP/config'"

plan_kinds > "$TMP/plan"
check "...nor in what plan prints" sh -c "! '$LXCTOOL' plan -f '$F' 2>&1 | grep -qFf '$TMP/secret-values'"
answer "plan right after up: $(cut -d' ' -f1 "$TMP/plan" | sort | uniq -c | xargs)"
explain "The stack matches its file, so plan has nothing to do: a second up would write nothing."
check "plan is empty (noop only)" test -z "$(grep -v '^noop ' "$TMP/plan" || true)"

# ---------------------------------------------------------------------------------------------
section "2. processes: each service is a handful of processes; the VM runs them all"
"$LXCTOOL" compare $(c database-1) $(c web-1) $(c web-2) $(c loadbalancer-1) $(c metrics-1) \
  --interval 1 --format json 2>/dev/null > "$TMP/compare.json"
py 'import json,sys
for r in json.load(sys.stdin):
    print("%-28s %4d processes %4d tasks" % (r["name"], r["processes"], r["tasks"]))' < "$TMP/compare.json" |
  sed 's/^/  > /'
host_procs=$(py 'import json,sys; print([r for r in json.load(sys.stdin) if r["kind"] == "host"][0]["processes"])' < "$TMP/compare.json")
in_stack=$(py 'import json,sys; print(sum(r["processes"] for r in json.load(sys.stdin) if r["kind"] != "host"))' < "$TMP/compare.json")
explain "Each container runs one service plus its systemd: the service-oriented design of the lab's" \
        "docker-compose file, with system containers. Seen from the host every one of those is an" \
        "ordinary process; tasks (threads) are what limits.processes counts: MariaDB's threads show there."
check "the host runs more processes than the whole stack ($host_procs > $in_stack)" test "$host_procs" -gt "$in_stack"
check "MariaDB's threads: more tasks than processes in the database" \
  py 'import json,sys; r=[r for r in json.load(sys.stdin) if r["name"] == sys.argv[1]][0]; sys.exit(0 if r["tasks"] > r["processes"] else 1)' \
  "$(c database-1)" < "$TMP/compare.json"

# ---------------------------------------------------------------------------------------------
section "3. the balancer: where did each of $N requests go?"
for _ in $(seq "$N"); do served_by "$URL/"; done > "$TMP/served"
sort "$TMP/served" | uniq -c | sed 's/^ */  > /'
a=$(grep -cx "$(c web-1)" "$TMP/served" || true); b=$(grep -cx "$(c web-2)" "$TMP/served" || true)
explain "nginx's upstream sends requests round-robin; each replica names itself in X-Served-By."
check "both replicas answered, in turn ($a / $b of $N)" \
  py 'import sys; a, b, n = map(int, sys.argv[1:]); sys.exit(0 if a + b == n and abs(a - b) <= 1 else 1)' "$a" "$b" "$N"

# ---------------------------------------------------------------------------------------------
section "4. state: a page written on one replica, read on the other, kept when the web tier goes"
text="written by lab3 at $(date -u +%FT%TZ)"
token=$(curl -s "$URL/api.php?action=query&meta=tokens&format=json" | py 'import json,sys; print(json.load(sys.stdin)["query"]["tokens"]["csrftoken"])')
curl -s -D "$TMP/edit.h" -X POST "$URL/api.php" --data-urlencode action=edit --data-urlencode title=Lab3 \
  --data-urlencode "text=$text" --data-urlencode "token=$token" --data-urlencode format=json > "$TMP/edit.json"
writer=$(tr -d '\r' < "$TMP/edit.h" | awk -F': ' 'tolower($1) == "x-served-by" {print $2}')
answer "API edit of page Lab3 answered by $writer: $(cat "$TMP/edit.json")"
check "the edit succeeded (anonymous editing through the API)" grep -q '"result":"Success"' "$TMP/edit.json"
read_back() {  # read_back: the page through the balancer until each replica has served it
  local seen="" i out who
  for i in 1 2 3 4; do
    out=$(curl -s -D "$TMP/read.h" "$URL/index.php?title=Lab3&action=raw")
    who=$(tr -d '\r' < "$TMP/read.h" | awk -F': ' 'tolower($1) == "x-served-by" {print $2}')
    [[ $out == "$text" ]] && seen="$seen $who"
  done
  echo "$seen" | tr ' ' '\n' | sed '/^$/d' | sort -u | xargs
}
readers=$(read_back)
answer "read back unchanged from: $readers"
check "both replicas serve the page (one database behind them)" test "$readers" = "$(c web-1) $(c web-2)"

pid_before=$(init_pid "$(c web-1)")
"$LXCTOOL" delete "$(c web-1)" "$(c web-2)" >/dev/null 2>&1
plan_kinds > "$TMP/plan2"
answer "after deleting both web containers, plan: $(grep -v '^noop ' "$TMP/plan2" | xargs)"
check "plan creates exactly the two web replicas" \
  test "$(grep -v '^noop ' "$TMP/plan2" | grep -c "^create $STACK_NAME-web-" || true)" = 2
t0=$(now)
"$LXCTOOL" up -f "$F" > /dev/null 2> "$TMP/up2.err" || { tail -20 "$TMP/up2.err" >&2; false; }
answer "web tier recreated in $(since "$t0") s; web-1's init PID $pid_before -> $(init_pid "$(c web-1)")"
readers=$(read_back)
explain "The web containers are stateless: the page lives in MariaDB, whose data is on a volume." \
        "The new replicas found the schema installed and only put the shared LocalSettings.php in place."
check "the page survived recreating the web tier, served by both new replicas" \
  test "$readers" = "$(c web-1) $(c web-2)"

# ---------------------------------------------------------------------------------------------
section "5. a live limit change, then every limit proven"
sed -i 's/mem: 384MB, processes: 150/mem: 256MB, processes: 150/' "$F"
check "the lab's copy now gives web 256MB" grep -q "mem: 256MB, processes: 150" "$F"
plan_kinds > "$TMP/plan3"
answer "plan: $(grep -v '^noop ' "$TMP/plan3" | xargs)"
check "two update-live ops (the web replicas), nothing else" \
  test "$(grep -v '^noop ' "$TMP/plan3" | sort | xargs)" = "update-live $(c web-1) update-live $(c web-2)"
pid_before=$(init_pid "$(c web-2)")
"$LXCTOOL" up -f "$F" > /dev/null 2> "$TMP/up3.err" || { tail -20 "$TMP/up3.err" >&2; false; }
pid_after=$(init_pid "$(c web-2)")
kernel=$("$LXCTOOL" info "$(c web-2)" --format json |
  py 'import json,sys; print([l["effective"] for l in json.load(sys.stdin)["limits"] if l["limit"] == "limits.memory"][0])')
answer "$(c web-2): memory limit in the kernel $kernel B; init PID $pid_before -> $pid_after"
check "the kernel enforces the new limit" test "$kernel" = 256000000
check "...without a restart (same init PID)" test "$pid_before" = "$pid_after"

rc=0; "$LXCTOOL" verify -f "$F" --format json > "$TMP/verify.json" 2> "$TMP/verify.err" || rc=$?
py 'import json,sys
def rows(x):
    if isinstance(x, dict):
        if "verdict" in x: yield x
        else:
            for v in x.values(): yield from rows(v)
    elif isinstance(x, list):
        for v in x: yield from rows(v)
found = list(rows(json.load(sys.stdin)))
for r in found:
    print("  > %-28s %-22s %-12s %s" % (r.get("name", ""), r["limit"], r["configured"], r["verdict"]))
    if r["verdict"] != "ENFORCED":  # say why: on a busy host a probe can fail to reach its limit
        print("      evidence: %s" % r.get("evidence", ""))
print(len(found), " ".join(sorted({r["verdict"] for r in found})), file=open(sys.argv[1], "w"))' "$TMP/verdicts" < "$TMP/verify.json"
answer "verify -f: $(cat "$TMP/verdicts") (exit $rc)"
check "verify proves every limit of every service (3 limits x 5 containers)" \
  test "$(cat "$TMP/verdicts") $rc" = "15 ENFORCED 0"
check "the wiki still answers after the probes" test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")" = 200

# ---------------------------------------------------------------------------------------------
section "6. monitoring, then down"
metrics_ip=$("$LXCTOOL" info "$(c metrics-1)" --format json | py 'import json,sys; print(json.load(sys.stdin)["ipv4"][0])')
sleep 6   # at least one monitor interval (5 s) since the last recreate
curl -s -G "http://$metrics_ip:8086/query" --data-urlencode db=lxd \
  --data-urlencode 'q=SELECT count(memory_bytes) FROM lxctool WHERE time > now() - 10m GROUP BY "name"' > "$TMP/influx.json"
py 'import json,sys
for s in json.load(sys.stdin)["results"][0].get("series", []):
    print("  > %-28s %s samples" % (s["tags"]["name"], s["values"][0][1]))' < "$TMP/influx.json"
explain "The stack's monitor (lxctool monitor, started by up) plays Telegraf's part: it samples every" \
        "container from the host and writes to the metrics service over the private network."
for s in database-1 web-1 web-2 loadbalancer-1 metrics-1; do
  check "InfluxDB holds samples of $(c $s)" grep -q "\"$(c $s)\"" "$TMP/influx.json"
done

"$LXCTOOL" down -f "$F" 2>/dev/null
left=$(lxc list -c n --format csv | grep -c "^$STACK_NAME-" || true)
answer "after down: $left containers of the stack; volumes: $(lxc storage volume list lxctool --format csv | grep -o "$STACK_NAME-[a-z-]*" | xargs)"
check "down removed every container" test "$left" = 0
check "down kept the database volume (down --volumes would drop it)" \
  sh -c "lxc storage volume list lxctool --format csv | grep -q '$STACK_NAME-db-data'"

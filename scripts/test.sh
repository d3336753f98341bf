#!/usr/bin/env bash
# Run the test suite. Extra arguments go to pytest, e.g. scripts/test.sh -k units.
#
#   scripts/test.sh             the whole suite against the real LXD daemon: sets the host up first
#                               (idempotent, seconds when already done); fails when the daemon is
#                               missing, when any test was skipped, or when no test ran
#   scripts/test.sh --run-slow  also builds and checks every shipped image recipe
#   scripts/test.sh --fast      only the pure and CLI tiers (pytest -m "pure or cli"): no daemon, no
#                               set-up, no root, seconds. conftest.py marks every test with its tier.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
fast=0
args=()
for arg in "$@"; do
  if [[ $arg == --fast ]]; then fast=1; else args+=("$arg"); fi
done
if [[ $fast -eq 1 ]]; then
  # A fast test that reaches for the daemon fails here instead of passing on a machine that has
  # one; host-path writes (the net-out hook) go to a temporary folder that is removed afterwards.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  export LXCTOOL_SOCKET=/nonexistent/lxctool-fast-lane.socket LXCTOOL_HOOK_DIR="$scratch/hooks" \
         LXCTOOL_CACHE_DIR="$scratch/cache"
  export LXCTOOL_REQUIRE_DAEMON=1   # here it means: a skipped test fails the run
  set +e
  "$REPO/.venv/bin/python" -m pytest -rfEs -m "pure or cli" ${args[@]+"${args[@]}"}
  rc=$?
else
  bash scripts/setup-host.sh
  # Test-only tools, kept out of setup-host.sh so users' hosts stay lean: the dashboard's browser
  # tests (Debian's chromium + chromedriver) and its scrape test (prometheus, promtool).
  test_pkgs=()
  for p in chromium chromium-driver prometheus; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || test_pkgs+=("$p")
  done
  if (( ${#test_pkgs[@]} )); then
    echo "test.sh: installing ${test_pkgs[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${test_pkgs[@]}" >&2
  fi
  export LXCTOOL_REQUIRE_DAEMON=1   # a missing daemon or a skipped test fails the run
  set +e
  "$REPO/.venv/bin/python" -m pytest -rfEs ${args[@]+"${args[@]}"}
  rc=$?
fi
set -e
if [[ $rc -eq 5 ]]; then
  echo "test.sh: pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc

#!/usr/bin/env bash
# Run the whole test suite against the real LXD daemon. Sets the host up first (idempotent,
# seconds when already done). Extra arguments go to pytest, e.g. scripts/test.sh -k units
# or scripts/test.sh --run-slow (also builds and checks every shipped image recipe).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
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
"$REPO/.venv/bin/python" -m pytest -rfEs "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "test.sh: pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc

# Shared by the teaching labs (sourced, not run): how a lab prints and asserts its answers.
section() { printf '\n=== %s\n' "$*"; }
explain() { printf '    %s\n' "$@"; }
answer() { printf '  > %s\n' "$*"; }
check() {  # check DESCRIPTION COMMAND...: the lab's point, asserted
  local what=$1; shift
  if "$@"; then printf '  ok: %s\n' "$what"; else printf '  FAILED: %s\n' "$what" >&2; exit 1; fi
}

# Shared helpers for the demo scenarios (sourced, not run).
# Everything the scenarios do stays on this host: the only address they ever
# use is LOOPBACK below, and every step is bounded by a timeout.

readonly LOOPBACK=127.0.0.1

say() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || { echo "demo: '$c' is required for this scenario" >&2; exit 1; }
  done
}
# A free-ish TCP port on loopback (collisions only cost a retry).
pick_port() { echo $((20000 + RANDOM % 20000)); }
# Wait (at most ~5 s) until something listens on LOOPBACK:$1.
wait_listen() {
  local port=$1 i
  for ((i = 0; i < 50; i++)); do
    (exec 3<>"/dev/tcp/$LOOPBACK/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: nothing listening on $LOOPBACK:$port" >&2
  return 1
}

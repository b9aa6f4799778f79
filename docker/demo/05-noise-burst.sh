#!/usr/bin/env bash
# A burst of noise hiding one critical event: N (default 5000, at most
# 100000) executions of /bin/true with one marker exec in the middle.
# Usage: 05-noise-burst.sh [N]
set -euo pipefail
cd "$(dirname "$0")" && . ./lib.sh
n=${1:-5000}
[[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 100000)) || { echo "N must be 1..100000" >&2; exit 2; }
marker="vigil-demo-marker-$(date +%s)-$RANDOM"
say "$n x /bin/true with one marker exec: $marker"
start=$SECONDS
for ((i = 0; i < n; i++)); do
  /bin/true
  ((i == n / 2)) && /bin/echo "$marker" >/dev/null
done
note "done in $((SECONDS - start)) s"
note "find it in Loki: {service_name=\"vigil\"} | event_name=\"vigil.process.exec\" |= \"$marker\""
note "if vigil lost records in the burst, vigil.telemetry.loss records say how many and where"

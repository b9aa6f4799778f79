#!/usr/bin/env bash
# Run every scenario once, in order. Run on the host vigil watches (not in a
# container), as root to include the privilege-change scenario fully.
set -uo pipefail
cd "$(dirname "$0")"
rc=0
for s in 01-reverse-shell.sh 02-download-exec.sh 03-memfd-exec.sh 04-privilege-change.sh 05-noise-burst.sh; do
  bash "./$s" || { echo "demo: $s failed" >&2; rc=1; }
done
exit "$rc"

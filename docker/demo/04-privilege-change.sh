#!/usr/bin/env bash
# Privilege change: run commands as another user (nobody, uid 65534).
# As root: setpriv and su. Otherwise: sudo -n (only if allowed without a
# password), else nothing is changed.
set -euo pipefail
cd "$(dirname "$0")" && . ./lib.sh
say "privilege change to uid 65534 (nobody)"
if [[ $(id -u) -eq 0 ]]; then
  need setpriv su
  timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups id
  timeout 10 su nobody -s /bin/sh -c 'id -un' || note "su nobody refused (no such user?)"
elif command -v sudo >/dev/null 2>&1 && sudo -n -u nobody true 2>/dev/null; then
  timeout 10 sudo -n -u nobody id
else
  note "skipped: needs root, or sudo -u nobody without a password"
  exit 0
fi
note "look for: setpriv/su/sudo execs, then id with process.user.id=65534 (uid changed across exec)"

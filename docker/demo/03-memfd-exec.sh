#!/usr/bin/env bash
# Fileless execution: python3 copies /usr/bin/id into an anonymous memfd and
# execs it from there (/proc/self/fd/N), with a misleading argv[0].
set -euo pipefail
cd "$(dirname "$0")" && . ./lib.sh
need python3
say "memfd (fileless) exec of a copy of /usr/bin/id"
timeout 10 python3 - <<'PY'
import os
src = "/usr/bin/id" if os.path.exists("/usr/bin/id") else "/bin/id"
with open(src, "rb") as f:
    image = f.read()
fd = os.memfd_create("vigil-demo", 0)  # 0: no MFD_CLOEXEC, the fd survives exec
os.write(fd, image)
os.execve(f"/proc/self/fd/{fd}", ["[kworker/u8:2]", "-un"], dict(os.environ))
PY
note "look for: exec with vigil.process.executable.memfd=true, process.executable.path=/memfd:vigil-demo, argv[0] '[kworker/u8:2]'"

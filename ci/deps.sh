#!/usr/bin/env bash
# Install what vigil needs to build and test, if missing (Debian/Ubuntu, as root).
# Idempotent: does nothing when everything is present.
set -euo pipefail

APT_PACKAGES=(clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make gcc python3-pip)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3-pip is only needed when pip itself is missing (pyenv/venv Pythons bring their own).
if command -v pip3 >/dev/null 2>&1 || command -v pip >/dev/null 2>&1; then
  missing=("${missing[@]/python3-pip}")
fi
read -r -a missing <<<"${missing[*]:-}"
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "ci/deps.sh: missing packages ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "ci/deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "ci/deps.sh: no Rust toolchain found. vigil needs Rust $(sed -n 's/^channel = "\(.*\)"/\1/p' "$(dirname "$0")/../rust-toolchain.toml") (install it with rustup)." >&2
  exit 1
fi

# Only the test suite needs the collector; ci/test.sh sets DEPS_WITH_ROTEL=1.
if [[ ${DEPS_WITH_ROTEL:-0} == 1 ]] && ! python3 -c 'import rotel' >/dev/null 2>&1; then
  echo "ci/deps.sh: installing the rotel collector from PyPI" >&2
  # Debian's own Python refuses system-wide pip installs (PEP 668); the
  # collector is a test tool, so override that there.
  python3 -m pip install --quiet --disable-pip-version-check rotel 2>/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages rotel >&2 || true
  python3 -c 'import rotel' || { echo "ci/deps.sh: pip install rotel failed" >&2; exit 1; }
fi

#!/usr/bin/env bash
# The whole test suite. Installs what is missing first.
#   1. formatting and lints (cargo fmt --check, clippy -D warnings)
#   2. unit, golden and metadata-lookup tests (fake Docker/CRI/Kubernetes
#      servers on local sockets; no root needed)
#   3. privileged tests: real eBPF probes in this kernel (root)
#   4. end-to-end tests: vigil -> rotel collector over OTLP/gRPC and HTTP (root)
#   (and static checks of docker/: compose, collector config, Grafana, k8s)
# Without root, 3 and 4 are SKIPPED with a loud message, never reported as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEPS_WITH_ROTEL=1
ci/deps.sh
export CARGO_TERM_COLOR=never

echo "== fmt"; cargo fmt --all -- --check
echo "== clippy"; cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== build"; cargo build --locked -p vigil
echo "== unit, golden, metadata and command-line tests"; cargo test --locked --workspace
echo "== docker/ static checks"; python3 ci/check-docker.py

if [[ $(id -u) -ne 0 ]]; then
  cat >&2 <<'MSG'
##########################################################################
##  SKIPPED: privileged and end-to-end tests need root (they load eBPF  ##
##  programs into this kernel). Run ci/test.sh as root to run them.     ##
##########################################################################
MSG
  exit 0
fi
echo "== privileged tests (real probes)"
cargo test --locked -p vigil-tests --test privileged -- --ignored
echo "== end-to-end tests (rotel collector)"
cargo test --locked -p vigil-tests --test e2e -- --ignored --test-threads=1

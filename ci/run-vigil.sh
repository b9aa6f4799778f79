#!/usr/bin/env bash
# Build vigil (release) and run it. Installs what is missing first.
# Without a configured endpoint vigil prints OTLP records to the console.
# Arguments are passed to vigil, e.g.: ci/run-vigil.sh --endpoint http://127.0.0.1:4317
set -euo pipefail
cd "$(dirname "$0")/.."
ci/deps.sh
cargo build --release --locked -p vigil
exec ./target/release/vigil "$@"

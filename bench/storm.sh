#!/usr/bin/env bash
# Open storm (300,000 openat(O_WRONLY)+close of one file) and exec storm
# (10,000 fork+exec of /bin/true), each timed without a monitor and with
# vigil exporting to a loopback OTLP/gRPC receiver, interleaved. Prints the
# per-round times, the median ratio and the added microseconds per event,
# and fails when any storm event was not reported (loss).
#
# Needs root (vigil loads eBPF programs). Arguments go to the benchmark:
#   bench/storm.sh [--rounds 5] [--opens 300000] [--execs 10000] [--only open|exec|uring] [--urings 1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p vigil -p vigil-tests --bin vigil --bin vigil-storm
exec ./target/release/vigil-storm --vigil ./target/release/vigil "$@"

#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, unit and integration tests
# (real QUIC on loopback, real GStreamer, a real Garage started by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export GARAGE_BIN="${GARAGE_BIN:-$(command -v garage)}"

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Integration tests start their own gateways and Garage servers; two at a
# time keeps a 2-core machine responsive.
cargo test --workspace --locked -- --test-threads=2

#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, unit and integration tests
# (real QUIC on loopback, real GStreamer, a real Garage started by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export GARAGE_BIN="${GARAGE_BIN:-$(command -v garage)}"

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Inside a crate rustc allows module cycles; the layering must stay one-way
# (docs/architecture.md).
python3 scripts/check-module-cycles.py
# The verifier and the device client build without GStreamer, the S3 SDK,
# the HTTP stack or the gateway (whose build script runs npm).
for p in custody-verify custody-client; do
  if cargo tree --locked -p "$p" -e normal,build,dev --prefix none |
    grep -Ei '^(gstreamer|aws-|axum|hyper|prometheus|tokio-postgres|custody-db|custody-gateway|custody-media) '; then
    echo "$p depends on what it must build without (above)" >&2
    exit 1
  fi
done
# Integration tests start their own gateways and Garage servers; two at a
# time keeps a 2-core machine responsive.
cargo test --workspace --locked -- --test-threads=2

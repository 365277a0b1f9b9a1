#!/usr/bin/env bash
# Coverage-guided fuzzing of custody's parsers with cargo-fuzz and libFuzzer
# (docs/reliability.md, "Fuzzing"). Builds every target in fuzz/ once, then
# runs them one after another at the lowest CPU priority, each for a fixed
# number of executions, starting from the committed corpus in fuzz/corpus/.
#
# usage: scripts/fuzz.sh [--runs N] [--max-time S] [--no-build] [--minimize] [TARGET...]
#   --runs N      executions per target (default 10000000)
#   --max-time S  stop a target after S seconds even if it has not made
#                 N executions (default: no limit); the log says how many
#   --no-build    run the binaries an earlier build left in fuzz/target/
#   --minimize    afterwards, merge what the runs found into fuzz/corpus/
#                 (libFuzzer -merge=1: only inputs that add coverage)
#   TARGET...     default: every target in fuzz/Cargo.toml
#
# A crash, a hang (an input running over 10 s) or an allocation over 2 GiB
# stops the target's run and leaves the input in fuzz/artifacts/TARGET/;
# the script then exits non-zero. New corpus entries go to
# fuzz/corpus-run/TARGET/ (not committed). Per-target figures go to
# fuzz/runs/TARGET.log (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

RUNS=10000000
MAX_TIME=0
MINIMIZE=0
BUILD=1
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --max-time) MAX_TIME="$2"; shift 2 ;;
    --minimize) MINIMIZE=1; shift ;;
    --no-build) BUILD=0; shift ;;
    -*) echo "usage: $0 [--runs N] [--max-time S] [--no-build] [--minimize] [TARGET...]" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^custody-fuzz$')
fi

# cargo-fuzz passes flags only nightly accepts (-Zsanitizer=…, the
# sanitizer-coverage passes); the stable toolchain takes them when told it
# is bootstrapping a compiler.
export RUSTC_BOOTSTRAP=1
# On a shared machine, builds take turns through this lock (/work/bin/lcargo).
LOCK=()
if [ -e /tmp/custody-cargo.lock ]; then
  LOCK=(flock /tmp/custody-cargo.lock)
fi
CARGO_FUZZ_VERSION=0.13.2
if [ "$BUILD" = 1 ] && ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  "${LOCK[@]}" cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# Release build with debug assertions (integer overflow panics, as in the
# tests) and no sanitizer: the parsers are safe Rust, so AddressSanitizer
# would find nothing the bounds checks do not, at half the speed.
if [ "$BUILD" = 1 ]; then
  "${LOCK[@]}" cargo fuzz build --release --debug-assertions --sanitizer none
fi

BIN=fuzz/target/x86_64-unknown-linux-gnu/release
mkdir -p fuzz/runs
failed=0
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus-run/$t" "fuzz/artifacts/$t"
  start=$(date +%s)
  # One core, lowest priority: other work on the machine keeps its share.
  if nice -n 19 "$BIN/$t" "fuzz/corpus-run/$t" "fuzz/corpus/$t" \
      -runs="$RUNS" -max_total_time="$MAX_TIME" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="fuzz/artifacts/$t/" >"fuzz/runs/$t.log" 2>&1; then
    result=ok
  else
    result=FAILED
    failed=1
  fi
  secs=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/runs/$t.log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "fuzz/runs/$t.log" | tail -1 | cut -d' ' -f2)
  echo "$t: $result, ${execs:-?} executions in ${secs} s, coverage ${cov:-?} edges"
  if [ "$result" = FAILED ]; then
    grep -E 'panicked|ERROR|Test unit written' "fuzz/runs/$t.log" | head -n 5 >&2
  fi
  if [ "$MINIMIZE" = 1 ] && [ "$result" = ok ]; then
    rm -rf "fuzz/corpus-min/$t"
    mkdir -p "fuzz/corpus-min/$t"
    nice -n 19 "$BIN/$t" -merge=1 "fuzz/corpus-min/$t" "fuzz/corpus/$t" "fuzz/corpus-run/$t" \
      >>"fuzz/runs/$t.log" 2>&1
    rm -rf "fuzz/corpus/$t"
    mv "fuzz/corpus-min/$t" "fuzz/corpus/$t"
  fi
done
exit "$failed"

#!/usr/bin/env bash
# Installs what custody's build, demo and tests need on Debian 12:
# GStreamer (dev headers and plugins), ffmpeg, node/npm (the wall's player),
# chromium (the browser test) and the Garage S3 server.
# Safe to run again: it skips what is already there.
set -euo pipefail

WANT_GARAGE=1
for a in "$@"; do
  case "$a" in
    # What the demo needs only: no S3 server, no browser test.
    --no-garage) WANT_GARAGE=0 ;;
    *) echo "usage: $0 [--no-garage]" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Every package the product, the demo and the tests use (`custody serve` and
# `custody record` name the package of a GStreamer element they miss, from
# the table in crates/media/src/elements.rs, which a unit test keeps in step
# with this list):
#   libgstreamer1.0-0           core elements (queue, identity, capsfilter)
#   gstreamer1.0-plugins-base   appsrc/appsink, typefinders, test sources, audioconvert
#   gstreamer1.0-plugins-good   qtdemux, matroskademux, avidemux, flvdemux, wavparse,
#                               id3demux, aacparse, mpegaudioparse (mp4mux: benches),
#                               rtspsrc and the RTP depayloaders (RTSP cameras)
#   gstreamer1.0-plugins-bad    tsdemux, mpegpsdemux, h264/h265 parse and timestamper,
#                               mpegtsmux (mpegpsmux, voaacenc: tests/media/generate.sh)
#   gstreamer1.0-plugins-ugly   x264enc (the recorder's test camera, test media)
#   gstreamer1.0-libav          avenc_aac (the test camera's AAC)
#   gstreamer1.0-x              timeoverlay (the test camera's clock)
#   gstreamer1.0-tools          gst-launch-1.0, gst-inspect-1.0 (test media)
#   ffmpeg                      ffmpeg, ffprobe (demo and test media, packet checks)
#   openssl                     the proof bundle's verify.sh, benches
#   time                        /usr/bin/time (memory of the large remux test)
#   curl                        rustup, the demo and the wall tests
#   python3                     scripts/check-module-cycles.py (CI), moto
#   postgresql                  (tests) the cluster-mode database, started per test
#   python3-gst-1.0, gir1.2-gst-rtsp-server-1.0
#                               (tests) the RTSP test camera, tests/media/rtsp_camera.py
APT_PACKAGES=(
  pkg-config build-essential curl ca-certificates
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  libgstreamer1.0-0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-x
  ffmpeg openssl time python3
)
# The wall's player (hls.js) comes from npm at build time; the browser test
# drives Debian's chromium. A newer node already installed is kept.
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)
if [ "$WANT_GARAGE" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || APT_PACKAGES+=(chromium)
  # Cluster-mode tests start their own PostgreSQL (initdb, pg_ctl).
  APT_PACKAGES+=(postgresql)
  # The RTSP test camera: GStreamer's RTSP server from Python.
  APT_PACKAGES+=(python3-gst-1.0 gir1.2-gst-rtsp-server-1.0)
  # moto (S3 with Object Lock, for the retention conformance test) lives
  # in a Python virtual environment.
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || APT_PACKAGES+=(python3-venv)
fi

# Installed means installed: `dpkg -s` also succeeds for a package that was
# removed but left its configuration files behind.
installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}
missing=()
for p in "${APT_PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: system packages present"
fi

# Rust: custody needs 1.95 or newer (edition 2024); Debian's rustc is older,
# so the toolchain comes from rustup (static.rust-lang.org), with rustfmt
# and clippy for the checks the tests run.
export PATH="$HOME/.cargo/bin:$PATH"
RUST_MIN=1.95.0
rust_ok() {
  command -v rustc >/dev/null 2>&1 || return 1
  local have
  have=$(rustc --version | cut -d' ' -f2 | cut -d- -f1)
  [ "$(printf '%s\n%s\n' "$RUST_MIN" "$have" | sort -V | head -1)" = "$RUST_MIN" ]
}
if ! rust_ok; then
  if command -v rustup >/dev/null 2>&1; then
    echo "setup: updating the Rust toolchain (need ${RUST_MIN})"
    rustup toolchain install stable --profile minimal
    rustup default stable
  else
    echo "setup: installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
      | sh -s -- -y --profile minimal --default-toolchain stable
  fi
fi
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" \
      || rustup component add "$c"
  done
fi

# The browser test's driver (playwright-core, pinned in its lock file).
BROWSER_TEST="$(dirname "$0")/../tests/browser"
if [ "$WANT_GARAGE" = 1 ] && [ ! -d "$BROWSER_TEST/node_modules/playwright-core" ]; then
  echo "setup: npm ci in tests/browser"
  npm ci --prefix "$BROWSER_TEST" --no-audit --no-fund
fi

# moto in server mode: an S3 that enforces Object Lock (Garage does not), so
# the retention path is tested against a server that refuses early deletes.
MOTO_VERSION=5.2.5
MOTO_VENV="$HOME/.cache/custody/moto"
if [ "$WANT_GARAGE" = 1 ] && ! "$MOTO_VENV/bin/moto_server" --help >/dev/null 2>&1; then
  echo "setup: installing moto[server] ${MOTO_VERSION} in ${MOTO_VENV}"
  mkdir -p "$(dirname "$MOTO_VENV")"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q "moto[server]==${MOTO_VERSION}"
fi

# Garage, the S3-compatible store the tests run against. No prebuilt binary
# is reachable from here, so it is built once (about 15 minutes on 2 cores)
# and reused from ~/.cargo/bin afterwards.
GARAGE_VERSION=2.5.0
export PATH="$HOME/.cargo/bin:$PATH"
if [ "$WANT_GARAGE" = 0 ]; then
  exit 0
elif command -v garage >/dev/null 2>&1 && garage --version 2>/dev/null | grep -q "${GARAGE_VERSION}"; then
  echo "setup: garage $(garage --version 2>/dev/null | head -1) present"
else
  echo "setup: building garage ${GARAGE_VERSION} (once; about 15 minutes)"
  cargo install garage --version "${GARAGE_VERSION}" --locked \
    --no-default-features --features bundled-libs,lmdb
fi

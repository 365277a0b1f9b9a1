#!/usr/bin/env bash
# The main job, end to end on one machine: a custody gateway on the
# embedded store (a local directory; no S3 needed), a docking rack uploading
# generated sample recordings into it over QUIC, and `custody verify`
# checking every stored recording from storage alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/demo
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh --no-garage
cargo build --locked --bin custody
BIN=$ROOT/target/debug/custody

rm -rf "$DEMO"
mkdir -p "$DEMO/media"
cd "$DEMO"

echo "== PKI: CA, gateway certificate, signing key, device certificates"
$BIN certs init --dir certs --org "Demo Enforcement Bureau" >/dev/null
$BIN certs device --dir certs bwc-0001 rack-01 >/dev/null
ls certs certs/devices

cat > ledger.toml <<'LEDGER'
[[officer]]
id = "o-1001"
name = "Zhang Wei"
unit = "market-supervision"
enforcement = true

[[device]]
id = "bwc-0001"
kind = "body-worn-recorder"
custodian = "Li Na"
unit = "market-supervision"
status = "active"
[[device.assignment]]
officer = "o-1001"
from = "2026-01-01T00:00:00+08:00"

[[device]]
id = "rack-01"
kind = "docking-rack"
custodian = "Li Na"
unit = "market-supervision"
status = "active"
[[device.assignment]]
officer = "o-1001"
LEDGER

cat > custody.toml <<'CONFIG'
[gateway]
id = "demo-gateway"
listen = "127.0.0.1:0"
spool = "spool"

[tls]
crls = ["certs/crl.pem"]

[media]
# One GStreamer pipeline description per input kind; segments of about 2 s.
pipelines = "../pipelines"
segment_seconds = 2.0

[store]
# No bucket: the embedded default store, a local directory.
local_dir = "store"

[client]
server_name = "localhost"
ca = "certs/ca.pem"
cert = "certs/devices/rack-01.pem"
key = "certs/devices/rack-01.key"
CONFIG

echo "== sample recordings (ffmpeg, real encoders)"
ffmpeg -loglevel error -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t 8 -c:v libx264 -g 50 -pix_fmt yuv420p -c:a aac -b:a 96k media/bwc-0001-20261130-0900.mp4
ffmpeg -loglevel error -f lavfi -i testsrc=size=640x360:rate=25 -f lavfi -i sine=frequency=660:sample_rate=48000 \
  -t 5 -c:v libx264 -g 25 -pix_fmt yuv420p -c:a aac -f mpegts media/bwc-0001-20261130-0915.ts
ffmpeg -loglevel error -f lavfi -i testsrc=size=1280x720 -frames:v 1 media/scene-photo.jpg
cat > media/bwc-0001-20261130-0900.mp4.json <<'SIDECAR'
{
  "recording_id": "bwc-0001-20261130-0900",
  "recorder": "bwc-0001",
  "officer": "o-1001",
  "started_at": "2026-11-30T09:00:00+08:00",
  "ended_at": "2026-11-30T09:00:08+08:00",
  "occasion": "on-site-inspection",
  "full_process": {"mandatory": true, "reason": "major-property"},
  "category": "market-supervision",
  "case_id": "SC-2026-0117",
  "proof_object": "goods without quality certificates found on the premises",
  "markers": [{"kind": "scene", "media_time": 0.0, "note": "shop front"},
              {"kind": "evidence", "media_time": 4.5, "note": "labels shown to camera"}]
}
SIDECAR
ls -l media

echo "== gateway (QUIC on 127.0.0.1, embedded store in $DEMO/store)"
$BIN serve -c custody.toml --addr-file gateway.addr 2> gateway.log &
GW=$!
trap 'kill $GW 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s gateway.addr ] && break; sleep 0.1; done
ADDR=$(cat gateway.addr)
echo "listening on $ADDR"

echo "== docking rack rack-01 uploads the folder"
$BIN dock -c custody.toml --gateway "$ADDR" --recorder bwc-0001 media

echo "== verify every stored recording from storage alone"
find store/records -name manifest.json | sort | sed "s|^store/||" | xargs $BIN verify -c custody.toml

echo "== what storage holds"
find store -type f | sort | sed 's|^|  |'
echo "gateway log: $DEMO/gateway.log"

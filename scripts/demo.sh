#!/usr/bin/env bash
# The main job, end to end on one machine: a custody gateway on the
# embedded store (a local directory; no S3 needed), a docking rack uploading
# generated sample recordings into it over QUIC, a body-worn recorder streaming
# live into it (watchable on the command-center wall), and `custody verify`
# checking every stored recording from storage alone.
#
#   bash scripts/demo.sh          runs it all and stops
#   bash scripts/demo.sh --keep   leaves the gateway and a live stream running for the wall
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/demo
export PATH="$HOME/.cargo/bin:$PATH"
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

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

cp "$ROOT/scripts/demo-ledger.toml" ledger.toml

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

[http]
# The command center: the wall, live and stored playback, over HTTPS.
listen = "127.0.0.1:8443"
CONFIG

echo "== a command-center viewer (only the token's SHA-256 goes into the config)"
$BIN viewer-token supervisor-1 --role supervisor > viewer.token 2> viewer.toml.part
sed -n '/^\[\[viewer\]\]/,$p' viewer.toml.part >> custody.toml
rm viewer.toml.part

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
$BIN serve -c custody.toml --addr-file gateway.addr --http-addr-file http.addr 2> gateway.log &
GW=$!
trap 'kill $GW 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s gateway.addr ] && break; sleep 0.1; done
ADDR=$(cat gateway.addr)
echo "listening on $ADDR"

echo "== docking rack rack-01 uploads the folder"
$BIN dock -c custody.toml --gateway "$ADDR" --recorder bwc-0001 media

for _ in $(seq 50); do [ -s http.addr ] && break; sleep 0.1; done
WALL="https://localhost:$(cut -d: -f2 http.addr)/"
echo "== the wall: $WALL (trust $DEMO/certs/ca.pem; token in $DEMO/viewer.token)"

echo "== body-worn recorder bwc-0001 streams live (GStreamer test camera, H.264 + AAC)"
LIVE_SECS=20
[ "$KEEP" = 1 ] && LIVE_SECS=3600
$BIN record -c custody.toml --gateway "$ADDR" \
  --cert certs/devices/bwc-0001.pem --key certs/devices/bwc-0001.key \
  --officer o-1001 --occasion on-site-inspection --category market-supervision \
  --recording-id bwc-0001-live-demo --test-source --duration "$LIVE_SECS" > record.json 2> record.log &
REC=$!
trap 'kill $REC $GW 2>/dev/null || true' EXIT
sleep 6
echo "live feeds the wall lists:"
AUTH="Authorization: Bearer $(cat viewer.token)"
curl -s --cacert certs/ca.pem -H "$AUTH" "${WALL}api/live" | head -c 600; echo
echo "its Low-Latency HLS playlist (what the wall's player fetches):"
curl -s --cacert certs/ca.pem -H "$AUTH" "${WALL}live/bwc-0001/bwc-0001-live-demo/index.m3u8" | head -12
echo "without a token: $(curl -s --cacert certs/ca.pem "${WALL}live/bwc-0001/bwc-0001-live-demo/index.m3u8")"
if [ "$KEEP" = 1 ]; then
  echo "open $WALL in a browser and sign in with the token in $DEMO/viewer.token; Ctrl-C stops the demo"
fi
wait $REC
echo "recorder: $(cat record.json)"
# The recorder closed the recording; the gateway stores its manifest.
for _ in $(seq 100); do
  [ -n "$(find store/records -path '*bwc-0001-live-demo/manifest.json' 2>/dev/null)" ] && break
  sleep 0.2
done

echo "== verify every stored recording from storage alone"
find store/records -name manifest.json | grep -v /_audit/ | sort | sed "s|^store/||" | xargs $BIN verify -c custody.toml

echo "== the command center's audit trail (who saw what), verified"
sleep 6
$BIN audit list -c custody.toml
$BIN audit verify -c custody.toml

echo "== what storage holds"
find store -type f | sort | sed 's|^|  |'
echo "gateway log: $DEMO/gateway.log"

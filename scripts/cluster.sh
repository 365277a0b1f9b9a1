#!/usr/bin/env bash
# Cluster mode on one machine (docs/operations.md): three Garage nodes
# (replication factor 3), one PostgreSQL, three custody gateways sharing
# them. A docking rack docks through two gateways while a Garage node is
# down (the recordings are on the other two and reach the third when it is
# back); a recorder given two gateways streams live through one of them
# (the first gateway's wall lists and plays the feed), which is then
# killed: the other takes the recording's lease over once it expires and
# continues the recording from its journal in storage; the killed gateway,
# back, discards its stale copy; the recording is stored whole.
# A large dock given all three gateways resumes on another gateway when
# the one receiving it is killed.
# Then the catalog every gateway writes is listed from PostgreSQL and every
# recording is verified from storage alone.
#
#   bash scripts/cluster.sh        runs it all and stops everything
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=$ROOT/cluster
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh
cargo build --locked --bin custody
BIN=$ROOT/target/debug/custody
GARAGE=$(command -v garage)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

PIDS=()
PG_UP=0
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ "$PG_UP" = 1 ]; then as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$PGDIR"
}
PGDIR=$(mktemp -d /tmp/custody-cluster-pg.XXXXXX)
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

rm -rf "$RUN"
mkdir -p "$RUN/media-a" "$RUN/media-b"
cd "$RUN"

echo "== PostgreSQL (initdb + pg_ctl in $PGDIR)"
PGPORT=$(free_port)
chmod 755 "$PGDIR"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDIR"
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -o "-p $PGPORT -h 127.0.0.1 -k $PGDIR" -w start >/dev/null
PG_UP=1
DB="postgres://postgres@127.0.0.1:$PGPORT/postgres"
echo "$DB"

echo "== Garage: three nodes, replication factor 3"
SECRET=$(printf '1%.0s' $(seq 64))
KEY_ID=GKa1a1a1a1a1a1a1a1a1a1a1a1
KEY_SECRET=$(printf 'b2%.0s' $(seq 32))
S3=()
for i in 1 2 3; do
  mkdir -p "garage-$i"
  RPC=$(free_port); S3PORT=$(free_port); ADMIN=$(free_port)
  S3+=("http://127.0.0.1:$S3PORT")
  cat > "garage-$i/garage.toml" <<EOF
metadata_dir = "$RUN/garage-$i/meta"
data_dir = "$RUN/garage-$i/data"
db_engine = "lmdb"
replication_factor = 3
consistency_mode = "consistent"
rpc_bind_addr = "127.0.0.1:$RPC"
rpc_public_addr = "127.0.0.1:$RPC"
rpc_secret = "$SECRET"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3PORT"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$ADMIN"
admin_token = "cluster-admin-token"
EOF
done
start_garage() {
  RUST_LOG=warn "$GARAGE" -c "garage-$1/garage.toml" server >> "garage-$1/garage.log" 2>&1 &
  GPID[$1]=$!
  PIDS+=("$!")
}
declare -A GPID
for i in 1 2 3; do start_garage "$i"; done
g() { "$GARAGE" -c garage-1/garage.toml "$@"; }
for _ in $(seq 100); do g status >/dev/null 2>&1 && break; sleep 0.2; done
IDS=()
for i in 1 2 3; do IDS+=("$("$GARAGE" -c "garage-$i/garage.toml" node id -q)"); done
for id in "${IDS[@]:1}"; do g node connect "$id" >/dev/null; done
# A restarted node finds the others at once (instead of by gossip, tens of
# seconds later).
PEERS=$(printf '"%s", ' "${IDS[@]}")
for i in 1 2 3; do
  sed -i "s|^replication_factor = 3|replication_factor = 3\nbootstrap_peers = [${PEERS%, }]|" "garage-$i/garage.toml"
done
for i in 0 1 2; do g layout assign -z "dc$((i + 1))" -c 1G "${IDS[$i]%%@*}" >/dev/null; done
g layout apply --version 1 >/dev/null
for _ in $(seq 150); do
  g key import --yes "$KEY_ID" "$KEY_SECRET" >/dev/null 2>&1 && break
  sleep 0.2
done
g bucket create custody >/dev/null
g bucket allow --read --write --owner custody --key "$KEY_ID" >/dev/null
g status | sed 's/^/  /'

echo "== PKI, ledger, three gateway configurations (gateway N talks to Garage node N)"
$BIN certs init --dir certs --org "Demo Enforcement Bureau" >/dev/null
$BIN certs device --dir certs bwc-0001 rack-01 >/dev/null
cp "$ROOT/scripts/demo-ledger.toml" ledger.toml
echo "== a command-center viewer, the same on every gateway"
$BIN viewer-token supervisor-1 --role supervisor > viewer.token 2> viewer.toml.part
sed -n '/^\[\[viewer\]\]/,$p' viewer.toml.part > viewer.toml
rm viewer.toml.part
declare -A QUIC HTTP
for i in 1 2 3; do
  QUIC[$i]=127.0.0.1:$(free_port)
  HTTP[$i]=127.0.0.1:$(free_port)
  cat > "gw-$i.toml" <<EOF
[gateway]
id = "gw-$i"
listen = "${QUIC[$i]}"
spool = "spool-$i"

[tls]
crls = ["certs/crl.pem"]

[media]
pipelines = "$ROOT/pipelines"
segment_seconds = 2.0

[store]
bucket = "custody"
endpoint = "${S3[$((i - 1))]}"
region = "garage"
access_key_id = "$KEY_ID"
secret_access_key = "$KEY_SECRET"

[live]
# Long enough to ride out the gateway restart below.
close_after_secs = 30

[cluster]
database = "$DB"
lease_secs = 5

[http]
listen = "${HTTP[$i]}"

[client]
server_name = "localhost"
ca = "certs/ca.pem"
cert = "certs/devices/rack-01.pem"
key = "certs/devices/rack-01.key"
EOF
  cat viewer.toml >> "gw-$i.toml"
done
declare -A GW
start_gateway() {
  CUSTODY_LOG=info $BIN serve -c "gw-$1.toml" --addr-file "gw-$1.addr" 2>> "gw-$1.log" &
  GW[$1]=$!
  PIDS+=("$!")
  for _ in $(seq 200); do [ -s "gw-$1.addr" ] && return; sleep 0.1; done
  echo "gateway gw-$1 did not start:"; tail -20 "gw-$1.log"; exit 1
}
for i in 1 2 3; do start_gateway "$i"; echo "gw-$i on ${QUIC[$i]} -> Garage ${S3[$((i - 1))]}"; done

echo "== sample recordings (ffmpeg)"
for n in 1 2; do
  ffmpeg -loglevel error -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i "sine=frequency=$((400 + n * 100))" \
    -t 6 -c:v libx264 -g 50 -pix_fmt yuv420p -c:a aac -shortest "media-a/rack-a-$n.mp4"
  ffmpeg -loglevel error -f lavfi -i testsrc=size=640x360:rate=25 -f lavfi -i "sine=frequency=$((700 + n * 100))" \
    -t 6 -c:v libx264 -g 25 -pix_fmt yuv420p -c:a aac -shortest -f mpegts "media-b/rack-b-$n.ts"
done
for f in media-a/*.mp4 media-b/*.ts; do
  id=$(basename "${f%.*}")
  printf '{"recording_id":"%s","officer":"o-1001","category":"market-supervision","occasion":"on-site-inspection"}\n' "$id" > "$f.json"
done

# (A gateway talks to one Garage endpoint: the node behind gw-2 is the one
# killed here; in production a balancer in front of the S3 endpoints
# hides a dead node from every gateway.)
echo "== Garage node 2 killed; the rack docks through gw-1 and gw-3 at once"
kill -9 "${GPID[2]}"
$BIN dock -c gw-1.toml --gateway "${QUIC[1]}" --recorder bwc-0001 media-a > dock-a.txt 2>&1 &
DA=$!
$BIN dock -c gw-1.toml --gateway "${QUIC[3]}" --recorder bwc-0001 media-b > dock-b.txt 2>&1 &
DB_=$!
wait $DA; wait $DB_
sed 's/^/  /' dock-a.txt dock-b.txt
start_garage 2
echo "Garage node 2 back"

echo "== bwc-0001 streams live through gw-2, gw-3 listed too (GStreamer test camera)"
$BIN record -c gw-2.toml --gateway "${QUIC[2]},${QUIC[3]}" \
  --cert certs/devices/bwc-0001.pem --key certs/devices/bwc-0001.key --state-dir rec-state \
  --officer o-1001 --occasion on-site-inspection --category market-supervision \
  --recording-id bwc-0001-live-cluster --test-source --duration 24 > record.json 2> record.log &
REC=$!
PIDS+=("$REC")
sleep 6
echo "== the wall of gw-1 lists the feed gw-2 receives, and plays it through gw-1"
AUTH="Authorization: Bearer $(cat viewer.token)"
WALL1="https://localhost:${HTTP[1]##*:}"
curl -s --cacert certs/ca.pem -H "$AUTH" "$WALL1/api/live" | head -c 400; echo
curl -s --cacert certs/ca.pem -H "$AUTH" "$WALL1/live/bwc-0001/bwc-0001-live-cluster/index.m3u8" | head -8 | sed 's/^/  /'
sleep 2
echo "== gw-2 killed (SIGKILL) mid-recording"
kill -9 "${GW[2]}"
wait $REC || true
echo "recorder: $(cat record.json)"
grep -o "took over a live recording's expired lease.*\|continuing a live recording from its journal in storage.*" gw-3.log \
  | sed 's/\x1b\[[0-9;]*m//g; s/^/  gw-3: /'
echo "== gw-2 restarted with its spool: its copy was continued elsewhere"
start_gateway 2
for _ in $(seq 100); do
  grep -q 'continued by another gateway: this copy is discarded' gw-2.log && break
  sleep 0.3
done
grep -o 'live recording in the spool was continued by another gateway[^"]*' gw-2.log | head -1 | sed 's/^/  gw-2: /'
for _ in $(seq 150); do
  $BIN verify -c gw-1.toml --json bwc-0001/bwc-0001-live-cluster 2>/dev/null | grep -q '"state": *"closed"' && break
  sleep 0.4
done

echo "== a 256 MiB file docked with all three gateways listed; gw-1, receiving it, killed mid-transfer"
mkdir -p media-c
head -c $((256 << 20)) /dev/urandom > media-c/evidence-dump.bin
printf '{"recording_id":"evidence-dump","officer":"o-1001","category":"market-supervision"}\n' > media-c/evidence-dump.bin.json
$BIN dock -c gw-1.toml --gateway "${QUIC[1]},${QUIC[2]},${QUIC[3]}" --link-timeout 3 --retry-for-secs 120 \
  --recorder bwc-0001 media-c > dock-c.txt 2>&1 &
DC=$!
staged() {
  as_pg "$PGBIN/psql" -X -A -t -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
    -c "SELECT coalesce(max(staged), 0) FROM uploads WHERE recording_id = 'evidence-dump'" 2>/dev/null || echo 0
}
for _ in $(seq 600); do [ "$(staged)" -ge $((64 << 20)) ] && break; sleep 0.1; done
echo "staged in storage (and acknowledged at most) when gw-1 was killed: $(staged) bytes"
kill -9 "${GW[1]}"
wait $DC || true
sed 's/^/  /' dock-c.txt
grep -h -o 'took over a docked upload.s expired lease.*' gw-2.log gw-3.log | sed 's/^/  /' || true
start_gateway 1

echo "== the catalog, from PostgreSQL (written by gw-1, gw-2 and gw-3)"
$BIN list -c gw-1.toml
echo "== every recording verified from storage alone (through Garage node 1)"
$BIN list -c gw-1.toml --json | python3 -c 'import json,sys; [print(json.loads(l)["recorder"]+"/"+json.loads(l)["recording_id"]) for l in sys.stdin]' |
  xargs $BIN verify -c gw-1.toml
echo "logs: $RUN/gw-*.log, $RUN/garage-*/garage.log"

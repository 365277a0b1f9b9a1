#!/usr/bin/env bash
# Verifies this bundle with standard tools only (bash, coreutils, sed,
# OpenSSL 3). Exit 0 and "RECORDING VERIFIED" when every check holds.
set -u
cd "$(dirname "$0")"
status=0
fail() { echo "FAIL: $*"; status=1; }

echo "public key fingerprint (compare with the one your unit publishes):"
openssl pkey -pubin -in public-key.pem -outform DER | sha256sum | cut -c1-64

# The key's algorithm: Ed25519, or SM2 (GB/T 32918: SM3 digest and the
# standard's default distinguishing identifier, which OpenSSL 3.0 must be
# given).
if openssl pkey -pubin -in public-key.pem -noout -text 2>/dev/null | grep -q "ASN1 OID: SM2"; then
  echo "signature algorithm: SM2"
  sigopts=(-rawin -digest sm3 -pkeyopt distid:1234567812345678)
else
  echo "signature algorithm: Ed25519"
  sigopts=(-rawin)
fi

echo "1. checkpoint signatures"
prev_sum=""
last=""
for c in checkpoints/*.json; do
  [ -e "$c" ] || { fail "no checkpoints"; break; }
  if ! openssl pkeyutl -verify -pubin -inkey public-key.pem "${sigopts[@]}" \
      -in "$c" -sigfile "${c%.json}.sig" >/dev/null 2>&1; then
    fail "signature of $c does not verify with public-key.pem"
  fi
  p=$(sed -n 's/^ *"previous": "\{0,1\}\([0-9a-f]*\)"\{0,1\},$/\1/p' "$c")
  [ "$p" = "null" ] && p=""
  [ "$p" = "$prev_sum" ] || fail "$c does not link to the checkpoint before it"
  prev_sum=$(sha256sum "$c" | cut -c1-64)
  last="$c"
done

echo "2. object hashes"
sha256sum --quiet -c SHA256SUMS || fail "an object does not match its SHA-256"

echo "3. hash chain"
prev=0000000000000000000000000000000000000000000000000000000000000000
n=0
heads=()
while read -r i h c file; do
  [ "$i" = "$n" ] || fail "chain.txt line $n has index $i"
  next=$(printf "$(printf '%s%s' "$prev" "$h" | sed 's/../\\x&/g')" | sha256sum | cut -c1-64)
  [ "$next" = "$c" ] || fail "object $i ($file): chain value is $c, recomputes to $next"
  # The hash chained must be the hash the file was checked against in step 2.
  grep -qxF "$h  $file" SHA256SUMS || fail "object $i ($file): SHA256SUMS does not give it the chained hash $h"
  grep -q "\"sha256\": \"$h\"" manifest.json || fail "object $i: its hash is not in manifest.json"
  grep -q "\"chain\": \"$c\"" manifest.json || fail "object $i: its chain value is not in manifest.json"
  prev=$next
  heads[$n]=$next
  n=$((n + 1))
done < chain.txt
listed=$(grep -c '"chain": "' manifest.json)
[ "$listed" = "$n" ] || fail "manifest.json lists $listed objects, chain.txt $n"

echo "4. checkpoints against the chain"
for c in checkpoints/*.json; do
  [ -e "$c" ] || break
  cc=$(sed -n 's/^ *"object_count": \([0-9]*\),$/\1/p' "$c")
  ch=$(sed -n 's/^ *"chain_head": "\([0-9a-f]*\)",$/\1/p' "$c")
  if [ -z "$cc" ] || [ "$cc" -lt 1 ] || [ "$cc" -gt "$n" ]; then
    fail "$c signs $cc objects, the chain has $n"
  elif [ "${heads[$((cc - 1))]}" != "$ch" ]; then
    fail "$c signs chain head $ch after $cc objects, the chain has ${heads[$((cc - 1))]} there"
  fi
done

echo "5. the signed end"
if [ -n "$last" ]; then
  count=$(sed -n 's/^ *"object_count": \([0-9]*\),$/\1/p' "$last")
  head=$(sed -n 's/^ *"chain_head": "\([0-9a-f]*\)",$/\1/p' "$last")
  grep -q '"final": true' "$last" || fail "$last is not final: the recording's end is not signed"
  [ "$count" = "$n" ] || fail "$last signs $count objects, the chain has $n"
  [ "$head" = "$prev" ] || fail "$last signs chain head $head, the chain ends at $prev"
  # custody-checkpoint/2 signs the manifest's exact bytes too (gaps,
  # completeness, derivation status, summary, links, retention …).
  ms=$(sed -n 's/^ *"manifest_sha256": "\([0-9a-f]*\)",$/\1/p' "$last")
  if [ -n "$ms" ]; then
    [ "$ms" = "$(sha256sum manifest.json | cut -c1-64)" ] || fail "manifest.json is not the manifest $last signs"
  elif grep -q '"format": "custody-checkpoint/1"' "$last"; then
    echo "   $last is custody-checkpoint/1: manifest.json beyond its hashes and chain values is not signed"
  else
    fail "$last signs no manifest"
  fi
fi

if [ "$status" = 0 ]; then
  echo "RECORDING VERIFIED: $n objects, chain head $prev"
else
  echo "RECORDING NOT VERIFIED"
fi
exit "$status"

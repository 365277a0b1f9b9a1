#!/usr/bin/env bash
# Prove that DERIVED carries the very same compressed audio/video packets as
# ORIGINAL (i.e. it was remuxed, not transcoded).
#
# usage: tests/media/same_packets.sh [--video-only|--audio-only] [--allow-trim N] [--verbose]
#                                      ORIGINAL DERIVED
#
# DERIVED is typically a fragmented MP4 (init segment + media segments
# concatenated), ORIGINAL any container ffmpeg can demux (TS, MP4, MOV, MKV,
# PS, AVI, raw .h264/.h265/.aac ...).
#
# Method: for every video and audio stream (attached pictures excluded), the
# n-th stream of a kind in ORIGINAL is paired with the n-th stream of that kind
# in DERIVED.  Each file is stream-copied once through ffmpeg
# (-c copy -copyinkf -f framemd5) with per-codec bitstream filters that remove
# legitimate container-level differences and nothing else:
#   h264 : h264_mp4toannexb, filter_units=pass_types=1-5
#          AVCC -> Annex-B (no-op on Annex-B input), then keep only VCL NAL
#          units (coded slices); SPS/PPS/AUD/SEI/filler/end-of-seq, which
#          muxers legitimately add, move or drop, are removed.  The CBS writer
#          also normalises start-code lengths and trailing zero bytes.
#   hevc : hevc_mp4toannexb, filter_units=pass_types=0-31  (VCL NAL types)
#   aac  : aac_adtstoasc when the stream's first packet starts with an ADTS
#          sync word (TS, PS, raw .aac), which strips the 7/9-byte ADTS
#          headers; raw frames (MP4/MKV) are compared as they are.
#   pcm_*: pcm_rechunk=nb_out_samples=1024  (containers chunk PCM arbitrarily);
#          PCM codecs pcm_rechunk does not know (G.711 pcm_alaw/pcm_mulaw,
#          pcm_u8 ...) are compared as one concatenated byte stream instead.
#   other: compared as-is.
# then setts=pts=N:dts=N, so that no timestamp can influence ffmpeg's
# handling (timestamps are ignored by design).  MP4/MOV inputs are read with
# -ignore_editlist 1 so edit lists cannot hide samples (e.g. AAC priming).
# The md5 (and size) columns are then compared line by line, in decode order.
#
# Output: one line per stream, e.g. "video: 150 packets, identical".
# Exit status: 0 all compared streams identical; 1 a stream differs, packet
# counts differ, codecs differ, or DERIVED lacks a stream ORIGINAL has;
# 2 usage error, unreadable input or nothing to compare.
# --allow-trim N: also accept a stream whose DERIVED packets are exactly a
# contiguous run of ORIGINAL's with at most N packets missing in total at the
# start and end (e.g. GStreamer muxers clip AAC frames that lie before the
# first video frame); reported as such, exit 0.  Default 0: strict.
# Streams DERIVED omits on purpose are the caller's business: use
# --video-only / --audio-only.
# A CMAF presentation with one file set per track is checked per track:
#   cat v/init.mp4 v/seg_*.m4s > v.mp4; same_packets.sh --video-only ORIG v.mp4
#
# Needs: bash >= 4.4, coreutils, ffmpeg/ffprobe (tested with 5.1).
set -euo pipefail

usage() {
    echo "usage: $0 [--video-only|--audio-only] [--allow-trim N] [--verbose] ORIGINAL DERIVED" >&2
    exit 2
}

kinds=(video audio)
verbose=0
allow_trim=0
args=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --video-only) kinds=(video) ;;
    --audio-only) kinds=(audio) ;;
    --allow-trim)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || { echo "--allow-trim needs a number" >&2; usage; }
        allow_trim=$2
        shift
        ;;
    --allow-trim=*)
        allow_trim=${1#--allow-trim=}
        [[ $allow_trim =~ ^[0-9]+$ ]] || { echo "--allow-trim needs a number" >&2; usage; }
        ;;
    -v | --verbose) verbose=1 ;;
    -h | --help) usage ;;
    --) shift; args+=("$@"); break ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) args+=("$1") ;;
    esac
    shift
done
[[ ${#args[@]} -eq 2 ]] || usage
ORIG=${args[0]}
DERIV=${args[1]}
for f in "$ORIG" "$DERIV"; do
    [[ -r $f && -f $f ]] || { echo "error: cannot read $f" >&2; exit 2; }
done
for tool in ffmpeg ffprobe; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/same_packets.XXXXXX")
trap 'rm -rf "$work"' EXIT

# probe FILE TAG: writes $work/TAG.streams ("index kind codec" per line, attached
# pictures and non-A/V streams dropped) and $work/TAG.format.
probe() {
    local out
    if ! out=$(ffprobe -v error -show_entries \
        stream=index,codec_type,codec_name:stream_disposition=attached_pic:format=format_name \
        -of compact=p=0 "$1" 2>&1); then
        echo "error: ffprobe cannot read $1: $out" >&2
        exit 2
    fi
    # Only the stream section lines carry the disposition (program listings
    # in TS repeat the streams without it).
    printf '%s\n' "$out" | awk -F'|' '
        /disposition:attached_pic=/ {
            delete kv
            for (i = 1; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
            if (kv["disposition:attached_pic"] == 1) next
            if (kv["codec_type"] != "video" && kv["codec_type"] != "audio") next
            if (seen[kv["index"]]++) next
            print kv["index"], kv["codec_type"], kv["codec_name"]
        }' >"$work/$2.streams"
    printf '%s\n' "$out" | awk 'sub(/^format_name=/, "") { print; exit }' >"$work/$2.format"
}
probe "$ORIG" orig
probe "$DERIV" deriv

# is_adts FILE INDEX: true if the first packet of stream INDEX starts with an
# ADTS sync word.  (aac_adtstoasc passes raw frames through only when the
# stream has an AudioSpecificConfig; an MP4 written with empty_moov from an
# ADTS source may lack it, so decide from the packet bytes instead.)
is_adts() {
    local head
    head=$(ffmpeg -nostdin -v quiet -i "$1" -map "0:$2" -c copy -frames:0 1 -f data - 2>/dev/null |
        od -An -tx1 -N2 | tr -d ' \n')
    [[ $head == fff* ]]
}

# bsf_for CODEC FILE INDEX: the normalising bitstream-filter chain.
bsf_for() {
    local pre
    case $1 in
    h264) pre='h264_mp4toannexb,filter_units=pass_types=1-5,' ;;
    hevc) pre='hevc_mp4toannexb,filter_units=pass_types=0-31,' ;;
    aac) pre=''; if is_adts "$2" "$3"; then pre='aac_adtstoasc,'; fi ;;
    pcm_s16le | pcm_s16be | pcm_s8 | pcm_s24le | pcm_s24be | pcm_s32le | pcm_s32be | pcm_s64le | pcm_s64be | \
        pcm_f16le | pcm_f24le | pcm_f32le | pcm_f32be | pcm_f64le | pcm_f64be)
        pre='pcm_rechunk=nb_out_samples=1024,' ;;
    *) pre='' ;;
    esac
    printf '%ssetts=pts=N:dts=N' "$pre"
}

# mode_for CODEC: "packets" (compare packet by packet) or "bytes" (compare
# the concatenated payload: PCM that pcm_rechunk cannot handle, e.g. G.711).
mode_for() {
    case $1 in
    pcm_s16le | pcm_s16be | pcm_s8 | pcm_s24le | pcm_s24be | pcm_s32le | pcm_s32be | pcm_s64le | pcm_s64be | \
        pcm_f16le | pcm_f24le | pcm_f32le | pcm_f32be | pcm_f64le | pcm_f64be) echo packets ;;
    pcm_*) echo bytes ;;
    *) echo packets ;;
    esac
}

# Pair the streams.  entries (in output order): "label state oidx didx codec"
# with state cmp (to be compared), missing or codec:<derived codec>.
status=0
entries=()
pairs=() # the "cmp" entries, in the order they are mapped in ffmpeg
for kind in "${kinds[@]}"; do
    mapfile -t o < <(awk -v k="$kind" '$2 == k { print $1, $3 }' "$work/orig.streams")
    mapfile -t d < <(awk -v k="$kind" '$2 == k { print $1, $3 }' "$work/deriv.streams")
    for i in "${!o[@]}"; do
        label=$kind
        [[ $i -gt 0 ]] && label="$kind:$i"
        read -r oidx ocodec <<<"${o[$i]}"
        if [[ $i -ge ${#d[@]} ]]; then
            entries+=("$label missing $oidx - $ocodec")
            status=1
            continue
        fi
        read -r didx dcodec <<<"${d[$i]}"
        if [[ $ocodec != "$dcodec" ]]; then
            entries+=("$label codec:$dcodec $oidx $didx $ocodec")
            status=1
            continue
        fi
        entries+=("$label cmp $oidx $didx $ocodec")
        pairs+=("$label $oidx $didx $ocodec")
    done
    if [[ ${#d[@]} -gt ${#o[@]} ]]; then
        entries+=("$kind extra $((${#d[@]} - ${#o[@]})) - -")
    fi
done
nreal=0
for e in "${entries[@]}"; do [[ $e == *" extra "* ]] || nreal=$((nreal + 1)); done
if [[ $nreal -eq 0 ]]; then
    echo "error: ORIGINAL has no ${kinds[*]} stream to compare" >&2
    exit 2
fi

# hash_streams FILE TAG COL: one ffmpeg pass over FILE mapping the
# packet-mode streams of column COL (2 = original index, 3 = derived index)
# of the pairs; writes $work/TAG.N ("size md5" per packet, decode order) for
# the N-th pair.  Byte-mode streams are dumped whole to $work/TAG.N.
hash_streams() {
    local file=$1 tag=$2 col=$3 n=0 m=0 p idx codec
    local -a cmd=(ffmpeg -nostdin -hide_banner -v error) out=() inopt=()
    case $(cat "$work/$tag.format") in
    mov,*) inopt=(-ignore_editlist 1) ;;
    esac
    cmd+=("${inopt[@]}" -i "$file")
    for p in "${pairs[@]}"; do
        idx=$(cut -d' ' -f"$col" <<<"$p")
        codec=$(cut -d' ' -f4 <<<"$p")
        if [[ $(mode_for "$codec") == bytes ]]; then
            if ! ffmpeg -nostdin -hide_banner -v error "${inopt[@]}" -i "$file" -map "0:$idx" -c copy \
                -f data "$work/$tag.$n" 2>"$work/$tag.$n.log"; then
                echo "error: ffmpeg failed on $file:" >&2
                sed -n '1,20s/^/  /p' "$work/$tag.$n.log" >&2
                exit 2
            fi
        else
            cmd+=(-map "0:$idx" "-bsf:$m" "$(bsf_for "$codec" "$file" "$idx")")
            out[m]=$n
            m=$((m + 1))
        fi
        n=$((n + 1))
    done
    [[ $m -gt 0 ]] || return 0
    cmd+=(-c copy -copyinkf -f framemd5 "$work/$tag.framemd5")
    [[ $verbose -eq 1 ]] && printf '+ %q' "${cmd[@]}" >&2 && echo >&2
    if ! "${cmd[@]}" 2>"$work/$tag.log"; then
        echo "error: ffmpeg failed on $file:" >&2
        sed -n '1,20s/^/  /p' "$work/$tag.log" >&2
        exit 2
    fi
    # ffmpeg keeps going (exit 0) when a bitstream filter rejects a packet,
    # which silently drops it: the comparison would then not cover all data.
    local bsferr
    bsferr=$(grep -c 'Error applying bitstream filters' "$work/$tag.log" || true)
    if [[ $bsferr -gt 0 ]]; then
        echo "warning: $bsferr packet(s) of $file rejected by the normalising bitstream filters (not compared):" >&2
        grep -v 'Error applying bitstream filters' "$work/$tag.log" | sort | uniq -c | sort -rn | sed -n '1,5s/^/  /p' >&2 || true
        bsf_failed=1
    fi
    if [[ -s $work/$tag.log && $verbose -eq 1 ]]; then
        echo "ffmpeg messages for $file:" >&2
        sed -n '1,20s/^/  /p' "$work/$tag.log" >&2
    fi
    # framemd5 line: stream, dts, pts, duration, size, hash[, side data...]
    awk -F', *' -v out="$work/$tag.out." '
        /^#/ { next }
        NF >= 6 { print $5, $6 > (out $1) }' "$work/$tag.framemd5"
    for ((i = 0; i < m; i++)); do
        if [[ -f $work/$tag.out.$i ]]; then
            mv "$work/$tag.out.$i" "$work/$tag.${out[i]}"
        else
            : >"$work/$tag.${out[i]}"
        fi
    done
}
bsf_failed=0
if [[ ${#pairs[@]} -gt 0 ]]; then
    hash_streams "$ORIG" orig 2
    hash_streams "$DERIV" deriv 3
fi
if [[ $bsf_failed -eq 1 ]]; then
    echo "error: some packets could not be normalised; the comparison is incomplete"
    status=1
fi

# Compare and report, in stream order.
n=0
for e in "${entries[@]}"; do
    read -r label state oidx didx codec <<<"$e"
    case $state in
    missing)
        echo "$label: MISSING in DERIVED (ORIGINAL stream #$oidx, $codec)"
        continue
        ;;
    codec:*)
        echo "$label: CODEC DIFFERS (ORIGINAL #$oidx $codec, DERIVED #$didx ${state#codec:})"
        continue
        ;;
    extra)
        echo "note: DERIVED has $oidx more $label stream(s) than ORIGINAL (not compared)"
        continue
        ;;
    esac
    of=$work/orig.$n
    df=$work/deriv.$n
    n=$((n + 1))
    if [[ $(mode_for "$codec") == bytes ]]; then
        ob=$(wc -c <"$of")
        db=$(wc -c <"$df")
        if [[ $ob -eq $db ]] && cmp -s "$of" "$df"; then
            if [[ $ob -eq 0 ]]; then
                echo "$label: $codec, 0 bytes in both files"
                status=1
            else
                echo "$label: $ob bytes (whole stream), identical ($codec)"
            fi
        else
            first=$(cmp "$of" "$df" 2>&1 | sed -n 's/.*differ: byte \([0-9]*\).*/\1/p; s/.*EOF on [^ ]* after byte \([0-9]*\).*/\1/p' | head -n1 || true)
            echo "$label: DIFFERENT ($codec): ORIGINAL $ob bytes, DERIVED $db bytes; first difference at byte ${first:-?} (whole-stream comparison)"
            status=1
        fi
        continue
    fi
    on=$(wc -l <"$of")
    dn=$(wc -l <"$df")
    what="packets"
    [[ $codec == pcm_* ]] && what="1024-sample PCM chunks"
    if [[ $on -eq $dn ]] && cmp -s "$of" "$df"; then
        if [[ $on -eq 0 ]]; then
            echo "$label: $codec, 0 packets in both files"
            status=1
        else
            echo "$label: $on $what, identical ($codec)"
        fi
        continue
    fi
    # First differing packet (0-based, decode order) and, when the counts
    # differ, whether DERIVED is a contiguous run of ORIGINAL's packets.
    # Exit status of awk: 0 = accepted under --allow-trim, 1 = different.
    if awk -v label="$label" -v codec="$codec" -v on="$on" -v dn="$dn" -v what="$what" -v trim="$allow_trim" '
        NR == FNR { o[FNR - 1] = $0; next }
        { d[FNR - 1] = $0 }
        END {
            # Is DERIVED == ORIGINAL[k .. k+dn) ?
            run = 0
            if (dn > 0 && dn < on) {
                for (k = 0; k + dn <= on; k++) {
                    if (o[k] != d[0]) continue
                    for (j = 0; j < dn && o[k + j] == d[j]; j++) ;
                    if (j == dn) { run = 1; break }
                }
            }
            if (run && on - dn <= trim) {
                printf "%s: %d %s identical to ORIGINAL packets %d..%d (%d leading, %d trailing of %d missing; allowed by --allow-trim %d) (%s)\n", \
                    label, dn, what, k, k + dn - 1, k, on - k - dn, on, trim, codec
                exit 0
            }
            first = -1
            m = (on < dn) ? on : dn
            for (i = 0; i < m; i++) if (o[i] != d[i]) { first = i; break }
            if (first < 0) first = m
            split((first < on) ? o[first] : "- -", a, " ")
            split((first < dn) ? d[first] : "- -", b, " ")
            printf "%s: DIFFERENT (%s): ORIGINAL %d %s, DERIVED %d %s; first difference at packet %d (ORIGINAL size %s md5 %s, DERIVED size %s md5 %s)\n", \
                label, codec, on, what, dn, what, first, a[1], a[2], b[1], b[2]
            if (run) {
                printf "  DERIVED = ORIGINAL packets %d..%d: %d leading and %d trailing packets missing\n", k, k + dn - 1, k, on - k - dn
            } else if (on != dn && dn > 0) {
                for (k = 0; k < on; k++) if (o[k] == d[0]) break
                if (k < on) {
                    for (j = 0; j < dn && k + j < on && o[k + j] == d[j]; j++) ;
                    printf "  DERIVED packets 0..%d equal ORIGINAL packets %d..%d\n", j - 1, k, k + j - 1
                } else if (on > 0) {
                    for (k = 0; k < dn; k++) if (d[k] == o[0]) break
                    if (k < dn) printf "  ORIGINAL packet 0 is DERIVED packet %d (DERIVED has %d extra leading packets)\n", k, k
                }
                same = 0
                for (i = 0; i < m; i++) if (o[on - 1 - i] == d[dn - 1 - i]) same++; else break
                if (same > 0) printf "  last %d packets identical (aligned at the end)\n", same
            }
            exit 1
        }' "$of" "$df"; then
        :
    else
        status=1
    fi
done
exit "$status"

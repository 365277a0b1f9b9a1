#!/usr/bin/env bash
# Generate small test recordings for the ingest/CMAF pipeline.
#
# usage: tests/media/generate.sh OUTDIR
#
# Every file is produced with a real encoder (libx264/libx265/aac/mp3/mjpeg via
# ffmpeg, x264enc/voaacenc via GStreamer).  Files that already exist are kept,
# so reruns are fast; delete a file (or OUTDIR) to regenerate it.  Outputs are
# written to OUTDIR/.partial.<name> first and renamed when complete, so an
# interrupted run never leaves a half-written file behind under its final name.
# OUTDIR/MANIFEST.txt (rewritten every run) says what each file is meant to test.
#
# Needs: bash >= 4.4, coreutils, ffmpeg/ffprobe (libx264, libx265, libmp3lame),
# gst-launch-1.0 with x264enc, mpegtsmux, mpegpsmux, h264parse, aacparse and an
# AAC encoder (avenc_aac, voaacenc or fdkaacenc).
# Never commit the generated media.
set -euo pipefail

if [[ $# -ne 1 || $1 == -h || $1 == --help ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUT=$1
mkdir -p "$OUT"

for tool in ffmpeg ffprobe gst-launch-1.0; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 1; }
done

FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
# x264 settings shared by the H.264 recordings: GOP 50 (2 s at 25 fps), no
# scene-cut keyframes (keeps the GOP layout predictable), 3 B-frames.
X264=(-c:v libx264 -preset veryfast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 -bf 3)
AAC=(-c:a aac -b:a 96k)

made=0
kept=0

# need NAME: true if OUTDIR/NAME must be (re)generated.
need() {
    if [[ -s $OUT/$1 ]]; then
        kept=$((kept + 1))
        return 1
    fi
    echo "generating $1" >&2
    return 0
}
# tmp NAME: scratch path (keeps the extension so ffmpeg picks the right muxer).
tmp() { printf '%s/.partial.%s' "$OUT" "$1"; }
# done_ NAME: move the scratch file into place.
done_() {
    [[ -s $(tmp "$1") ]] || { echo "error: $1 was not produced" >&2; exit 1; }
    mv -f "$(tmp "$1")" "$OUT/$1"
    made=$((made + 1))
}
# Clean up scratch files of an interrupted run.
cleanup() { rm -f "$OUT"/.partial.* "$OUT"/.noise.bin "$OUT"/.longgop.mp4; }
trap cleanup EXIT
cleanup

# Optional burnt-in label naming the file, if drawtext (libfreetype+fontconfig) works.
if "${FF[@]}" -f lavfi -i color=size=64x32:duration=0.04 -vf "drawtext=text=x" -f null - 2>/dev/null; then
    label() { printf ',drawtext=text=%s:fontsize=18:fontcolor=white:box=1:boxcolor=black@0.6:x=6:y=h-th-6' "$1"; }
else
    label() { :; }
fi
# vsrc SOURCE SIZE SECONDS LABEL [RATE]: lavfi video input arguments.
vsrc() { echo "$1=size=$2:rate=${5:-25}:duration=$3$(label "$4")"; }
# asrc FREQ RATE SECONDS: lavfi sine tone.
asrc() { echo "sine=frequency=$1:sample_rate=$2:duration=$3"; }

# ---------------------------------------------------------------- H.264 + AAC
# One encode; the other containers are stream-copied from it, so all five
# carry the very same H.264/AAC packets (useful for cross-container checks).
if need h264_aac.mp4; then
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc 320x240 6 h264_aac)" -f lavfi -i "$(asrc 440 48000 6)" \
        "${X264[@]}" "${AAC[@]}" -shortest "$(tmp h264_aac.mp4)"
    done_ h264_aac.mp4
fi
if need h264_aac_faststart.mp4; then
    "${FF[@]}" -i "$OUT/h264_aac.mp4" -map 0 -c copy -movflags +faststart "$(tmp h264_aac_faststart.mp4)"
    done_ h264_aac_faststart.mp4
fi
for ext in mov ts mkv; do
    if need "h264_aac.$ext"; then
        # bitexact: no muxing date / random UIDs, so reruns give identical bytes
        "${FF[@]}" -i "$OUT/h264_aac.mp4" -map 0 -c copy -fflags +bitexact "$(tmp "h264_aac.$ext")"
        done_ "h264_aac.$ext"
    fi
done

# -------------------------------------------------- open GOP, B-pyramid (TS)
if need h264_opengop_bframes.ts; then
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc2 320x240 8 opengop)" -f lavfi -i "$(asrc 550 48000 8)" \
        "${X264[@]}" -x264-params open-gop=1:bframes=3:b-pyramid=normal "${AAC[@]}" -shortest \
        "$(tmp h264_opengop_bframes.ts)"
    done_ h264_opengop_bframes.ts
fi

# ------------------------------------------------ variable frame rate (MP4)
# 2 s at 25 fps, 2 s at 15 fps, 2 s at 30 fps, kept as VFR (90 kHz timescale).
if need h264_vfr.mp4; then
    "${FF[@]}" \
        -f lavfi -i "$(vsrc smptebars 320x240 2 vfr-25fps 25)" \
        -f lavfi -i "$(vsrc smptebars 320x240 2 vfr-15fps 15)" \
        -f lavfi -i "$(vsrc smptebars 320x240 2 vfr-30fps 30)" \
        -f lavfi -i "$(asrc 330 48000 6)" \
        -filter_complex '[0:v]settb=1/90000[a];[1:v]settb=1/90000[b];[2:v]settb=1/90000[c];[a][b][c]concat=n=3:v=1:a=0[v]' \
        -map '[v]' -map 3:a "${X264[@]}" -fps_mode vfr -enc_time_base 1/90000 -video_track_timescale 90000 \
        "${AAC[@]}" "$(tmp h264_vfr.mp4)"
    # Verify the frame durations really vary (DTS deltas of the video track).
    deltas=$(ffprobe -v error -select_streams v:0 -show_entries packet=dts -of csv=p=0 "$(tmp h264_vfr.mp4)" |
        awk 'NR > 1 { print $1 - p } { p = $1 }' | sort -u | wc -l)
    if [[ $deltas -lt 3 ]]; then
        echo "error: h264_vfr.mp4 is not VFR ($deltas distinct frame durations)" >&2
        exit 1
    fi
    done_ h264_vfr.mp4
fi

# ------------------------------------------------------------------ H.265
# x265 defaults to open GOP: keyframes after the first are CRA with RASL
# leading pictures.  Tagged hvc1 (parameter sets only in the sample entry).
if need h265_aac.mp4; then
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc2 640x360 5 h265_aac)" -f lavfi -i "$(asrc 660 48000 5)" \
        -c:v libx265 -preset veryfast -pix_fmt yuv420p -tag:v hvc1 \
        -x265-params keyint=50:min-keyint=50:scenecut=0:bframes=3:log-level=error \
        "${AAC[@]}" -shortest "$(tmp h265_aac.mp4)"
    done_ h265_aac.mp4
fi
if need h265_aac.ts; then
    "${FF[@]}" -i "$OUT/h265_aac.mp4" -map 0 -c copy "$(tmp h265_aac.ts)"
    done_ h265_aac.ts
fi

# ------------------------------------------- one open GOP to the end (MP4)
# 3 s in a single GOP with B-frames, as a short clip from a recorder with a
# long keyframe interval is: the video track ends inside a GOP, its last
# frame (in decode order) a B-frame. fmp4mux 0.14.5 could lose that frame
# (vendor/gst-plugin-fmp4/README.md).
if need h265_one_gop.mp4; then
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc2 320x240 3 h265_one_gop)" -f lavfi -i "$(asrc 440 44100 3)" \
        -c:v libx265 -preset ultrafast -pix_fmt yuv420p -tag:v hvc1 \
        -x265-params keyint=250:min-keyint=250:scenecut=0:bframes=3:log-level=error \
        "${AAC[@]}" -shortest "$(tmp h265_one_gop.mp4)"
    done_ h265_one_gop.mp4
fi
if need h264_one_gop.mp4; then
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc2 320x240 3 h264_one_gop)" -f lavfi -i "$(asrc 440 44100 3)" \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 250 -keyint_min 250 -sc_threshold 0 -bf 3 \
        "${AAC[@]}" -shortest "$(tmp h264_one_gop.mp4)"
    done_ h264_one_gop.mp4
fi

# ------------------------------------------------- GStreamer-written MPEG-TS
gst_aacenc() {
    local e
    for e in avenc_aac voaacenc fdkaacenc; do
        if command -v gst-inspect-1.0 >/dev/null; then
            gst-inspect-1.0 "$e" >/dev/null 2>&1 && { echo "$e"; return 0; }
        else
            # No gst-inspect: try a tiny pipeline.
            gst-launch-1.0 -q audiotestsrc num-buffers=2 ! "$e" ! fakesink >/dev/null 2>&1 && { echo "$e"; return 0; }
        fi
    done
    echo "error: no GStreamer AAC encoder (avenc_aac, voaacenc, fdkaacenc)" >&2
    return 1
}
# 125 video buffers at 25 fps and 125 audio buffers of 1920 samples at 48 kHz = 5 s.
# Longer recordings (over the 1 MiB typefinding probe) for remuxing while an
# upload is still arriving: 20 s at about 1.5 Mbit/s.
for ext in ts mkv; do
    if need "long_h264_aac.$ext"; then
        "${FF[@]}" -f lavfi -i "$(vsrc testsrc2 640x360 20 long_h264_aac)" -f lavfi -i "$(asrc 330 48000 20)" \
            "${X264[@]}" -b:v 1500k "${AAC[@]}" -shortest "$(tmp "long_h264_aac.$ext")"
        done_ "long_h264_aac.$ext"
    fi
done
# The same packets as a fragmented MP4 (moov with mvex first, a fragment per
# keyframe): streamable, so also remuxed while it arrives.
if need long_h264_aac_frag.mp4; then
    "${FF[@]}" -i "$OUT/long_h264_aac.mkv" -map 0 -c copy \
        -movflags frag_keyframe+empty_moov+default_base_moof "$(tmp long_h264_aac_frag.mp4)"
    done_ long_h264_aac_frag.mp4
fi

# (x264enc's speed-preset sets B-frames on unless bframes= is given.)
AACENC=
if need gst_x264.ts; then
    [[ -n $AACENC ]] || AACENC=$(gst_aacenc)
    gst-launch-1.0 -q \
        videotestsrc num-buffers=125 pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=25/1 \
        ! x264enc key-int-max=50 bitrate=400 speed-preset=veryfast ! h264parse ! queue \
        ! mpegtsmux name=mux ! filesink location="$(tmp gst_x264.ts)" \
        audiotestsrc num-buffers=125 samplesperbuffer=1920 freq=770 ! audio/x-raw,rate=48000,channels=1 \
        ! audioconvert ! "$AACENC" ! aacparse ! queue ! mux. >/dev/null
    done_ gst_x264.ts
fi

# ---------------------------------------------------------- MPEG-PS (.mpg)
# ffmpeg's PS muxer rejects AAC, and its H.264-in-PS has no program stream
# map, so GStreamer's mpegpsdemux mistakes the video for MPEG-2.  GStreamer's
# mpegpsmux writes a PSM and accepts H.264 + AAC (ADTS), like CCTV/DVR exports.
# bframes=0: mpegpsmux writes wrong DTS for B-frame streams (and DVRs rarely use them).
if need mpegps.mpg; then
    [[ -n $AACENC ]] || AACENC=$(gst_aacenc)
    gst-launch-1.0 -q \
        videotestsrc num-buffers=125 pattern=smpte ! video/x-raw,format=I420,width=320,height=240,framerate=25/1 \
        ! x264enc key-int-max=50 bframes=0 bitrate=400 speed-preset=veryfast ! h264parse ! queue \
        ! mpegpsmux name=mux ! filesink location="$(tmp mpegps.mpg)" \
        audiotestsrc num-buffers=125 samplesperbuffer=1920 freq=880 ! audio/x-raw,rate=48000,channels=1 \
        ! audioconvert ! "$AACENC" ! aacparse ! audio/mpeg,stream-format=adts ! queue ! mux. >/dev/null
    done_ mpegps.mpg
fi

# ------------------------------------------------------------- audio only
if need audio.m4a; then
    "${FF[@]}" -f lavfi -i "$(asrc 880 44100 5)" "${AAC[@]}" "$(tmp audio.m4a)"
    done_ audio.m4a
fi
if need audio.aac; then
    "${FF[@]}" -f lavfi -i "$(asrc 990 44100 5)" "${AAC[@]}" -f adts "$(tmp audio.aac)"
    done_ audio.aac
fi
if need audio.wav; then
    "${FF[@]}" -f lavfi -i "$(asrc 1000 16000 5)" -c:a pcm_s16le "$(tmp audio.wav)"
    done_ audio.wav
fi
if need audio.mp3; then
    "${FF[@]}" -f lavfi -i "$(asrc 1100 44100 5)" -c:a libmp3lame -b:a 128k "$(tmp audio.mp3)"
    done_ audio.mp3
fi

# --------------------------------------------------- raw elementary streams
if need h264.h264; then
    # No B-frames: raw streams carry no timestamps, and recorders' hardware
    # encoders write them without frame reordering (pipelines/40-h264.pipeline).
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc 320x240 5 h264-annexb)" "${X264[@]}" -bf 0 -f h264 "$(tmp h264.h264)"
    done_ h264.h264
fi
if need h265.h265; then
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc 320x240 5 h265-annexb)" \
        -c:v libx265 -preset veryfast -pix_fmt yuv420p \
        -x265-params keyint=50:min-keyint=50:scenecut=0:bframes=0:log-level=error -f hevc "$(tmp h265.h265)"
    done_ h265.h265
fi

# ------------------------------------------------------------------ photo
if need photo.jpg; then
    "${FF[@]}" -f lavfi -i "$(vsrc smptebars 640x360 1 photo)" -frames:v 1 -c:v mjpeg -q:v 3 \
        -f image2 -update 1 "$(tmp photo.jpg)"
    done_ photo.jpg
fi

# ------------------------------------- codecs / containers fMP4 cannot take
if need h264_g711.mkv; then
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc2 320x240 5 h264_g711)" -f lavfi -i "$(asrc 400 8000 5)" \
        "${X264[@]}" -c:a pcm_alaw -shortest -fflags +bitexact "$(tmp h264_g711.mkv)"
    done_ h264_g711.mkv
fi
if need mjpeg.avi; then
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc 320x240 4 mjpeg)" -f lavfi -i "$(asrc 500 16000 4)" \
        -c:v mjpeg -q:v 8 -pix_fmt yuvj420p -c:a pcm_s16le -shortest "$(tmp mjpeg.avi)"
    done_ mjpeg.avi
fi
# Body-worn-camera style AVI: H.264 (no B-frames, as their hardware encoders
# write; AVI has no PTS field) + 16 kHz mono PCM.
if need h264_pcm.avi; then
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc2 320x240 5 h264_pcm-avi)" -f lavfi -i "$(asrc 600 16000 5)" \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p -profile:v main -g 50 -keyint_min 50 -sc_threshold 0 -bf 0 \
        -c:a pcm_s16le -shortest "$(tmp h264_pcm.avi)"
    done_ h264_pcm.avi
fi
# AVI stores frames in decode order with no presentation times, so B-frames
# must be put back in order from the H.264 picture order counts. Recorders
# and their desktop tools write these too: with B-frames (x264's default
# pyramid), with MP3 instead of PCM, and an MP4 re-muxed into AVI by ffmpeg
# (`-c copy`: AVCC samples with codec_data, a doubled frame rate with empty
# chunks between the frames, AAC audio).
avi() { # NAME BFRAMES AUDIO-CODEC-ARGS... (6 s, 25 fps)
    local name=$1 bf=$2
    shift 2
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc2 320x240 6 "$name")" -f lavfi -i "$(asrc 700 44100 6)" \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 -bf "$bf" \
        "$@" -shortest "$(tmp "$name")"
    done_ "$name"
}
need h264_bframes_pcm.avi && avi h264_bframes_pcm.avi 3 -c:a pcm_s16le -ar 16000 -ac 1
need h264_mp3.avi && avi h264_mp3.avi 0 -c:a libmp3lame -b:a 64k
need h264_bframes_mp3.avi && avi h264_bframes_mp3.avi 3 -c:a libmp3lame -b:a 64k
if need h264_aac_copy.avi; then
    "${FF[@]}" -i "$OUT/h264_aac.mp4" -map 0 -c copy "$(tmp h264_aac_copy.avi)"
    done_ h264_aac_copy.avi
fi

# ------------------------------------------------------------- bad inputs
# truncate SRC NAME: first 55 % of the bytes of SRC (battery died mid-write).
truncate_copy() {
    local size
    size=$(stat -c %s "$OUT/$1")
    head -c $((size * 55 / 100)) "$OUT/$1" >"$(tmp "$2")"
    done_ "$2"
}
need truncated.ts && truncate_copy h264_aac.ts truncated.ts
need truncated.mkv && truncate_copy h264_aac.mkv truncated.mkv
# h264_aac.mp4 has its moov at the end, so the first 55 % has no moov at all.
need truncated.mp4 && truncate_copy h264_aac.mp4 truncated.mp4

# 2048 pseudo-random bytes (fixed seed, so the damage is reproducible)
# written over the middle of h264_aac.ts at an offset that is deliberately
# NOT a multiple of 188: it clobbers TS sync bytes mid-packet, so a demuxer
# must resynchronise, and damages ~11 TS packets' payloads (video PES data).
if need corrupt.ts; then
    size=$(stat -c %s "$OUT/h264_aac.ts")
    off=$(((size / 2 / 188) * 188 + 100))
    "${FF[@]}" -f lavfi -i anoisesrc=seed=20240611:color=white:amplitude=1:sample_rate=8000 \
        -t 0.2 -f s16le -c:a pcm_s16le "$OUT/.noise.bin"
    cp "$OUT/h264_aac.ts" "$(tmp corrupt.ts)"
    head -c 2048 "$OUT/.noise.bin" |
        dd of="$(tmp corrupt.ts)" bs=1 seek="$off" count=2048 conv=notrunc 2>/dev/null
    rm -f "$OUT/.noise.bin"
    done_ corrupt.ts
fi
# An MP4 trimmed by an edit list, as `ffmpeg -ss -c copy` makes it: one GOP
# of 20 s, the edit starting 14 s in (the first 14 s of frames are kept for
# decoding but not shown).
if need edit_trimmed.mp4; then
    "${FF[@]}" -f lavfi -i "$(vsrc testsrc2 320x240 20 edit_trimmed)" \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 600 -keyint_min 600 -sc_threshold 0 -bf 0 \
        "$OUT/.longgop.mp4"
    "${FF[@]}" -ss 14 -i "$OUT/.longgop.mp4" -c copy "$(tmp edit_trimmed.mp4)"
    rm -f "$OUT/.longgop.mp4"
    done_ edit_trimmed.mp4
fi
if need garbage.mp4; then
    head -c 204800 /dev/urandom >"$(tmp garbage.mp4)"
    done_ garbage.mp4
fi

# ---------------------------------------------------------------- manifest
describe() {
    case $1 in
    h264_aac.mp4) echo "H.264 High (libx264, GOP 50, 3 B-frames) + AAC-LC 48k mono, 6 s, 320x240 testsrc; moov at the END (no faststart): ingest must handle moov-after-mdat" ;;
    h264_aac_faststart.mp4) echo "same packets as h264_aac.mp4 (stream copy) with +faststart (moov first)" ;;
    h264_aac.mov) echo "same packets as h264_aac.mp4 in a QuickTime MOV" ;;
    h264_aac.ts) echo "same packets as h264_aac.mp4 in MPEG-TS (Annex-B H.264 with in-band SPS/PPS, ADTS AAC)" ;;
    h264_aac.mkv) echo "same packets as h264_aac.mp4 in Matroska" ;;
    h264_opengop_bframes.ts) echo "H.264 open GOP (non-IDR I keyframes + recovery-point SEI, leading B-frames reference the previous GOP), 3 B-frames, b-pyramid; 8 s testsrc2 + AAC; segmenting must not cut/flag non-IDR I frames naively" ;;
    h264_vfr.mp4) echo "variable frame rate H.264 (2 s @25, 2 s @15, 2 s @30 fps; 90 kHz timescale) + AAC; smptebars: segment durations/timestamps must follow the real frame times" ;;
    h265_aac.mp4) echo "H.265 Main (libx265, hvc1 tag, GOP 50, open GOP = x265 default: CRA keyframes with RASL leading pictures) + AAC, 640x360 testsrc2, 5 s" ;;
    h265_aac.ts) echo "same packets as h265_aac.mp4 in MPEG-TS (Annex-B with in-band VPS/SPS/PPS)" ;;
    gst_x264.ts) echo "MPEG-TS written by GStreamer: x264enc key-int-max=50 speed-preset=veryfast (the preset enables B-frames) + AAC (avenc_aac, else voaacenc/fdkaacenc) + mpegtsmux, 5 s ball pattern" ;;
    mpegps.mpg) echo "MPEG program stream (CCTV/DVR style) with H.264 (no B-frames) + AAC (ADTS), written by GStreamer mpegpsmux with a PSM; ffmpeg's PS muxer refuses AAC and writes no PSM (H.264 is then misdetected as MPEG-2 by mpegpsdemux); mpegpsmux writes broken DTS with B-frames" ;;
    audio.m4a) echo "audio-only AAC-LC in MP4 (44.1 kHz mono, 5 s)" ;;
    audio.aac) echo "audio-only raw ADTS AAC stream (44.1 kHz mono, 5 s)" ;;
    audio.wav) echo "audio-only PCM s16le WAV (16 kHz mono, 5 s): PCM is not a CMAF/browser codec; expect keep-original-only (or rejection)" ;;
    audio.mp3) echo "audio-only MP3 (libmp3lame 128k, 44.1 kHz mono, 5 s)" ;;
    long_h264_aac_frag.mp4) echo "the packets of long_h264_aac.mkv in a fragmented MP4 (empty moov with mvex, one moof per keyframe): remuxed while the upload is still arriving" ;;
    long_h264_aac.ts|long_h264_aac.mkv) echo "20 s H.264 + AAC, about 4 MB: remuxed while the upload is still arriving" ;;
    h264.h264) echo "raw Annex-B H.264 elementary stream (no container, no timestamps; GOP 50, no B-frames as hardware encoders write, frame rate only in the VUI), 5 s testsrc" ;;
    h265.h265) echo "raw Annex-B H.265 elementary stream (no container, no timestamps; GOP 50, open GOP, no B-frames), 5 s testsrc" ;;
    photo.jpg) echo "single JPEG still (640x360 smptebars): not a recording; keep original, no CMAF" ;;
    h264_g711.mkv) echo "H.264 + G.711 A-law (pcm_alaw 8 kHz) in Matroska: fMP4/CMAF cannot carry G.711 without transcoding" ;;
    mjpeg.avi) echo "MJPEG video + PCM s16le 16 kHz in AVI: no CMAF without transcoding" ;;
    h264_pcm.avi) echo "H.264 Main (no B-frames) + PCM s16le 16 kHz mono in AVI, as some body-worn cameras write; video can go to CMAF, PCM audio cannot" ;;
    h264_bframes_pcm.avi) echo "H.264 High with 3 B-frames (pyramid) + PCM 16 kHz in AVI (decode order only: presentation order must come from the POC), 6 s" ;;
    h264_mp3.avi) echo "H.264 (no B-frames) + MP3 44.1 kHz in AVI, 6 s; MP3 cannot go to CMAF" ;;
    h264_bframes_mp3.avi) echo "H.264 with 3 B-frames + MP3 in AVI, 6 s" ;;
    h264_aac_copy.avi) echo "h264_aac.mp4 re-muxed into AVI by ffmpeg -c copy: AVCC H.264 with codec_data and B-frames, 50/1 rate with empty chunks between frames, AAC audio" ;;
    truncated.ts) echo "first 55 % of h264_aac.ts (battery died mid-write): last PES incomplete" ;;
    truncated.mkv) echo "first 55 % of h264_aac.mkv: cluster cut mid-block, no cues/seekhead targets" ;;
    truncated.mp4) echo "first 55 % of h264_aac.mp4: mdat cut, moov missing entirely -> unplayable, must be kept and reported, not crash" ;;
    corrupt.ts) echo "h264_aac.ts with 2048 seeded pseudo-random bytes overwritten at a NON-188-aligned offset near the middle (sync bytes lost; demuxer must resync)" ;;
    edit_trimmed.mp4) echo "20 s H.264 in one GOP with an edit list starting 14 s in (ffmpeg -ss 14 -c copy): frames 10+ s before the start cannot be placed by the muxer; the self-check must fail it" ;;
    garbage.mp4) echo "200 KiB of /dev/urandom with an .mp4 name: must be rejected/kept as opaque, not crash" ;;
    *) echo "?" ;;
    esac
}
{
    echo "# Test media generated by tests/media/generate.sh ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    echo "# name<TAB>bytes<TAB>what it tests"
    for f in h264_aac.mp4 h264_aac_faststart.mp4 h264_aac.mov h264_aac.ts h264_aac.mkv \
        h264_opengop_bframes.ts h264_vfr.mp4 h265_aac.mp4 h265_aac.ts gst_x264.ts mpegps.mpg \
        audio.m4a audio.aac audio.wav audio.mp3 h264.h264 h265.h265 photo.jpg long_h264_aac.ts long_h264_aac.mkv \
        h264_g711.mkv mjpeg.avi h264_pcm.avi h264_bframes_pcm.avi h264_mp3.avi h264_bframes_mp3.avi h264_aac_copy.avi \
        truncated.ts truncated.mkv truncated.mp4 corrupt.ts edit_trimmed.mp4 garbage.mp4; do
        printf '%s\t%s\t%s\n' "$f" "$(stat -c %s "$OUT/$f")" "$(describe "$f")"
    done
} >"$OUT/MANIFEST.txt"

echo "done: $made generated, $kept already present, in $OUT" >&2

//! A recording over 4 GiB — an MP4 whose index needs 64-bit chunk offsets
//! (`co64`), the case where 32-bit assumptions break — is remuxed with flat
//! memory: the whole file never sits in memory, whatever its size.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_custody");

fn count_packets(file: &Path, stream: &str) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", stream, "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "ffprobe {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Whether the last `tail` bytes of an MP4 (where ffmpeg writes the index)
/// contain a 64-bit chunk offset table.
fn has_co64(file: &Path, tail: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(file).unwrap();
    let len = f.metadata().unwrap().len();
    f.seek(SeekFrom::Start(len.saturating_sub(tail))).unwrap();
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).unwrap();
    buf.windows(4).any(|w| w == b"co64")
}

#[test]
fn a_4_gib_mp4_with_64_bit_offsets_remuxes_in_bounded_memory() {
    let dir = tempfile::Builder::new()
        .prefix("custody-large-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    // A 20 s clip made by a real encoder, stream-copied end to end until the
    // file passes 4 GiB: about 6 hours of media.
    let clip = dir.path().join("clip.ts");
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=25:duration=20")
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:sample_rate=48000:duration=20",
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-b:v", "1500k",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(st.success());
    let clip_len = std::fs::metadata(&clip).unwrap().len();
    // MP4 is leaner than TS (no packetisation overhead): aim well past 4 GiB.
    let loops = (4.8e9 / clip_len as f64).ceil() as u64;
    let big = dir.path().join("long.mp4");
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-stream_loop"])
        .arg(loops.to_string())
        .arg("-i")
        .arg(&clip)
        .args(["-c", "copy", "-f", "mp4"])
        .arg(&big)
        .status()
        .unwrap();
    assert!(st.success());
    let size = std::fs::metadata(&big).unwrap().len();
    assert!(size > 4 << 30, "{size} bytes");
    assert!(has_co64(&big, 64 << 20), "ffmpeg wrote no co64 box");

    // Remux, measuring the process's peak resident memory.
    let out_dir = dir.path().join("derived");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kib %M"])
        .arg(BIN)
        .args([
            "remux",
            "--pipelines",
            concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines"),
        ])
        .arg(&big)
        .arg(&out_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let rss_kib: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {err}"));
    println!(
        "remuxed {size} bytes with a peak RSS of {} MiB",
        rss_kib / 1024
    );
    // Flat memory: a small fraction of the file, independent of its size.
    assert!(rss_kib < 256 * 1024, "peak RSS {rss_kib} KiB");

    // Every frame came through: concatenate init and segments and count.
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["status"], "derived");
    let derived = dir.path().join("derived.mp4");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&derived).unwrap());
        f.write_all(&std::fs::read(out_dir.join("init.mp4")).unwrap())
            .unwrap();
        for s in d["segments"].as_array().unwrap() {
            let mut r = std::fs::File::open(out_dir.join(s["name"].as_str().unwrap())).unwrap();
            std::io::copy(&mut r, &mut f).unwrap();
        }
    }
    assert_eq!(count_packets(&big, "v:0"), count_packets(&derived, "v:0"));
    // Every audio frame too, the last one included (qtdemux 1.22.0 leaves
    // it out; the gateway hands it on from the file's sample tables, read
    // through its 64-bit chunk offsets).
    assert_eq!(count_packets(&big, "a:0"), count_packets(&derived, "a:0"));
    let last_end = d["segments"].as_array().unwrap().last().unwrap()["end"]
        .as_f64()
        .unwrap();
    assert!(last_end > 4.0 * 3600.0, "derivative ends at {last_end} s");
}

//! Remux throughput on a ~600 MB 1080p H.264 + AAC MPEG-TS recording:
//! custody's remux + hash path (`custody remux`: typefind, GStreamer
//! pipeline with isofmp4mux, SHA-256 and fsync of every segment) next to
//! `ffmpeg -c copy -f hls -hls_segment_type fmp4` and a gst-launch-1.0
//! fragmented-MP4 pipeline, measured in the same run.
//!
//! Run: `cargo bench --bench remux_throughput` (BENCH_RUNS=N, default 3;
//! the input is generated once into target/bench-media).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_custody");

fn run(name: &str, cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{name}: {e}"));
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

fn input() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-media");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("1080p_h264_aac_10min.ts");
    if out.exists() {
        return out;
    }
    // One minute encoded by x264 at about 8.5 Mbit/s, stream-copied ten times.
    let minute = dir.join("1080p_1min.ts");
    let st = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=1920x1080:rate=25:duration=60")
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=500:sample_rate=48000:duration=60",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "8500k",
            "-maxrate",
            "8500k",
        ])
        .args([
            "-bufsize", "17M", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
        ])
        .arg(&minute)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-stream_loop", "9", "-i"])
        .arg(&minute)
        .args(["-c", "copy", "-f", "mpegts"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let input = input();
    let size = std::fs::metadata(&input).unwrap().len();
    let work = tempfile::tempdir_in(Path::new(env!("CARGO_MANIFEST_DIR")).join("target")).unwrap();
    // Warm the page cache.
    let _ = std::fs::read(&input);
    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        (
            "custody remux (GStreamer isofmp4mux + SHA-256 + fsync per segment)",
            vec![],
        ),
        ("ffmpeg -c copy -f hls -hls_segment_type fmp4", vec![]),
        (
            "gst-launch-1.0 tsdemux ! h264parse/aacparse ! mp4mux fragment-duration=2000",
            vec![],
        ),
    ];
    for i in 0..runs {
        let out = work.path().join(format!("custody-{i}"));
        rows[0].1.push(run(
            "custody remux",
            Command::new(BIN)
                .args([
                    "remux",
                    "--pipelines",
                    concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines"),
                ])
                .arg(&input)
                .arg(&out),
        ));
        let _ = std::fs::remove_dir_all(&out);
        let hls = work.path().join(format!("hls-{i}"));
        std::fs::create_dir_all(&hls).unwrap();
        rows[1].1.push(run(
            "ffmpeg hls",
            Command::new("ffmpeg")
                .args(["-y", "-loglevel", "error", "-i"])
                .arg(&input)
                .args([
                    "-c",
                    "copy",
                    "-bsf:a",
                    "aac_adtstoasc",
                    "-f",
                    "hls",
                    "-hls_segment_type",
                    "fmp4",
                    "-hls_time",
                    "2",
                ])
                .args(["-hls_playlist_type", "vod"])
                .arg(hls.join("index.m3u8")),
        ));
        let _ = std::fs::remove_dir_all(&hls);
        let gst_out = work.path().join(format!("gst-{i}.mp4"));
        rows[2].1.push(run(
            "gst-launch",
            Command::new("gst-launch-1.0")
                .arg("-q")
                .arg("filesrc")
                .arg(format!("location={}", input.display()))
                .args(["!", "tsdemux", "name=d"])
                .args(["d.", "!", "queue", "!", "h264parse", "!", "m."])
                .args(["d.", "!", "queue", "!", "aacparse", "!", "m."])
                .args([
                    "mp4mux",
                    "name=m",
                    "fragment-duration=2000",
                    "!",
                    "filesink",
                ])
                .arg(format!("location={}", gst_out.display())),
        ));
        let _ = std::fs::remove_file(&gst_out);
    }
    println!(
        "remux throughput, {:.0} MB 1080p H.264 + AAC MPEG-TS, median of {runs}",
        size as f64 / 1e6
    );
    println!("| path | seconds | MB/s |");
    println!("|---|---|---|");
    let ffmpeg = median(rows[1].1.clone());
    for (name, v) in &rows {
        let m = median(v.clone());
        println!("| {name} | {m:.2} | {:.0} |", size as f64 / 1e6 / m);
    }
    println!(
        "custody / ffmpeg throughput ratio: {:.2}",
        ffmpeg / median(rows[0].1.clone())
    );
}

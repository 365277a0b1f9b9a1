//! A plain S3 upload, the baseline benchmarks compare custody's storage
//! path with: aws-sdk-s3 multipart, nothing of custody's in between.

use std::path::Path;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::io::AsyncReadExt;

use super::Garage;

/// The baseline upload: aws-sdk-s3 multipart, 16 MiB parts, 4 in flight,
/// no checksums beyond what the SDK requires.
pub async fn plain_s3_upload(g: &Garage, path: &Path, size: u64) -> f64 {
    let creds =
        aws_sdk_s3::config::Credentials::new(&g.access_key, &g.secret_key, None, None, "bench");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("garage"))
        .endpoint_url(&g.endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    let key = format!(
        "bench/plain-{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let t = Instant::now();
    let up = client
        .create_multipart_upload()
        .bucket(&g.bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let part = 16u64 << 20;
    let mut f = tokio::fs::File::open(path).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    let mut parts = Vec::new();
    let mut n = 0i32;
    let mut off = 0;
    while off < size {
        let len = part.min(size - off) as usize;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf).await.unwrap();
        n += 1;
        while set.len() >= 4 {
            parts.push(set.join_next().await.unwrap().unwrap());
        }
        let (c, b, k, i) = (client.clone(), g.bucket.clone(), key.clone(), id.clone());
        set.spawn(async move {
            let r = c
                .upload_part()
                .bucket(b)
                .key(k)
                .upload_id(i)
                .part_number(n)
                .body(ByteStream::from(buf))
                .send()
                .await
                .unwrap();
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(r.e_tag().map(str::to_string))
                .build()
        });
        off += len as u64;
    }
    while let Some(p) = set.join_next().await {
        parts.push(p.unwrap());
    }
    parts.sort_by_key(|p| p.part_number());
    client
        .complete_multipart_upload()
        .bucket(&g.bucket)
        .key(&key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    t.elapsed().as_secs_f64()
}

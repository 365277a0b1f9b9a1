//! Where the store is: an S3 bucket (`[store] bucket`) or a local directory.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// S3 bucket; when absent, objects go to `local_dir`.
    pub bucket: Option<String>,
    /// S3 endpoint URL; else `AWS_ENDPOINT_URL` or AWS's own.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most
    /// self-hosted stores need.
    pub path_style: bool,
    pub local_dir: PathBuf,
    /// Multipart part size.
    pub part_size_mib: u64,
    /// Parts in flight per object.
    pub concurrency: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            bucket: None,
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            path_style: true,
            local_dir: "var/store".into(),
            part_size_mib: 16,
            concurrency: 4,
        }
    }
}

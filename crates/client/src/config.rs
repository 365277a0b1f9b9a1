//! Where a device finds its gateway and its credentials (`[client]` in
//! `custody.toml`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Gateway address, `host:port`; several gateways of one cluster
    /// separated by commas (a name with several addresses counts as
    /// several). The device keeps to the one that last worked and moves on
    /// to the next when it cannot connect or its connection is lost.
    pub gateway: String,
    /// Name the gateway's certificate must carry.
    pub server_name: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            gateway: "127.0.0.1:4433".into(),
            server_name: "localhost".into(),
            ca: "certs/ca.pem".into(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
        }
    }
}

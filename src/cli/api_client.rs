//! The CLI's client for the command center's API: records-office actions
//! (retention, marks, two-person requests) go through the gateway, so the
//! viewer is authenticated and every action lands in the audit trail.

use std::path::PathBuf;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How to reach the API and who is asking.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The command center, e.g. https://gateway.example.org:8443 (default:
    /// `[http] listen` of the configuration, at `[client] server_name`).
    #[arg(long)]
    pub url: Option<String>,
    /// The viewer's login token (from `custody viewer-token`).
    #[arg(long, env = "CUSTODY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the token (used over CUSTODY_TOKEN when given).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

pub struct Api {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    token: String,
}

impl Api {
    pub fn new(a: &ApiArgs) -> anyhow::Result<Api> {
        let cfg = super::load_config(a.config.as_deref())?;
        let token = match (&a.token_file, &a.token) {
            (Some(f), _) => std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .trim()
                .to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => anyhow::bail!("give --token, --token-file or CUSTODY_TOKEN"),
        };
        let base = match &a.url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let listen = cfg
                    .http
                    .listen
                    .as_deref()
                    .context("no --url and no [http] listen in the configuration")?;
                let port = listen.rsplit(':').next().unwrap_or("443");
                let scheme = if cfg.http.tls { "https" } else { "http" };
                format!("{scheme}://{}:{port}", cfg.client.server_name)
            }
        };
        let mut roots = rustls::RootCertStore::empty();
        let ca = if cfg.client.ca.exists() {
            &cfg.client.ca
        } else {
            &cfg.tls.ca
        };
        for c in custody::quic::load_certs(ca)? {
            roots.add(c)?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Api {
            client: Client::builder(TokioExecutor::new()).build(https),
            base,
            token,
        })
    }

    /// A request; the response body as bytes, or an error naming the
    /// gateway's reason.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<Bytes> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Full::new(Bytes::from(serde_json::to_vec(&b)?))
            }
            None => Full::new(Bytes::new()),
        };
        let resp = self
            .client
            .request(req.body(body)?)
            .await
            .with_context(|| format!("{method} {}{path}", self.base))?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let why = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            anyhow::bail!("the gateway answered {status}: {why}");
        }
        Ok(bytes)
    }

    pub async fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(
            &self.call(method, path, body).await?,
        )?)
    }
}

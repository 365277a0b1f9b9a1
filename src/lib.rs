//! custody — an ingest gateway for law-enforcement audio-visual records.
//!
//! This package is the `custody` command line (`src/main.rs`, `src/cli/`)
//! over the workspace's crates (docs/architecture.md). Its library re-exports
//! them under the paths the command line, the integration tests, the benches
//! and the fuzz targets use, and holds the fuzz entry points.

pub use custody_client as client;
pub use custody_format::{chain, clock, limits, manifest, metadata, text, time_fmt};
pub use custody_gateway::*;
pub use custody_media as pipeline;
pub use custody_media::derive;
pub use custody_proto as protocol;
pub use custody_store as store;
pub use custody_transport::{congestion, identity, quic};
pub use custody_verify as verify;
pub use custody_verify::locate;

pub mod fuzzing;

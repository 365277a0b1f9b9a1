//! custody — an ingest gateway for law-enforcement audio-visual records.
//!
//! Data flows through the modules in this order:
//! [`quic`] endpoint → [`session`] → [`spool`] → [`chain`]/[`manifest`] →
//! [`archive`] → [`store`]; beside it the [`ledger`] (who may connect),
//! [`usage`] (what they did), [`verify`] (checking storage independently),
//! [`pki`] (certificates) and the device side in [`client`].

// The storage format, its own crate; re-exported under the paths the
// rest of this crate and the tests use.
pub use custody_format::{chain, clock, limits, manifest, metadata, text, time_fmt};
pub use custody_media as pipeline;
pub use custody_media::derive;
pub use custody_proto as protocol;
pub use custody_store as store;
pub use custody_transport::{congestion, identity, quic};
pub use custody_verify as verify;
pub use custody_verify::locate;

pub mod annotate;
pub mod archive;
pub mod catalog;
pub mod checkpoint;
pub mod config;
pub mod export;
pub mod gateway;
pub mod inventory;
pub mod ledger;
pub mod link;
pub mod live;
pub mod metrics;
pub mod pki;
pub mod policy;
pub mod rederive;
pub mod session;
pub mod signing;
pub mod spool;
pub mod usage;
pub mod view;

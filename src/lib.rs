//! custody — an ingest gateway for law-enforcement audio-visual records.
//!
//! Data flows through the modules in this order:
//! [`quic`] endpoint → [`session`] → [`spool`] → [`chain`]/[`manifest`] →
//! [`archive`] → [`store`]; beside it the [`ledger`] (who may connect),
//! [`usage`] (what they did), [`verify`] (checking storage independently),
//! [`pki`] (certificates) and the device side in [`client`].

pub mod annotate;
pub mod archive;
pub mod catalog;
pub mod chain;
pub mod checkpoint;
pub mod client;
pub mod clock;
pub mod config;
pub mod congestion;
pub mod derive;
pub mod export;
pub mod fuzzing;
pub mod gateway;
pub mod identity;
pub mod inventory;
pub mod ledger;
pub mod limits;
pub mod link;
pub mod live;
pub mod locate;
pub mod manifest;
pub mod metadata;
pub mod metrics;
pub mod pipeline;
pub mod pki;
pub mod policy;
pub mod protocol;
pub mod quic;
pub mod rederive;
pub mod session;
pub mod signing;
pub mod spool;
pub mod store;
pub mod text;
pub mod time_fmt;
pub mod usage;
pub mod verify;
pub mod view;

//! The custody gateway: ingest ([`session`] → [`spool`]), records
//! ([`archive`] → storage; [`annotate`], [`link`], [`catalog`],
//! [`inventory`], [`usage`], [`policy`], [`export`]), live recordings
//! ([`live`]) and the command center ([`view`]), over the lower crates
//! (`docs/architecture.md`): custody-format, -proto, -fs, -store, -media,
//! -verify, -transport and -client. [`shared`] is the state they share;
//! [`gateway`] starts it all.

pub mod annotate;
pub mod archive;
pub mod catalog;
pub mod checkpoint;
pub mod config;
pub mod export;
mod finish;
pub mod gateway;
pub mod ingest;
pub mod inventory;
pub mod lease;
pub mod ledger;
pub mod link;
pub mod live;
#[cfg(test)]
mod manifest_golden;
pub mod metrics;
pub mod pki;
pub mod policy;
pub mod records_office;
pub mod rederive;
pub mod session;
pub mod shared;
pub mod signing;
pub mod spool;
pub mod staging;
pub mod tasks;
pub mod upload_ahead;
pub mod usage;
pub mod view;

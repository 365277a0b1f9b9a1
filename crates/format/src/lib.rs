//! The custody storage format (`docs/manifest.md`) as plain types: what a
//! gateway writes and a verifier reads. No I/O and no async runtime, so that
//! anyone can read custody's evidence with these types alone.
//!
//! Modules, lowest first: [`limits`], [`text`], [`clock`] → [`time_fmt`] →
//! [`chain`] → [`metadata`] → [`retention`], [`deadline`],
//! [`confidentiality`] → [`manifest`] → [`layout`] (every storage key) →
//! [`locator`], [`journal`], [`checkpoint`], [`annotation`], [`link`].

pub mod annotation;
pub mod catalog;
pub mod chain;
pub mod checkpoint;
pub mod clock;
pub mod closing;
pub mod confidentiality;
pub mod deadline;
pub mod journal;
pub mod layout;
pub mod limits;
pub mod link;
pub mod locator;
pub mod manifest;
pub mod metadata;
pub mod retention;
pub mod text;
pub mod time_fmt;

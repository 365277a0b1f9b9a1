//! QUIC between devices and the gateway: the endpoint with mutual TLS
//! ([`quic`]), the congestion controller tuned for lossy radio links
//! ([`congestion`]) and the device identity read from a client certificate
//! ([`identity`]). Shared by the device client and the gateway.

pub mod congestion;
pub mod identity;
pub mod quic;

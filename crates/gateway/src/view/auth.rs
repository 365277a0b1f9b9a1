//! Who is asking, and may they see it. Viewers come from the configuration;
//! they log in with a token (kept only as its SHA-256) or a client
//! certificate naming them, and get a session cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde::Serialize;

use super::listener::Peer;
use crate::config::{ViewerConfig, ViewerRole};

pub const COOKIE: &str = "custody_session";
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub name: String,
    pub role: ViewerRole,
    pub unit: String,
    /// Confidentiality marks this viewer is cleared for (R6).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clearances: Vec<custody_format::confidentiality::Mark>,
}

pub struct Auth {
    viewers: Vec<ViewerConfig>,
    sessions: Mutex<HashMap<String, (String, Instant)>>,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// 401: nobody logged in.
    Unauthenticated,
    /// 403: logged in, but not allowed this.
    Forbidden,
}

fn random_id() -> String {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("randomness");
    hex::encode(b)
}

/// Constant-time comparison of two hex digests.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Auth {
    pub fn new(viewers: Vec<ViewerConfig>) -> Self {
        Auth {
            viewers,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn principal(v: &ViewerConfig) -> Principal {
        Principal {
            name: v.name.clone(),
            role: v.role,
            unit: v.unit.clone(),
            clearances: v.clearances.clone(),
        }
    }

    fn by_token(&self, token: &str) -> Option<&ViewerConfig> {
        let h = hex::encode(custody_format::chain::sha256(token.as_bytes()));
        self.viewers.iter().find(|v| {
            v.token_sha256
                .as_deref()
                .is_some_and(|t| same(&t.to_ascii_lowercase(), &h))
        })
    }

    /// A token login: a new session id, or `None`.
    pub fn login(&self, token: &str) -> Option<(String, Principal)> {
        let v = self.by_token(token)?;
        let id = random_id();
        let mut s = self.sessions.lock().expect("sessions");
        s.retain(|_, (_, t)| t.elapsed() < SESSION_LIFETIME);
        s.insert(id.clone(), (v.name.clone(), Instant::now()));
        Some((id, Self::principal(v)))
    }

    /// Ends a session by its id.
    pub fn end_session(&self, id: &str) {
        self.sessions.lock().expect("sessions").remove(id);
    }

    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.sessions.lock().expect("sessions").remove(&id);
        }
    }

    /// The viewer behind a request: session cookie, bearer token, or client
    /// certificate.
    pub fn who(&self, headers: &HeaderMap, peer: &Peer) -> Option<Principal> {
        if let Some(id) = cookie(headers) {
            let s = self.sessions.lock().expect("sessions");
            if let Some((name, t)) = s.get(&id)
                && t.elapsed() < SESSION_LIFETIME
            {
                return self
                    .viewers
                    .iter()
                    .find(|v| &v.name == name)
                    .map(Self::principal);
            }
        }
        if let Some(token) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            return self.by_token(token.trim()).map(Self::principal);
        }
        if let Some(name) = &peer.viewer {
            return self
                .viewers
                .iter()
                .find(|v| &v.name == name)
                .map(Self::principal);
        }
        None
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

impl Principal {
    /// Live feeds: supervisors all, operators their unit's, auditors none.
    pub fn may_watch_live(&self, unit: &str) -> bool {
        match self.role {
            ViewerRole::Supervisor => true,
            ViewerRole::Operator => !self.unit.is_empty() && self.unit == unit,
            ViewerRole::Auditor => false,
        }
    }

    /// Stored recordings: supervisors and auditors.
    pub fn may_open_stored(&self) -> bool {
        matches!(self.role, ViewerRole::Supervisor | ViewerRole::Auditor)
    }

    /// A recording with these confidentiality marks (R6).
    pub fn cleared_for(&self, marks: &[custody_format::confidentiality::Mark]) -> bool {
        custody_format::confidentiality::cleared(&self.clearances, marks)
    }

    /// Raising retention, marking recordings, approving requests.
    pub fn may_decide(&self) -> bool {
        self.role == ViewerRole::Supervisor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(name: &str, role: ViewerRole, unit: &str, token: &str) -> ViewerConfig {
        ViewerConfig {
            name: name.into(),
            role,
            unit: unit.into(),
            token_sha256: Some(hex::encode(custody_format::chain::sha256(token.as_bytes()))),
            clearances: Vec::new(),
        }
    }

    #[test]
    fn roles_table() {
        let a = Auth::new(vec![
            viewer("op", ViewerRole::Operator, "market", "t-op"),
            viewer("sup", ViewerRole::Supervisor, "", "t-sup"),
            viewer("aud", ViewerRole::Auditor, "", "t-aud"),
        ]);
        let peer = Peer {
            addr: "127.0.0.1:1".parse().unwrap(),
            viewer: None,
        };
        assert!(a.login("wrong").is_none());
        let cases = [
            ("t-op", true, false, false),
            ("t-sup", true, true, true),
            ("t-aud", false, false, true),
        ];
        for (token, market, traffic, stored) in cases {
            let (id, _) = a.login(token).unwrap();
            let mut h = HeaderMap::new();
            h.insert(
                axum::http::header::COOKIE,
                format!("x=1; {COOKIE}={id}").parse().unwrap(),
            );
            let p = a.who(&h, &peer).unwrap();
            assert_eq!(p.may_watch_live("market"), market, "{token}");
            assert_eq!(p.may_watch_live("traffic"), traffic, "{token}");
            assert_eq!(p.may_open_stored(), stored, "{token}");
            a.logout(&h);
            assert!(a.who(&h, &peer).is_none());
        }
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Bearer t-aud".parse().unwrap(),
        );
        assert_eq!(a.who(&h, &peer).unwrap().name, "aud");
        let certified = Peer {
            viewer: Some("sup".into()),
            ..peer
        };
        assert_eq!(a.who(&HeaderMap::new(), &certified).unwrap().name, "sup");
    }
}

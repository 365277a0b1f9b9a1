//! The device ledger (台账, R1): officers, devices, custodians and who each
//! device is assigned to over time. The gateway admits a device only if the
//! ledger lists it as active and currently assigned to enforcement staff.
//!
//! The ledger is a TOML file the records office maintains; the gateway
//! re-reads it whenever it changes, so revocations take effect at the next
//! connection without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use custody_format::metadata::{DeviceKind, valid_id};
use custody_proto::CloseCode;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Officer {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub unit: String,
    /// Whether this person is administrative-enforcement staff; the
    /// regulation forbids equipping anyone else with recording devices.
    pub enforcement: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub officer: String,
    /// Start of the assignment; absent means "since the device was registered".
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    /// End of the assignment; absent means it is still in force.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
}

impl Assignment {
    fn covers(&self, at: OffsetDateTime) -> bool {
        self.from.is_none_or(|f| f <= at) && self.until.is_none_or(|u| at < u)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub id: String,
    pub kind: DeviceKind,
    /// The named person responsible for the device (专人负责).
    pub custodian: String,
    #[serde(default)]
    pub unit: String,
    pub status: DeviceStatus,
    #[serde(default, rename = "assignment")]
    pub assignments: Vec<Assignment>,
    /// A fixed camera the gateway pulls over RTSP (`[device.rtsp]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtsp: Option<RtspCamera>,
    /// A device that pushes over SRT to its own port (`[device.srt]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srt: Option<SrtDevice>,
}

/// The gateway's SRT port for one device and the passphrase its caller
/// must know (and name the device in its stream id). The passphrase is
/// never written anywhere else.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrtDevice {
    pub port: u16,
    #[serde(skip_serializing)]
    pub passphrase: String,
}

impl std::fmt::Debug for SrtDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtDevice")
            .field("port", &self.port)
            .field("passphrase", &"…")
            .finish()
    }
}

impl SrtDevice {
    fn check(&self) -> Result<(), String> {
        if self.port == 0 {
            return Err("port 0 is not a port".into());
        }
        // libsrt's limits; a shorter one would be refused at every call.
        let n = self.passphrase.chars().count();
        if !(10..=79).contains(&n) {
            return Err(format!(
                "the passphrase has {n} characters; SRT needs 10 to 79"
            ));
        }
        Ok(())
    }
}

/// Where a fixed camera serves its stream and the credentials the gateway
/// presents. The password is never written anywhere else (not in headers,
/// logs or usage records); the URL may not carry credentials itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtspCamera {
    /// `rtsp://host[:port]/path`.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// `tcp` (default): RTP interleaved on the RTSP connection; `udp`.
    #[serde(default)]
    pub transport: RtspTransport,
}

impl std::fmt::Debug for RtspCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspCamera")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("transport", &self.transport)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    #[default]
    Tcp,
    Udp,
}

impl RtspCamera {
    fn check(&self) -> Result<(), String> {
        let rest = self
            .url
            .strip_prefix("rtsp://")
            .ok_or("the URL must start with rtsp://")?;
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() {
            return Err("the URL names no host".into());
        }
        if authority.contains('@') {
            return Err("credentials belong in username/password, not in the URL".into());
        }
        if self.url.len() > 1024 || self.url.chars().any(|c| c.is_control() || c == ' ') {
            return Err("the URL is too long or has spaces or control characters".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    #[serde(default, rename = "officer")]
    pub officers: Vec<Officer>,
    #[serde(default, rename = "device")]
    pub devices: Vec<Device>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Why a device was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: CloseCode,
    pub reason: String,
}

/// The ledger's view of an admitted device at the moment of admission;
/// copied into every header document so the record shows who held the
/// device when it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    pub device: String,
    pub kind: DeviceKind,
    pub officer: String,
    pub officer_name: String,
    pub enforcement: bool,
    pub custodian: String,
    pub unit: String,
}

pub use custody_format::manifest::{DeviceStatus, LedgerView};

impl Ledger {
    /// What the ledger says about `device_id` at `at`.
    pub fn view(&self, device_id: &str, at: OffsetDateTime) -> Option<LedgerView> {
        let d = self.device(device_id)?;
        let o = self.assignee(d, at);
        Some(LedgerView {
            device: d.id.clone(),
            kind: d.kind,
            status: d.status,
            custodian: d.custodian.clone(),
            unit: d.unit.clone(),
            officer: o.map(|o| o.id.clone()),
            officer_name: o.map(|o| o.name.clone()),
            enforcement: o.map(|o| o.enforcement),
        })
    }

    pub fn parse(text: &str, path: &Path) -> Result<Ledger, LedgerError> {
        let ledger: Ledger = toml::from_str(text).map_err(|source| LedgerError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        ledger.check().map_err(|reason| LedgerError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(ledger)
    }

    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        let mut ports = std::collections::HashSet::new();
        for o in &self.officers {
            if !valid_id(&o.id) {
                return Err(format!("officer id {:?} is not a valid id", o.id));
            }
            if !seen.insert(("o", o.id.as_str())) {
                return Err(format!("officer {} listed twice", o.id));
            }
        }
        for d in &self.devices {
            if !valid_id(&d.id) {
                return Err(format!("device id {:?} is not a valid id", d.id));
            }
            if !seen.insert(("d", d.id.as_str())) {
                return Err(format!("device {} listed twice", d.id));
            }
            if let Some(r) = &d.rtsp {
                r.check()
                    .map_err(|e| format!("device {}: rtsp: {e}", d.id))?;
            }
            if let Some(s) = &d.srt {
                s.check()
                    .map_err(|e| format!("device {}: srt: {e}", d.id))?;
                if d.rtsp.is_some() {
                    return Err(format!("device {}: rtsp and srt both given", d.id));
                }
                if !ports.insert(s.port) {
                    return Err(format!(
                        "device {}: SRT port {} is another device's",
                        d.id, s.port
                    ));
                }
            }
            for a in &d.assignments {
                if self.officer(&a.officer).is_none() {
                    return Err(format!(
                        "device {} is assigned to unknown officer {}",
                        d.id, a.officer
                    ));
                }
                if let (Some(f), Some(u)) = (a.from, a.until)
                    && u <= f
                {
                    return Err(format!("device {}: assignment ends before it starts", d.id));
                }
            }
        }
        Ok(())
    }

    pub fn officer(&self, id: &str) -> Option<&Officer> {
        self.officers.iter().find(|o| o.id == id)
    }

    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.iter()
    }

    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// The officer a device is assigned to at `at`, if any.
    pub fn assignee(&self, device: &Device, at: OffsetDateTime) -> Option<&Officer> {
        device
            .assignments
            .iter()
            .rev()
            .find(|a| a.covers(at))
            .and_then(|a| self.officer(&a.officer))
    }

    /// Decides whether `device_id` may connect at `at`.
    pub fn admit(&self, device_id: &str, at: OffsetDateTime) -> Result<Admission, Refusal> {
        let refuse = |code, reason: String| Err(Refusal { code, reason });
        let Some(d) = self.device(device_id) else {
            return refuse(
                CloseCode::DeviceUnknown,
                format!("device {device_id} is not in the ledger"),
            );
        };
        if d.status == DeviceStatus::Revoked {
            return refuse(
                CloseCode::DeviceRevoked,
                format!("device {device_id} is revoked in the ledger"),
            );
        }
        let Some(o) = self.assignee(d, at) else {
            return refuse(
                CloseCode::DeviceUnassigned,
                format!("device {device_id} is not assigned to any officer now"),
            );
        };
        if !o.enforcement {
            return refuse(
                CloseCode::OfficerNotEnforcement,
                format!(
                    "device {device_id} is assigned to {} who is not enforcement staff",
                    o.id
                ),
            );
        }
        Ok(Admission {
            device: d.id.clone(),
            kind: d.kind,
            officer: o.id.clone(),
            officer_name: o.name.clone(),
            enforcement: o.enforcement,
            custodian: d.custodian.clone(),
            unit: d.unit.clone(),
        })
    }
}

/// A ledger file that is re-read when it changes on disk. A change that
/// fails to parse is reported and the previous ledger stays in force.
#[derive(Debug, Clone)]
pub struct LedgerFile {
    path: PathBuf,
    state: Arc<Mutex<(Option<SystemTime>, Arc<Ledger>)>>,
}

impl LedgerFile {
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, LedgerError> {
        let path = path.into();
        let (mtime, ledger) = Self::read(&path)?;
        Ok(LedgerFile {
            path,
            state: Arc::new(Mutex::new((mtime, Arc::new(ledger)))),
        })
    }

    fn read(path: &Path) -> Result<(Option<SystemTime>, Ledger), LedgerError> {
        let io = |source| LedgerError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mtime = std::fs::metadata(path).map_err(io)?.modified().ok();
        let text = std::fs::read_to_string(path).map_err(io)?;
        Ok((mtime, Ledger::parse(&text, path)?))
    }

    /// The current ledger, re-read first if the file changed.
    pub fn current(&self) -> Arc<Ledger> {
        let mtime = std::fs::metadata(&self.path)
            .ok()
            .and_then(|m| m.modified().ok());
        let mut st = self.state.lock().expect("ledger lock");
        if mtime.is_some() && mtime != st.0 {
            match Self::read(&self.path) {
                Ok((m, l)) => {
                    tracing::info!(path = %self.path.display(), "ledger reloaded");
                    *st = (m, Arc::new(l));
                }
                Err(e) => {
                    tracing::error!("ledger change not applied: {e}");
                    st.0 = mtime;
                }
            }
        }
        st.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const LEDGER: &str = r#"
[[officer]]
id = "o-1"
name = "Zhang Wei"
unit = "market"
enforcement = true

[[officer]]
id = "clerk-1"
enforcement = false

[[device]]
id = "bwc-1"
kind = "body-worn-recorder"
custodian = "Li Na"
status = "active"
[[device.assignment]]
officer = "o-1"
from = "2026-01-01T00:00:00Z"

[[device]]
id = "bwc-2"
kind = "body-worn-recorder"
custodian = "Li Na"
status = "revoked"
[[device.assignment]]
officer = "o-1"

[[device]]
id = "cam-1"
kind = "camera"
custodian = "Li Na"
status = "active"
[[device.assignment]]
officer = "clerk-1"

[[device]]
id = "bwc-3"
kind = "body-worn-recorder"
custodian = "Li Na"
status = "active"
[[device.assignment]]
officer = "o-1"
until = "2026-06-01T00:00:00Z"
"#;

    #[test]
    fn admission_table() {
        let l = Ledger::parse(LEDGER, Path::new("t")).unwrap();
        let now = datetime!(2026-11-30 00:00 UTC);
        let cases = [
            ("bwc-1", None),
            ("nobody", Some(CloseCode::DeviceUnknown)),
            ("bwc-2", Some(CloseCode::DeviceRevoked)),
            ("cam-1", Some(CloseCode::OfficerNotEnforcement)),
            ("bwc-3", Some(CloseCode::DeviceUnassigned)),
        ];
        for (dev, want) in cases {
            let got = l.admit(dev, now).err().map(|r| r.code);
            assert_eq!(got, want, "{dev}");
        }
        let a = l.admit("bwc-1", now).unwrap();
        assert_eq!(a.officer, "o-1");
        assert_eq!(a.custodian, "Li Na");
        // Before the assignment began, the device had nobody.
        assert_eq!(
            l.admit("bwc-1", datetime!(2025-12-31 00:00 UTC))
                .unwrap_err()
                .code,
            CloseCode::DeviceUnassigned
        );
        // bwc-3 was assigned in the first half of the year.
        assert!(l.admit("bwc-3", datetime!(2026-03-01 00:00 UTC)).is_ok());
    }

    #[test]
    fn invalid_ledgers_are_refused_with_reasons() {
        for (text, want) in [
            (
                "[[device]]\nid=\"d\"\nkind=\"camera\"\ncustodian=\"c\"\nstatus=\"active\"\n[[device.assignment]]\nofficer=\"ghost\"\n",
                "unknown officer ghost",
            ),
            (
                "[[officer]]\nid=\"a/b\"\nenforcement=true\n",
                "not a valid id",
            ),
            (
                "[[device]]\nid=\"d\"\nkind=\"toaster\"\ncustodian=\"c\"\nstatus=\"active\"\n",
                "unknown variant",
            ),
        ] {
            let e = Ledger::parse(text, Path::new("l.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn rtsp_cameras_are_checked_and_their_passwords_kept_in() {
        let cam = |rtsp: &str| {
            format!(
                "[[device]]\nid=\"cam-9\"\nkind=\"surveillance-camera\"\ncustodian=\"c\"\nstatus=\"active\"\n[device.rtsp]\n{rtsp}\n"
            )
        };
        let ok = cam("url=\"rtsp://10.0.0.5:554/stream1\"\nusername=\"u\"\npassword=\"secret-pw\"");
        let l = Ledger::parse(&ok, Path::new("l.toml")).unwrap();
        let r = l.device("cam-9").unwrap().rtsp.clone().unwrap();
        assert_eq!(r.transport, RtspTransport::Tcp);
        assert_eq!(r.password.as_deref(), Some("secret-pw"));
        // Never written out, not even in debug output.
        assert!(!toml::to_string(&l).unwrap().contains("secret-pw"));
        assert!(!format!("{r:?}").contains("secret-pw"));
        for (rtsp, want) in [
            ("url=\"http://10.0.0.5/x\"", "must start with rtsp://"),
            ("url=\"rtsp:///x\"", "names no host"),
            ("url=\"rtsp://u:p@10.0.0.5/x\"", "not in the URL"),
            ("url=\"rtsp://10.0.0.5/a b\"", "spaces"),
            (
                "url=\"rtsp://10.0.0.5/\"\ntransport=\"sctp\"",
                "unknown variant",
            ),
        ] {
            let e = Ledger::parse(&cam(rtsp), Path::new("l.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{rtsp}: {e}");
        }
    }

    #[test]
    fn srt_devices_are_checked_and_their_passphrases_kept_in() {
        let dev = |id: &str, srt: &str| {
            format!(
                "[[device]]\nid=\"{id}\"\nkind=\"video-camera\"\ncustodian=\"c\"\nstatus=\"active\"\n[device.srt]\n{srt}\n"
            )
        };
        let ok = dev("enc-1", "port=9001\npassphrase=\"a-long-passphrase\"");
        let l = Ledger::parse(&ok, Path::new("l.toml")).unwrap();
        assert_eq!(l.device("enc-1").unwrap().srt.as_ref().unwrap().port, 9001);
        assert!(!toml::to_string(&l).unwrap().contains("a-long-passphrase"));
        assert!(!format!("{:?}", l.device("enc-1")).contains("a-long-passphrase"));
        let two = format!(
            "{}{}",
            dev("enc-1", "port=9001\npassphrase=\"a-long-passphrase\""),
            dev("enc-2", "port=9001\npassphrase=\"another-passphrase\"")
        );
        let both = format!("{ok}[device.rtsp]\nurl=\"rtsp://10.0.0.5/x\"\n");
        for (text, want) in [
            (dev("enc-1", "port=9001\npassphrase=\"short\""), "10 to 79"),
            (
                dev("enc-1", "port=0\npassphrase=\"a-long-passphrase\""),
                "not a port",
            ),
            (two, "another device's"),
            (both, "rtsp and srt both given"),
        ] {
            let e = Ledger::parse(&text, Path::new("l.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn file_reloads_on_change_and_keeps_last_good() {
        let dir = std::env::temp_dir().join(format!("custody-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ledger.toml");
        std::fs::write(&p, LEDGER).unwrap();
        let f = LedgerFile::open(&p).unwrap();
        let now = datetime!(2026-11-30 00:00 UTC);
        assert!(f.current().admit("bwc-1", now).is_ok());
        let revoked = LEDGER.replacen("status = \"active\"", "status = \"revoked\"", 1);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&p, revoked).unwrap();
        let t = std::fs::File::options().write(true).open(&p).unwrap();
        t.set_modified(SystemTime::now() + std::time::Duration::from_secs(2))
            .unwrap();
        assert_eq!(
            f.current().admit("bwc-1", now).unwrap_err().code,
            CloseCode::DeviceRevoked
        );
        std::fs::write(&p, "not toml [").unwrap();
        t.set_modified(SystemTime::now() + std::time::Duration::from_secs(4))
            .unwrap();
        assert_eq!(
            f.current().admit("bwc-1", now).unwrap_err().code,
            CloseCode::DeviceRevoked
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

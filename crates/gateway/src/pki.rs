//! The device PKI (`custody certs`): a CA, the gateway's server certificate,
//! one client certificate per device carrying the device id as a SAN URI,
//! a CRL for revoked device certificates, and the Ed25519 key the gateway
//! signs checkpoints with. See `certs/README.md` for bringing your own CA.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use custody_format::metadata::valid_id;

use crate::signing::Algorithm;

pub use custody_transport::identity::{DEVICE_URI_PREFIX, VIEWER_URI_PREFIX};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    #[error("invalid device id or viewer name {0:?}")]
    BadDeviceId(String),
    #[error("no certificate was issued to {0:?} by this CA")]
    NotIssued(String),
    #[error(
        "--days {0}: a certificate must be valid from 1 to {MAX_VALIDITY_DAYS} days \
         (with {0} it would expire before it starts or past what a certificate can say)"
    )]
    BadValidity(i64),
    #[error("{0}")]
    Other(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Files of a certificate directory made by `custody certs init`.
#[derive(Debug, Clone)]
pub struct CertDir {
    pub dir: PathBuf,
}

impl CertDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CertDir { dir: dir.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn gateway_cert(&self) -> PathBuf {
        self.dir.join("gateway.pem")
    }
    pub fn gateway_key(&self) -> PathBuf {
        self.dir.join("gateway.key")
    }
    pub fn signing_key(&self) -> PathBuf {
        self.dir.join("signing.key")
    }
    pub fn signing_pub(&self) -> PathBuf {
        self.dir.join("signing.pub.pem")
    }
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }
    pub fn device_cert(&self, id: &str) -> PathBuf {
        self.dir.join("devices").join(format!("{id}.pem"))
    }
    pub fn device_key(&self, id: &str) -> PathBuf {
        self.dir.join("devices").join(format!("{id}.key"))
    }
    pub fn viewer_cert(&self, name: &str) -> PathBuf {
        self.dir.join("viewers").join(format!("{name}.pem"))
    }
    pub fn viewer_key(&self, name: &str) -> PathBuf {
        self.dir.join("viewers").join(format!("{name}.key"))
    }
    fn issued(&self) -> PathBuf {
        self.dir.join("issued.tsv")
    }
    fn revoked(&self) -> PathBuf {
        self.dir.join("revoked.tsv")
    }
}

fn write_public(path: &Path, contents: &str, force: bool) -> Result<(), PkiError> {
    if !force && path.exists() {
        return Err(PkiError::Exists(path.to_path_buf()));
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    fs::write(path, contents).map_err(io_err(path))
}

/// Private keys are created readable by the owner only.
fn write_private(path: &Path, contents: &str, force: bool) -> Result<(), PkiError> {
    if !force && path.exists() {
        return Err(PkiError::Exists(path.to_path_buf()));
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(contents.as_bytes()).map_err(io_err(path))
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| PkiError::Other("no randomness".into()))?;
    b[0] &= 0x7f; // positive INTEGER
    Ok(SerialNumber::from_slice(&b))
}

/// The longest validity `--days` may ask for: a hundred years, far inside
/// what X.509 dates and the time arithmetic below can hold.
pub const MAX_VALIDITY_DAYS: i64 = 36_500;

/// Refuses a validity that would make a certificate expire before it
/// starts (0 or fewer days) or overflow the date arithmetic; checked before
/// anything is written.
fn check_days(days: i64) -> Result<(), PkiError> {
    if (1..=MAX_VALIDITY_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(PkiError::BadValidity(days))
    }
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
}

fn load_issuer(dirs: &CertDir) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key_pem = fs::read_to_string(dirs.ca_key()).map_err(io_err(&dirs.ca_key()))?;
    let cert_pem = fs::read_to_string(dirs.ca_cert()).map_err(io_err(&dirs.ca_cert()))?;
    let key = KeyPair::from_pem(&key_pem)?;
    Ok(Issuer::from_ca_cert_pem(&cert_pem, key)?)
}

/// What `init` made, for printing.
#[derive(Debug)]
pub struct InitReport {
    pub written: Vec<PathBuf>,
}

/// Makes the gateway's signing key (`signing.key`) and its public half
/// (`signing.pub.pem`) for `algorithm`. A deployment's recordings name the
/// key they are signed with; replacing it leaves them verifiable with the
/// old public key only.
pub fn new_signing_key(
    dirs: &CertDir,
    algorithm: Algorithm,
    force: bool,
) -> Result<Vec<PathBuf>, PkiError> {
    let signing = crate::signing::SigningKey::generate_for(algorithm)
        .map_err(|e| PkiError::Other(format!("signing key: {e}")))?;
    write_private(&dirs.signing_key(), &signing.to_pkcs8_pem(), force)?;
    write_public(&dirs.signing_pub(), &signing.public_key_pem(), force)?;
    Ok(vec![dirs.signing_key(), dirs.signing_pub()])
}

/// Creates the CA, the gateway certificate for `names` (DNS names or IPs),
/// and the checkpoint signing key.
pub fn init(
    dirs: &CertDir,
    org: &str,
    names: &[String],
    days: i64,
    signing: Algorithm,
    force: bool,
) -> Result<InitReport, PkiError> {
    check_days(days)?;
    let mut written = Vec::new();

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name.push(DnType::OrganizationName, org);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{org} recording devices CA"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.key_identifier_method = KeyIdMethod::Sha256;
    ca.serial_number = Some(random_serial()?);
    validity(&mut ca, days.max(3650));
    let ca_cert = ca.self_signed(&ca_key)?;
    write_private(&dirs.ca_key(), &ca_key.serialize_pem(), force)?;
    write_public(&dirs.ca_cert(), &ca_cert.pem(), force)?;
    written.extend([dirs.ca_cert(), dirs.ca_key()]);
    let issuer = Issuer::new(ca, ca_key);

    let gw_key = KeyPair::generate()?;
    let mut gw = CertificateParams::default();
    gw.distinguished_name = rcgen::DistinguishedName::new();
    gw.distinguished_name.push(DnType::OrganizationName, org);
    gw.distinguished_name
        .push(DnType::CommonName, "custody gateway");
    gw.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    gw.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    gw.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    gw.use_authority_key_identifier_extension = true;
    gw.serial_number = Some(random_serial()?);
    validity(&mut gw, days);
    let gw_cert = gw.signed_by(&gw_key, &issuer)?;
    write_private(&dirs.gateway_key(), &gw_key.serialize_pem(), force)?;
    write_public(&dirs.gateway_cert(), &gw_cert.pem(), force)?;
    written.extend([dirs.gateway_cert(), dirs.gateway_key()]);

    written.extend(new_signing_key(dirs, signing, force)?);

    // An empty CRL, so a gateway configured with it starts cleanly.
    write_crl(dirs, &issuer, &[])?;
    written.push(dirs.crl());
    let _ = fs::remove_file(dirs.revoked());
    Ok(InitReport { written })
}

/// Issues a client certificate for device `id`, signed by the CA in `dirs`.
pub fn issue_device(dirs: &CertDir, id: &str, days: i64, force: bool) -> Result<(), PkiError> {
    if !valid_id(id) {
        return Err(PkiError::BadDeviceId(id.to_string()));
    }
    let (cert, key) = (dirs.device_cert(id), dirs.device_key(id));
    issue_client(dirs, DEVICE_URI_PREFIX, id, id, (&cert, &key), days, force)
}

/// Issues a client certificate naming command-center viewer `name`
/// (`urn:custody:viewer:<name>`), signed by the CA in `dirs`. It is
/// recorded as `viewer:<name>`, the id `custody certs revoke` takes.
pub fn issue_viewer(dirs: &CertDir, name: &str, days: i64, force: bool) -> Result<(), PkiError> {
    if !valid_id(name) {
        return Err(PkiError::BadDeviceId(name.to_string()));
    }
    let (cert, key) = (dirs.viewer_cert(name), dirs.viewer_key(name));
    let label = format!("viewer:{name}");
    issue_client(
        dirs,
        VIEWER_URI_PREFIX,
        name,
        &label,
        (&cert, &key),
        days,
        force,
    )
}

/// A client certificate (EKU clientAuth) whose SAN URI is `uri_prefix` +
/// `id`; its serial is recorded under `label` for revocation.
fn issue_client(
    dirs: &CertDir,
    uri_prefix: &str,
    id: &str,
    label: &str,
    (cert_path, key_path): (&Path, &Path),
    days: i64,
    force: bool,
) -> Result<(), PkiError> {
    check_days(days)?;
    let issuer = load_issuer(dirs)?;
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, id);
    p.subject_alt_names = vec![SanType::URI(format!("{uri_prefix}{id}").try_into()?)];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    let serial = random_serial()?;
    p.serial_number = Some(serial.clone());
    validity(&mut p, days);
    let cert = p.signed_by(&key, &issuer)?;
    write_private(key_path, &key.serialize_pem(), force)?;
    write_public(cert_path, &cert.pem(), force)?;
    let line = format!("{label}\t{}\n", hex::encode(serial.to_bytes()));
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dirs.issued())
        .map_err(io_err(&dirs.issued()))?;
    f.write_all(line.as_bytes()).map_err(io_err(&dirs.issued()))
}

fn read_tsv(path: &Path) -> Result<Vec<(String, String)>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(s
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Revokes every certificate issued to device `id` and rewrites the CRL.
/// Returns the number of serials revoked.
pub fn revoke_device(dirs: &CertDir, id: &str) -> Result<usize, PkiError> {
    let issued = read_tsv(&dirs.issued())?;
    let serials: Vec<String> = issued
        .iter()
        .filter(|(d, _)| d == id)
        .map(|(_, s)| s.clone())
        .collect();
    if serials.is_empty() {
        return Err(PkiError::NotIssued(id.to_string()));
    }
    let mut revoked = read_tsv(&dirs.revoked())?;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dirs.revoked())
        .map_err(io_err(&dirs.revoked()))?;
    for s in &serials {
        if !revoked.iter().any(|(_, r)| r == s) {
            f.write_all(format!("{id}\t{s}\n").as_bytes())
                .map_err(io_err(&dirs.revoked()))?;
            revoked.push((id.to_string(), s.clone()));
        }
    }
    let issuer = load_issuer(dirs)?;
    let serials: Vec<Vec<u8>> = revoked
        .iter()
        .filter_map(|(_, s)| hex::decode(s).ok())
        .collect();
    write_crl(dirs, &issuer, &serials)?;
    Ok(serials.len())
}

fn write_crl(
    dirs: &CertDir,
    issuer: &Issuer<'_, KeyPair>,
    serials: &[Vec<u8>],
) -> Result<(), PkiError> {
    let now = OffsetDateTime::now_utc();
    let mut number = [0u8; 8];
    number.copy_from_slice(&(now.unix_timestamp() as u64).to_be_bytes());
    let params = CertificateRevocationListParams {
        this_update: now - Duration::minutes(5),
        next_update: now + Duration::days(30),
        crl_number: SerialNumber::from_slice(&number),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from_slice(s),
                revocation_time: now - Duration::minutes(5),
                reason_code: Some(RevocationReason::CessationOfOperation),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(issuer)?;
    let pem = crl.pem()?;
    write_public(&dirs.crl(), &pem, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_issue_revoke() {
        let tmp = std::env::temp_dir().join(format!("custody-pki-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let dirs = CertDir::new(&tmp);
        init(
            &dirs,
            "Test",
            &["localhost".into(), "127.0.0.1".into()],
            30,
            Algorithm::Ed25519,
            false,
        )
        .unwrap();
        assert!(matches!(
            init(
                &dirs,
                "Test",
                &["localhost".into()],
                30,
                Algorithm::Ed25519,
                false
            ),
            Err(PkiError::Exists(_))
        ));
        issue_device(&dirs, "bwc-1", 30, false).unwrap();
        let pem = fs::read_to_string(dirs.device_cert("bwc-1")).unwrap();
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(
            custody_transport::identity::device_id_from_cert(&der).unwrap(),
            "bwc-1"
        );
        let mode = fs::metadata(dirs.device_key("bwc-1")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        assert_eq!(revoke_device(&dirs, "bwc-1").unwrap(), 1);
        assert!(matches!(
            revoke_device(&dirs, "nobody"),
            Err(PkiError::NotIssued(_))
        ));
        assert!(matches!(
            issue_device(&dirs, "../x", 30, false),
            Err(PkiError::BadDeviceId(_))
        ));
        fs::remove_dir_all(&tmp).unwrap();
    }

    /// A validity of 0 or fewer days (or beyond the bound) is refused at
    /// every entry point, before any file is written.
    #[test]
    fn days_outside_the_validity_bounds_are_refused() {
        let tmp = std::env::temp_dir().join(format!("custody-pki-days-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let dirs = CertDir::new(&tmp);
        for days in [-1, 0, MAX_VALIDITY_DAYS + 1, i64::MIN, i64::MAX] {
            assert!(
                matches!(
                    init(&dirs, "Test", &["localhost".into()], days, Algorithm::Ed25519, false),
                    Err(PkiError::BadValidity(d)) if d == days
                ),
                "init --days {days}"
            );
            assert!(!dirs.ca_cert().exists() && !dirs.ca_key().exists());
        }
        init(
            &dirs,
            "Test",
            &["localhost".into()],
            1,
            Algorithm::Sm2,
            false,
        )
        .unwrap();
        let signing =
            crate::signing::SigningKey::from_pem(&fs::read_to_string(dirs.signing_key()).unwrap())
                .unwrap();
        assert_eq!(signing.algorithm(), Algorithm::Sm2);
        for days in [-1, 0, MAX_VALIDITY_DAYS + 1, i64::MIN, i64::MAX] {
            assert!(
                matches!(
                    issue_device(&dirs, "bwc-1", days, false),
                    Err(PkiError::BadValidity(_))
                ),
                "device --days {days}"
            );
            assert!(
                matches!(
                    issue_viewer(&dirs, "sup-1", days, false),
                    Err(PkiError::BadValidity(_))
                ),
                "viewer --days {days}"
            );
        }
        assert!(!dirs.device_cert("bwc-1").exists() && !dirs.viewer_cert("sup-1").exists());
        issue_device(&dirs, "bwc-1", MAX_VALIDITY_DAYS, false).unwrap();
        let pem = fs::read_to_string(dirs.device_cert("bwc-1")).unwrap();
        let der: rustls_pki_types::CertificateDer =
            rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
        let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(x.validity().not_after > x.validity().not_before);
        fs::remove_dir_all(&tmp).unwrap();
    }
}

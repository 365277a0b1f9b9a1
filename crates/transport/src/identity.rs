//! Reading a device's identity out of its (already verified) certificate.

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use custody_format::metadata::valid_id;

/// The SAN URI prefix that names a device.
pub const DEVICE_URI_PREFIX: &str = "urn:custody:device:";
/// A viewer's client certificate names the viewer as `urn:custody:viewer:<name>`.
pub const VIEWER_URI_PREFIX: &str = "urn:custody:viewer:";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("certificate cannot be parsed")]
    Unparseable,
    #[error("certificate has no SAN URI {DEVICE_URI_PREFIX}<device-id>")]
    NoDeviceUri,
    #[error("certificate names more than one device")]
    Ambiguous,
    #[error("device id {0:?} in certificate is not a valid id")]
    BadId(String),
}

/// The device id carried in the certificate's subjectAltName as
/// `urn:custody:device:<id>`.
pub fn device_id_from_cert(cert: &CertificateDer<'_>) -> Result<String, IdentityError> {
    let (_, x509) =
        x509_parser::parse_x509_certificate(cert).map_err(|_| IdentityError::Unparseable)?;
    let san = x509
        .subject_alternative_name()
        .map_err(|_| IdentityError::Unparseable)?
        .ok_or(IdentityError::NoDeviceUri)?;
    let mut found = None;
    for name in &san.value.general_names {
        if let GeneralName::URI(uri) = name
            && let Some(id) = uri.strip_prefix(DEVICE_URI_PREFIX)
        {
            if found.is_some() {
                return Err(IdentityError::Ambiguous);
            }
            found = Some(id.to_string());
        }
    }
    let id = found.ok_or(IdentityError::NoDeviceUri)?;
    if !valid_id(&id) {
        return Err(IdentityError::BadId(id));
    }
    Ok(id)
}

/// SHA-256 of the certificate DER, lowercase hex: how logs and headers name
/// the exact certificate a device presented.
pub fn cert_fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(custody_format::chain::sha256(cert))
}

/// Best-effort description of a certificate that failed verification, for
/// the refusal log: its device id if it has one, else its subject.
pub fn describe_cert(cert: &CertificateDer<'_>) -> String {
    match device_id_from_cert(cert) {
        Ok(id) => format!("device {id}"),
        Err(_) => match x509_parser::parse_x509_certificate(cert) {
            Ok((_, x)) => format!("subject {}", x.subject()),
            Err(_) => "unparseable certificate".to_string(),
        },
    }
}

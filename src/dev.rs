//! `serve --dev`: a throw-away CA and a serving certificate for `localhost` and
//! `127.0.0.1`, written to `--certs-dir` (`ca.crt`, `tls.crt`, `tls.key`).
//! Generated once and reused while valid, so that a CA already trusted (a curl
//! `--cacert`, a registered `caBundle`) keeps working across restarts and a second
//! `--dev` process never swaps the certificates under a running one; ECDSA P-256.
//! Delete the directory for fresh ones.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

/// Where the development certificates were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCerts {
    /// The CA certificate (`--cacert` for curl).
    pub ca: PathBuf,
    /// The serving certificate.
    pub cert: PathBuf,
    /// The serving key.
    pub key: PathBuf,
}

/// Why the development certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// Generating keys or certificates failed.
    #[error("generating development certificates: {0}")]
    Generate(rcgen::Error),
    /// Writing them failed.
    #[error("--certs-dir: cannot write {}: {error}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

impl From<rcgen::Error> for DevError {
    fn from(e: rcgen::Error) -> Self {
        DevError::Generate(e)
    }
}

/// The PEM texts of a development CA and serving pair.
#[derive(Debug, Clone)]
pub struct DevPems {
    /// CA certificate.
    pub ca: String,
    /// Serving certificate.
    pub cert: String,
    /// Serving key (PKCS#8).
    pub key: String,
}

/// Generate a CA and a serving certificate for `localhost` / `127.0.0.1`.
pub fn generate_pems() -> Result<DevPems, DevError> {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "vespa-tls-webhook development CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, &ca)?;
    Ok(DevPems {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

fn write(path: &Path, text: &str, private: bool) -> Result<(), DevError> {
    let err = |error| DevError::Write {
        path: path.to_path_buf(),
        error,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)
}

/// Make sure `dir` (created if needed) holds `ca.crt`, `tls.crt` and `tls.key`:
/// reuse a pair that loads and stays valid for at least a day, else generate one.
pub fn write_certs(dir: &Path) -> Result<DevCerts, DevError> {
    std::fs::create_dir_all(dir).map_err(|error| DevError::Write {
        path: dir.to_path_buf(),
        error,
    })?;
    let out = DevCerts {
        ca: dir.join("ca.crt"),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    };
    let tomorrow = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400);
    let reusable = out.ca.is_file()
        && crate::tls::CertStore::load(&out.cert, &out.key)
            .is_ok_and(|pair| pair.check_valid(tomorrow).is_ok());
    if reusable {
        return Ok(out);
    }
    let pems = generate_pems()?;
    write(&out.ca, &pems.ca, false)?;
    write(&out.key, &pems.key, true)?;
    write(&out.cert, &pems.cert, false)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_pair_the_server_accepts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs");
        let certs = write_certs(&dir).unwrap();
        let pair = crate::tls::CertStore::load(&certs.cert, &certs.key).unwrap();
        assert!(pair.check_valid(std::time::SystemTime::now()).is_ok());
        assert!(
            std::fs::read_to_string(&certs.ca)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        // A second start reuses the same CA.
        let ca = std::fs::read(&certs.ca).unwrap();
        write_certs(&dir).unwrap();
        assert_eq!(std::fs::read(&certs.ca).unwrap(), ca);
    }
}

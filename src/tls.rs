//! The serving certificate: loaded from PEM files at start, reloaded when the files
//! change, served to each new TLS connection through a [`ResolvesServerCert`].
//!
//! A new pair is only installed when it parses and the key matches the
//! certificate's public key; otherwise the pair in use stays, the failure is logged
//! and counted. Connections already open keep the certificate they shook hands
//! with; new connections see a rotated certificate within one poll interval.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::file_watch::{self, Fingerprint, Poller, ReadError, Snapshot};
use crate::metrics::Metrics;

/// The flag naming the certificate file (for messages).
pub const CERT_FLAG: &str = "--tls-cert";
/// The flag naming the key file (for messages).
pub const KEY_FLAG: &str = "--tls-key";

/// Why a certificate/key pair was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{flag} {}: {error}", path.display())]
    Read {
        /// `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The certificate file holds no usable certificate.
    #[error("{CERT_FLAG} {}: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file holds no usable private key.
    #[error("{KEY_FLAG} {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("{KEY_FLAG} {} does not match the certificate in {CERT_FLAG} {}: {reason}", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The TLS library's words.
        reason: String,
    },
    /// A replacement pair whose certificate has already expired, while the one in
    /// use is still valid.
    #[error(
        "{CERT_FLAG} {}: the new certificate expired {ago} s ago (notAfter {not_after} Unix seconds); the certificate in use is still valid and stays",
        path.display()
    )]
    Expired {
        /// The file.
        path: PathBuf,
        /// The new certificate's notAfter, Unix seconds.
        not_after: i64,
        /// Seconds since it expired.
        ago: i64,
    },
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// A certificate/key pair ready to serve.
#[derive(Debug, Clone)]
pub struct LoadedPair {
    /// Chain and signing key.
    pub key: Arc<CertifiedKey>,
    /// The leaf's notAfter, Unix seconds.
    pub not_after: i64,
}

/// The ring crypto provider (the only one compiled in).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parse a PEM chain and key, check the key matches the leaf, read notAfter.
/// `cert_path`/`key_path` only name the files in errors.
pub fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<LoadedPair, TlsError> {
    let cert_err = |reason: String| TlsError::Certificate {
        path: cert_path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate chain: {e}")))?;
    let leaf = chain
        .first()
        .ok_or_else(|| cert_err("no CERTIFICATE block found".into()))?;
    let not_after = match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, cert)) => cert.validity().not_after.timestamp(),
        Err(e) => return Err(cert_err(format!("not an X.509 certificate: {e}"))),
    };
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key {
        path: key_path.to_path_buf(),
        reason: format!("no usable PEM private key: {e}"),
    })?;
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key {
            path: key_path.to_path_buf(),
            reason: format!("unsupported private key: {e}"),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // A key type that cannot tell its public key is accepted, as rustls does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(TlsError::Mismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    }
    Ok(LoadedPair {
        key: Arc::new(certified),
        not_after,
    })
}

/// The serving certificate in use, swappable while serving.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<LoadedPair>,
    loaded_from: Fingerprint,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("not_after", &self.not_after())
            .finish()
    }
}

fn read_error(e: ReadError, cert_path: &Path) -> TlsError {
    let flag = if e.path == cert_path {
        CERT_FLAG
    } else {
        KEY_FLAG
    };
    TlsError::Read {
        flag,
        path: e.path,
        error: e.error,
    }
}

impl CertStore {
    /// Load the pair from the files (fail fast: errors name the flag and file).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<CertStore, TlsError> {
        let paths = [cert_path.to_path_buf(), key_path.to_path_buf()];
        let snap = file_watch::read_now(&paths).map_err(|e| read_error(e, cert_path))?;
        let pair = parse_pair(&snap.contents[0], &snap.contents[1], cert_path, key_path)?;
        Ok(CertStore {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(pair),
            loaded_from: snap.fingerprint,
        })
    }

    /// The pair in use.
    pub fn current(&self) -> LoadedPair {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The notAfter of the certificate in use, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .not_after
    }

    /// `Err(reason)` when the certificate in use has expired.
    pub fn check_valid(&self, now: SystemTime) -> Result<(), String> {
        let not_after = self.not_after();
        let now = unix_seconds(now);
        if not_after <= now {
            return Err(format!(
                "the serving certificate ({}) expired {} s ago (notAfter {not_after} Unix seconds)",
                self.cert_path.display(),
                now - not_after
            ));
        }
        Ok(())
    }

    /// Try to install the pair in `snapshot` (contents of cert and key files). A
    /// pair that has already expired replaces the pair in use only when that one
    /// has expired too (then nothing better is at hand).
    pub fn install(&self, snapshot: &Snapshot) -> Result<i64, TlsError> {
        self.install_at(snapshot, SystemTime::now())
    }

    fn install_at(&self, snapshot: &Snapshot, now: SystemTime) -> Result<i64, TlsError> {
        let (cert, key) = match snapshot.contents.as_slice() {
            [cert, key] => (cert, key),
            _ => {
                return Err(TlsError::Certificate {
                    path: self.cert_path.clone(),
                    reason: "internal: expected certificate and key contents".into(),
                });
            }
        };
        let pair = parse_pair(cert, key, &self.cert_path, &self.key_path)?;
        let not_after = pair.not_after;
        let now = unix_seconds(now);
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if not_after <= now && current.not_after > now {
            return Err(TlsError::Expired {
                path: self.cert_path.clone(),
                not_after,
                ago: now - not_after,
            });
        }
        *current = pair;
        Ok(not_after)
    }

    /// A TLS 1.2/1.3 server configuration that asks this store for the certificate
    /// on every handshake. ALPN offers `http/1.1` only.
    ///
    /// No session is ever resumed: no session is cached, so rustls sends no
    /// TLS 1.3 tickets and resumes no TLS 1.2 session ID. The apiserver's
    /// webhook client keeps its connections alive instead and does not resume
    /// (Go's TLS client resumes only with a session cache, which client-go does
    /// not set), so the two tickets of every handshake were encrypted records
    /// and cache entries no one used. A client that offers a session gets a
    /// full handshake.
    ///
    /// The client's order of cipher suites decides (rustls's default): the
    /// apiserver (Go) offers AES-128-GCM-SHA256 first, whose key schedule
    /// hashes with SHA-256, which ring computes with the CPU's SHA extensions;
    /// rustls's own order would put AES-256-GCM-SHA384 first and make every
    /// handshake hash with SHA-384, without them (docs/performance.md, "The
    /// client's cipher suites").
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }

    /// Watch the pair with `poller`: install changed pairs, keep the old pair on
    /// failure; log and count both.
    pub fn watch_files(self: &Arc<Self>, poller: &mut Poller, metrics: Arc<Metrics>) {
        let store = self.clone();
        let paths = vec![self.cert_path.clone(), self.key_path.clone()];
        poller.watch(paths, self.loaded_from, move |result| {
            let outcome = result
                .map_err(|e| read_error(e, &store.cert_path))
                .and_then(|snap| store.install(&snap));
            match outcome {
                Ok(not_after) => {
                    metrics.certificate_reload(true);
                    metrics.set_certificate_expiry(not_after);
                    tracing::info!(
                        cert = %store.cert_path.display(),
                        not_after,
                        "serving certificate reloaded"
                    );
                }
                Err(e) => {
                    metrics.certificate_reload(false);
                    tracing::warn!(
                        error = %e,
                        "serving certificate files changed but the new pair is refused; keeping the one in use"
                    );
                }
            }
        })
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Hands the store's current pair to each TLS handshake.
struct Resolver(Arc<CertStore>);

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Resolver").field(&self.0).finish()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .key
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};
    use std::time::Duration;

    fn pair() -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn parse(c: &str, k: &str) -> Result<LoadedPair, TlsError> {
        parse_pair(
            c.as_bytes(),
            k.as_bytes(),
            Path::new("c.pem"),
            Path::new("k.pem"),
        )
    }

    #[test]
    fn accepts_a_matching_pair_and_reads_not_after() {
        let (c, k) = pair();
        let p = parse(&c, &k).unwrap();
        assert!(p.not_after > 1_700_000_000);
    }

    #[test]
    fn refuses_a_mismatched_key() {
        let (c, _) = pair();
        let (_, other) = pair();
        let e = parse(&c, &other).unwrap_err();
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
        assert!(
            e.to_string().contains("--tls-key k.pem does not match"),
            "{e}"
        );
    }

    #[test]
    fn refuses_garbage_naming_the_flag() {
        let (c, k) = pair();
        let e = parse("garbage", &k).unwrap_err();
        assert!(e.to_string().starts_with("--tls-cert c.pem:"), "{e}");
        let e = parse(
            &c,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("--tls-key k.pem:"), "{e}");
        let e = parse(&c, "").unwrap_err();
        assert!(e.to_string().starts_with("--tls-key k.pem:"), "{e}");
    }

    fn snapshot(c: &str, k: &str) -> Snapshot {
        let contents = vec![c.as_bytes().to_vec(), k.as_bytes().to_vec()];
        Snapshot {
            fingerprint: file_watch::fingerprint(&contents),
            contents,
        }
    }

    #[test]
    fn an_expired_replacement_does_not_replace_a_valid_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = pair();
        let (cp, kp) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cp, &c).unwrap();
        std::fs::write(&kp, &k).unwrap();
        let store = CertStore::load(&cp, &kp).unwrap();
        let valid_until = store.not_after();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        let expired = params.self_signed(&key).unwrap();
        let snap = snapshot(&expired.pem(), &key.serialize_pem());
        let e = store.install(&snap).unwrap_err();
        assert!(matches!(e, TlsError::Expired { .. }), "{e}");
        assert!(e.to_string().contains("expired"), "{e}");
        assert_eq!(store.not_after(), valid_until);
        // Once the pair in use has expired too, the replacement is taken (a later
        // notAfter than nothing at all).
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(valid_until as u64 + 10);
        assert_eq!(store.install_at(&snap, later).unwrap(), 1_577_836_800);
    }

    #[test]
    fn load_names_a_missing_file() {
        let e =
            CertStore::load(Path::new("/nonexistent/tls.crt"), Path::new("/x.key")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--tls-cert /nonexistent/tls.crt: "),
            "{e}"
        );
    }
}

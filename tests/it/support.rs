//! A real server on 127.0.0.1:0 with a test CA, and clients for it.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vespa_tls_webhook::namespace_view::NamespaceSource;
use vespa_tls_webhook::policy_watch::PolicySource;
use vespa_tls_webhook::server::{RunningServer, Server, ServerConfig};

/// Namespaces every test server knows.
pub const NAMESPACES: &str = r#"
- metadata:
    name: vespa
    labels: {tls.vespa.ai/injection: enabled}
- metadata:
    name: vespa-ingress
    labels: {tls.vespa.ai/injection: enabled}
    annotations: {tls.vespa.ai/ingress-issuer-name: ingress-issuer}
- metadata:
    name: vespa-prod
    labels: {tls.vespa.ai/injection: enforced}
- metadata:
    name: plain
- metadata:
    name: webhook-system
    labels: {tls.vespa.ai/injection: enabled}
"#;

/// The webhook namespace the test servers run "in".
pub const WEBHOOK_NAMESPACE: &str = "webhook-system";

/// A test certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A PEM certificate and key, and the certificate's DER.
#[derive(Clone)]
pub struct Pair {
    pub cert: String,
    pub key: String,
    pub der: Vec<u8>,
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "vespa-tls-webhook test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn params() -> CertificateParams {
        let mut p =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "localhost");
        p
    }

    fn sign(&self, params: CertificateParams) -> Pair {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A fresh serving pair (new key) for localhost / 127.0.0.1.
    pub fn leaf(&self) -> Pair {
        self.sign(Self::params())
    }

    /// A serving pair for localhost / 127.0.0.1 with `edit` applied to its
    /// parameters (validity, names).
    #[allow(dead_code)] // used by tests/faults
    pub fn leaf_with(&self, edit: impl FnOnce(&mut CertificateParams)) -> Pair {
        let mut p = Self::params();
        edit(&mut p);
        self.sign(p)
    }

    /// A serving pair that expired in 2020.
    pub fn expired_leaf(&self) -> Pair {
        let mut p = Self::params();
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
        self.sign(p)
    }

    /// A client configuration trusting only this CA.
    pub fn client_config(&self) -> rustls::ClientConfig {
        self.client_config_for(rustls::DEFAULT_VERSIONS)
    }

    /// [`Ca::client_config`] speaking only these TLS versions.
    pub fn client_config_for(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        self.client_config_with(rustls::crypto::ring::default_provider(), versions)
    }

    /// A client config trusting this CA, with `provider` (its cipher suites,
    /// in its order) and only `versions`.
    pub fn client_config_with(
        &self,
        provider: rustls::crypto::CryptoProvider,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.issuer.der().to_vec()))
            .unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }
}

/// Write `text` to `path` atomically (temp file + rename), as a writer that
/// cares would; the webhook must cope with non-atomic writers too.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// How to start a test server.
pub struct Options {
    pub namespaces: String,
    pub policy: Option<String>,
    pub pair: Option<Pair>,
    pub metrics_listener: bool,
    pub read_timeout: Duration,
    /// Keep-alive idle timeout (default: the server's, 120 s).
    pub idle_timeout: Option<Duration>,
    /// Idle connections kept at most (default: the server's, 512).
    pub max_idle_connections: Option<usize>,
    /// Connections open at most per listener (default: the server's, 512).
    pub max_connections: Option<usize>,
    /// Serve cert and key through a Kubernetes-style `..data` symlink.
    pub symlinked: bool,
    /// Read namespaces from this cluster instead of the namespaces file.
    pub cluster: Option<kube::Client>,
    /// The cluster namespace view's staleness bound (default 60 s).
    pub namespace_stale_after: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespaces: NAMESPACES.to_string(),
            policy: None,
            pair: None,
            metrics_listener: false,
            read_timeout: Duration::from_secs(3),
            idle_timeout: None,
            max_idle_connections: None,
            max_connections: None,
            symlinked: false,
            cluster: None,
            namespace_stale_after: None,
        }
    }
}

/// A running server and what it was started from.
pub struct Harness {
    pub dir: TempDir,
    pub ca: Ca,
    pub pair: Pair,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub policy_path: PathBuf,
    pub namespaces_path: PathBuf,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    server: Option<RunningServer>,
}

/// Install ring as the process default (reqwest asks for one).
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Harness {
    pub async fn start(opts: Options) -> Harness {
        crypto();
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new();
        let pair = opts.pair.clone().unwrap_or_else(|| ca.leaf());
        let (cert_path, key_path) = if opts.symlinked {
            symlinked_pair(dir.path(), "..2026_01_01_00_00_00.000000001", &pair);
            (dir.path().join("tls.crt"), dir.path().join("tls.key"))
        } else {
            let (c, k) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
            std::fs::write(&c, &pair.cert).unwrap();
            std::fs::write(&k, &pair.key).unwrap();
            (c, k)
        };
        let policy_path = dir.path().join("policy.yaml");
        if let Some(p) = &opts.policy {
            std::fs::write(&policy_path, p).unwrap();
        }
        let namespaces_path = dir.path().join("namespaces.yaml");
        std::fs::write(&namespaces_path, &opts.namespaces).unwrap();

        let mut config = ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            cert_path.clone(),
            key_path.clone(),
        );
        if opts.metrics_listener {
            config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        }
        config.policy = PolicySource {
            path: opts.policy.as_ref().map(|_| policy_path.clone()),
            webhook_namespace: Some(WEBHOOK_NAMESPACE.into()),
        };
        config.namespaces = match opts.cluster {
            Some(client) => NamespaceSource::Client(client),
            None => NamespaceSource::File(namespaces_path.clone()),
        };
        config.read_timeout = opts.read_timeout;
        if let Some(idle) = opts.idle_timeout {
            config.idle_timeout = idle;
        }
        if let Some(max) = opts.max_idle_connections {
            config.max_idle_connections = max;
        }
        if let Some(max) = opts.max_connections {
            config.max_connections = max;
        }
        if let Some(bound) = opts.namespace_stale_after {
            config.namespace_stale_after = bound;
        }
        config.shutdown_timeout = Duration::from_secs(5);
        let server = Server::start(config).await.unwrap();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(ca.client_config())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Harness {
            addr: server.local_addr(),
            metrics_addr: server.metrics_addr(),
            dir,
            ca,
            pair,
            cert_path,
            key_path,
            policy_path,
            namespaces_path,
            client,
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// A client with its own connection pool (so: new connections).
    pub fn fresh_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.ca.client_config())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    pub async fn post_bytes(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// POST a review; the status and the parsed answer (Null when not JSON).
    pub async fn post(&self, path: &str, review: &Value) -> (u16, Value) {
        let (status, text) = self
            .post_bytes(path, serde_json::to_vec(review).unwrap())
            .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POST a review and expect 200; the `response` object.
    pub async fn admit(&self, path: &str, review: &Value) -> Value {
        let (status, answer) = self.post(path, review).await;
        assert_eq!(status, 200, "POST {path}: {answer}");
        answer["response"].clone()
    }

    /// `/mutate` a CREATE of the seed's user VespaSet (Step 4 without TLS) in
    /// `ns`: the object sent and the `response`.
    pub async fn mutate_user_vespaset(&self, ns: &str) -> (Value, Value) {
        let object = crate::fixtures::user_vespaset();
        let review = crate::fixtures::vespaset_review(object.clone(), ns, "CREATE");
        (object, self.admit("/mutate", &review).await)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    pub async fn metrics(&self) -> String {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, 200);
        text
    }

    /// A new TLS connection to the server.
    pub async fn tls_connect(&self) -> std::io::Result<TlsStream<TcpStream>> {
        self.tls_connect_with(Arc::new(self.ca.client_config()))
            .await
    }

    /// A new TLS connection to the server with this client configuration
    /// (sharing one keeps its sessions for resumption).
    pub async fn tls_connect_with(
        &self,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let connector = TlsConnector::from(config);
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        connector.connect(name, tcp).await
    }

    /// The leaf certificate a new connection is served.
    pub async fn served_cert(&self) -> Vec<u8> {
        let tls = self.tls_connect().await.unwrap();
        let (_, conn) = tls.get_ref();
        conn.peer_certificates().unwrap()[0].to_vec()
    }

    /// Take the running server out (to shut it down from another task).
    pub fn take_server(&mut self) -> RunningServer {
        self.server.take().unwrap()
    }
}

/// Lay out a pair the way kubelet does for Secret volumes:
/// `dir/<ts>/tls.*`, `dir/..data -> <ts>`, `dir/tls.* -> ..data/tls.*`.
pub fn symlinked_pair(dir: &Path, ts: &str, pair: &Pair) {
    let data = dir.join(ts);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tls.crt"), &pair.cert).unwrap();
    std::fs::write(data.join("tls.key"), &pair.key).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(ts, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        let link = dir.join(f);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(f), &link).unwrap();
        }
    }
}

/// Poll `check` until it is true or `timeout` passes; panics naming `what`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < timeout, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The value of a metric line (`name{labels} value`), 0 when absent (a labelled
/// series appears only once it has counted something).
pub fn metric(text: &str, series: &str) -> f64 {
    metric_line(text, series).unwrap_or(0.0)
}

/// The value of a metric line, `None` when the line is not there.
pub fn metric_line(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Send raw bytes on a new TLS connection and read the whole answer (until the
/// server closes, or `timeout`).
pub async fn raw_exchange(h: &Harness, request: &[u8], timeout: Duration) -> String {
    let mut tls = h.tls_connect().await.unwrap();
    tls.write_all(request).await.unwrap();
    read_until_close(&mut tls, timeout).await
}

/// Read from a stream until EOF, an error, or `timeout`.
pub async fn read_until_close(tls: &mut TlsStream<TcpStream>, timeout: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(timeout, async {
        let mut buf = [0u8; 8192];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The head of a POST of `len` bytes to `path`.
pub fn post_head(path: &str, len: usize) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    )
    .into_bytes()
}

/// One HTTP/1.1 response: status, lower-cased head, body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn closes(&self) -> bool {
        self.head.contains("\r\nconnection: close\r\n")
    }
}

/// Read one response (with a Content-Length body) within `timeout`; `None` when
/// the connection ends or the time is up first.
pub async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Option<RawResponse> {
    tokio::time::timeout(timeout, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let status = head.get(9..12)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(RawResponse {
            status,
            head,
            body: buf[head_end..head_end + len].to_vec(),
        })
    })
    .await
    .ok()
    .flatten()
}

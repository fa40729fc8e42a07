//! Shared by the fault tests: one-at-a-time lock, request loops that count
//! failures, the real binary as a child process, raw HTTP over TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::fixtures::{user_vespaset, vespaset_review};
use crate::listen;
use crate::support::{Ca, NAMESPACES, WEBHOOK_NAMESPACE, crypto};

/// The fault tests run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Hold for the whole test.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    crypto();
    SERIAL.lock().await
}

/// A duration from the environment (whole seconds), else `default`.
pub fn env_secs(name: &str, default: u64) -> Duration {
    let secs = std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default);
    Duration::from_secs(secs)
}

// ------------------------------------------------------------ requests ---

/// One kind of admission request with the answer it must get.
#[derive(Clone)]
pub struct Req {
    pub path: &'static str,
    pub body: Arc<Vec<u8>>,
    /// Checks the status and the parsed answer.
    pub check: fn(u16, &Value) -> Result<(), String>,
}

fn injected(status: u16, answer: &Value) -> Result<(), String> {
    let r = &answer["response"];
    if status == 200 && r["allowed"] == true && r["patchType"] == "JSONPatch" {
        Ok(())
    } else {
        Err(format!("want an injecting answer, got {status} {answer}"))
    }
}

fn untouched(status: u16, answer: &Value) -> Result<(), String> {
    let r = &answer["response"];
    if status == 200 && r["allowed"] == true && r.get("patch").is_none() {
        Ok(())
    } else {
        Err(format!(
            "want allowed without a patch, got {status} {answer}"
        ))
    }
}

fn denied(status: u16, answer: &Value) -> Result<(), String> {
    let r = &answer["response"];
    if status == 200 && r["allowed"] == false {
        Ok(())
    } else {
        Err(format!("want a denial, got {status} {answer}"))
    }
}

fn body(ns: &str) -> Arc<Vec<u8>> {
    Arc::new(serde_json::to_vec(&vespaset_review(user_vespaset(), ns, "CREATE")).unwrap())
}

/// A VespaSet in the `enabled` namespace `vespa`: injected.
pub fn mutate_enabled() -> Req {
    Req {
        path: "/mutate",
        body: body("vespa"),
        check: injected,
    }
}

/// A VespaSet in the unlabelled namespace `plain`: untouched (under the built-in policy).
pub fn mutate_plain_untouched() -> Req {
    Req {
        path: "/mutate",
        body: body("plain"),
        check: untouched,
    }
}

/// A VespaSet in the unlabelled namespace `plain` under `defaultMode: enabled`: injected.
pub fn mutate_plain_injected() -> Req {
    Req {
        path: "/mutate",
        body: body("plain"),
        check: injected,
    }
}

/// A VespaSet without TLS in the `enforced` namespace `vespa-prod`: denied.
pub fn validate_enforced_denied() -> Req {
    Req {
        path: "/validate",
        body: body("vespa-prod"),
        check: denied,
    }
}

/// How a request loop uses connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    /// One keep-alive connection, reused.
    KeepAlive,
    /// A new TLS connection for every request.
    NewPerRequest,
}

/// A failed request.
#[derive(Debug, Clone)]
pub struct Failure {
    pub started: Instant,
    pub conn: Conn,
    /// The connection could not be made (refused, handshake failed).
    pub connect: bool,
    pub what: String,
}

/// What the request loops saw.
#[derive(Debug, Default)]
pub struct Stats {
    pub ok: AtomicU64,
    /// Answers that carried `Connection: close`.
    pub closing: AtomicU64,
    pub failures: Mutex<Vec<Failure>>,
}

impl Stats {
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> Vec<Failure> {
        self.failures.lock().unwrap().clone()
    }

    /// Panics listing the first failures, if any.
    pub fn assert_no_failures(&self, what: &str) {
        let failures = self.failures();
        let first: Vec<String> = failures
            .iter()
            .take(5)
            .map(|f| format!("{:?} connection: {}", f.conn, f.what))
            .collect();
        assert!(
            failures.is_empty(),
            "{what}: {} failed requests ({} ok); first: {first:#?}",
            failures.len(),
            self.ok(),
        );
    }
}

/// A client for `tls` that keeps connections alive, or opens one per request.
pub fn client(tls: rustls::ClientConfig, conn: Conn) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10));
    if conn == Conn::NewPerRequest {
        b = b.pool_max_idle_per_host(0);
    } else {
        // reqwest's own idle timeout, 90 s like the apiserver's: the server keeps
        // idle connections longer (120 s), so it never closes one under a request.
        b = b.pool_idle_timeout(Duration::from_secs(90));
    }
    b.build().unwrap()
}

/// Request loops, one task per entry of `conns`, cycling through `requests`
/// until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    pub stats: Arc<Stats>,
}

impl Load {
    pub fn start(
        base: &str,
        tls: impl Fn() -> rustls::ClientConfig,
        conns: &[Conn],
        requests: &[Req],
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let mut tasks = Vec::new();
        for (i, &conn) in conns.iter().enumerate() {
            let client = client(tls(), conn);
            let (stop, stats) = (stop.clone(), stats.clone());
            let requests: Vec<Req> = requests.to_vec();
            let base = base.to_string();
            tasks.push(tokio::spawn(async move {
                let mut n = i;
                while !stop.load(Ordering::Relaxed) {
                    let req = &requests[n % requests.len()];
                    n += 1;
                    let started = Instant::now();
                    let result = client
                        .post(format!("{base}{}", req.path))
                        .header("content-type", "application/json")
                        .body(req.body.as_ref().clone())
                        .send()
                        .await;
                    let outcome = match result {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            if r.headers()
                                .get("connection")
                                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
                            {
                                stats.closing.fetch_add(1, Ordering::Relaxed);
                            }
                            match r.bytes().await {
                                Ok(bytes) => {
                                    let answer =
                                        serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                                    (req.check)(status, &answer).map_err(|e| (false, e))
                                }
                                Err(e) => Err((false, format!("reading the answer: {e:?}"))),
                            }
                        }
                        Err(e) => Err((e.is_connect(), format!("{e:?}"))),
                    };
                    match outcome {
                        Ok(()) => {
                            stats.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err((connect, what)) => {
                            stats.failures.lock().unwrap().push(Failure {
                                started,
                                conn,
                                connect,
                                what,
                            });
                            // Do not spin against a closed port.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }));
        }
        Load { stop, tasks, stats }
    }

    /// Stop the loops (each finishes its current request) and return what they saw.
    pub async fn stop(self) -> Arc<Stats> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("request loop stops within 15 s")
                .unwrap();
        }
        self.stats
    }
}

// ------------------------------------------------------ the real binary ---

/// `vespa-tls-webhook serve` as a child process on 127.0.0.1 with a test CA and
/// the namespaces of `support::NAMESPACES`; killed when dropped.
pub struct Webhook {
    child: Child,
    _dir: TempDir,
    pub ca: Ca,
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Webhook {
    /// Start with `extra` flags and wait (≤ 30 s) until `/readyz` answers 200.
    pub async fn start(extra: &[&str]) -> Webhook {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new();
        let pair = ca.leaf();
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        std::fs::write(&cert, &pair.cert).unwrap();
        std::fs::write(&key, &pair.key).unwrap();
        let namespaces = dir.path().join("namespaces.yaml");
        std::fs::write(&namespaces, NAMESPACES).unwrap();
        let log = dir.path().join("webhook.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vespa-tls-webhook"))
            .arg("serve")
            // Ports picked by the kernel at bind time; read back from the log.
            .args(["--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .arg("--namespaces")
            .arg(&namespaces)
            .args([
                "--webhook-namespace",
                WEBHOOK_NAMESPACE,
                "--log-format",
                "json",
            ])
            .args(extra)
            .env("RUST_LOG", listen::with_serving_line("warn"))
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start vespa-tls-webhook");
        let bound = listen::wait_listening(&mut child, &log, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("webhook: {e}"));
        let addr = bound.addr;
        let metrics_addr = bound.metrics_addr.expect("--metrics-addr was given");
        let mut w = Webhook {
            child,
            _dir: dir,
            ca,
            addr,
            metrics_addr,
            log,
            exited: None,
        };
        let http = w.client(Conn::NewPerRequest);
        let start = Instant::now();
        loop {
            if let Ok(r) = http.get(w.url("/readyz")).send().await
                && r.status() == 200
            {
                break;
            }
            if let Some(status) = w.child.try_wait().unwrap() {
                w.exited = Some(status);
                panic!("webhook exited at start ({status}):\n{}", w.log_tail(40));
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "webhook not ready within 30 s:\n{}",
                w.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        w
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn base(&self) -> String {
        self.url("")
    }

    pub fn client(&self, conn: Conn) -> reqwest::Client {
        client(self.ca.client_config(), conn)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/<pid>/status` field in KiB (VmRSS, VmHWM).
    pub fn status_kib(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        text.lines()
            .find_map(|l| {
                let rest = l.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()))
    }

    /// The plain-HTTP `/metrics` page.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Wait for the process to exit; `None` when it has not within `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited = Some(status);
                return Some(status);
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// A new TLS connection.
    pub async fn tls_connect(&self) -> TlsStream<TcpStream> {
        self.try_tls_connect().await.unwrap()
    }

    /// A new TLS connection, or why there is none.
    pub async fn try_tls_connect(&self) -> std::io::Result<TlsStream<TcpStream>> {
        let connector = TlsConnector::from(Arc::new(self.ca.client_config()));
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        connector.connect(name, tcp).await
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ------------------------------------------------------------ raw HTTP ---

// The raw HTTP helpers shared with tests/it live in its support.rs.
pub use crate::support::{post_head, read_response};

/// Whether the peer closes the stream within `timeout` (EOF or an error); bytes
/// read meanwhile are returned.
pub async fn closed_within<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> (bool, Vec<u8>) {
    let mut out = Vec::new();
    let closed = tokio::time::timeout(timeout, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .is_ok();
    (closed, out)
}

/// Send a whole request on `stream`.
pub async fn send<S: tokio::io::AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}

/// The value of a metric line (`name{labels} value`), 0 when absent.
pub use crate::support::metric;

// ------------------------------------------------ reading where it listens ---

#[test]
fn serving_lines_of_both_formats_are_read_and_others_are_not() {
    let a: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let m: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    let json = r#"{"timestamp":"2026-11-29T19:50:00.000000Z","level":"INFO","message":"vespa-tls-webhook serving","addr":"127.0.0.1:40001","metrics_addr":"127.0.0.1:40002","target":"vespa_tls_webhook::server::listen"}"#;
    assert_eq!(
        listen::parse_serving_line(json),
        Some(listen::Listening {
            addr: a,
            metrics_addr: Some(m)
        })
    );
    let text = "2026-11-29T19:50:00.000000Z  INFO vespa-tls-webhook serving addr=127.0.0.1:40001";
    assert_eq!(
        listen::parse_serving_line(text),
        Some(listen::Listening {
            addr: a,
            metrics_addr: None
        })
    );
    let other = r#"{"level":"INFO","message":"admission decision","addr":"127.0.0.1:40001"}"#;
    assert_eq!(listen::parse_serving_line(other), None);
}

//! The HTTPS server: an accept loop of our own over rustls, HTTP/1.1 by hyper,
//! routes by axum.
//!
//! | route | answer |
//! |---|---|
//! | `POST /mutate`, `POST /validate` | the AdmissionReview response (400 for a body that is not a review, 413 above [`MAX_BODY`], 408 when the body is not received within the read timeout, 503 when the webhook is overloaded) |
//! | `GET /healthz` | 200 `ok` while the process serves |
//! | `GET /readyz` | 200 when a certificate is loaded and not expired and the namespace view has synced and is not stale; 503 with the reasons otherwise |
//! | `GET /metrics` | Prometheus/OpenMetrics text |
//!
//! An optional plain-HTTP listener (`--metrics-addr`) serves the last three.
//!
//! Each connection is its own task: the TLS handshake must arrive within the read
//! timeout, a request's headers within the read timeout of their first byte (a new
//! connection's from the handshake), and each request body within the read
//! timeout, so a slow client cannot pin a connection. Between requests a
//! keep-alive connection may sit idle for the idle timeout (120 s), longer than
//! the apiserver keeps it ([`crate::conn_timer`]). Each listener keeps at most
//! `max_connections` open and `max_idle_connections` idle: beyond either, the
//! connection idle longest is closed, and with the maximum open and none idle a
//! new connection is closed as soon as it is accepted
//! ([`crate::conn_timer::ConnLimit`]).
//!
//! On shutdown the listeners close at once (new connections are refused), and every
//! response from then on carries `Connection: close`: a connection finishes the
//! request it is serving and closes; an idle keep-alive connection is answered its
//! next request (with `Connection: close`) or closed a read timeout after the
//! signal, whichever comes first. Idle connections are not cut at the signal,
//! because a client may be sending a request on one at that very moment, and a
//! POST that was sent cannot be retried safely (the apiserver would fail the
//! call). [`RunningServer::shutdown`] returns when every connection is done or the
//! shutdown timeout has passed; without a slow client that is within the read
//! timeout.
//!
//! Overload: at most `max_in_flight` admission requests are read and decided at
//! once, holding at most `max_in_flight_body_bytes` of request bodies between them
//! (a body costs about six times its size while it is parsed and decided, so the
//! byte bound is what keeps large reviews within the container's memory). A
//! request waits up to [`QUEUE_WAIT`] for room, then gets 503 with the reason and
//! `Retry-After`.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::FutureExt;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::admission::{self, Decision, Endpoint, Review};
use crate::conn_timer::{
    ConnLimit, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_IDLE, DEFAULT_MAX_OPEN, Registration, Timed,
};
use crate::file_watch::{Poller, Tasks};
use crate::metrics::{self, Metrics, Outcome, ReadinessCheck};
use crate::namespace_view::{NamespaceSource, NamespaceView, NamespaceViewError};
use crate::policy::NamespaceMeta;
use crate::policy_watch::{PolicyError, PolicyHandle, PolicySource, PolicyWatch};
use crate::ready::ReadyMemo;
use crate::tls::{CertStore, TlsError};

/// Largest admission request body accepted: 4 MiB + 64 KiB, so a review carrying
/// a 3 MiB object (the apiserver's request limit) and its envelope fits.
pub const MAX_BODY: usize = 4 * 1024 * 1024 + 64 * 1024;

/// How much of a body over [`MAX_BODY`] is read and thrown away before answering
/// 413, so the client sees the answer rather than a reset connection.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// The buffer a body of several frames is joined into, at most this much up front
/// (it grows as data arrives); a body of one frame needs none ([`read_body`]).
const INITIAL_BUFFER: usize = 64 * 1024;

/// Bytes read from a TLS connection's socket at once (rustls alone reads 4 KiB
/// at a time: three system calls for a 10 KB review instead of one).
const READ_BUFFER: usize = 16 * 1024;

/// How long an admission request waits for room under the in-flight limits
/// before it is answered 503 (the apiserver gives a webhook at most 5 s).
pub const QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Default `--max-in-flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// Default bound on the request bodies held by admission requests in flight.
pub const DEFAULT_MAX_IN_FLIGHT_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Everything [`Server::start`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTPS listen address (`--addr`); port 0 picks a free port.
    pub addr: SocketAddr,
    /// Plain-HTTP address for /metrics, /healthz, /readyz (`--metrics-addr`).
    pub metrics_addr: Option<SocketAddr>,
    /// PEM certificate chain (`--tls-cert`).
    pub tls_cert: PathBuf,
    /// PEM private key (`--tls-key`).
    pub tls_key: PathBuf,
    /// Cluster policy file and the webhook's own namespace.
    pub policy: PolicySource,
    /// Where namespace labels come from.
    pub namespaces: NamespaceSource,
    /// Time allowed for the TLS handshake, for a request's headers from their first
    /// byte (a new connection's from the handshake), and for a request body
    /// (`--read-timeout-secs`).
    pub read_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests
    /// (`--idle-timeout-secs`): longer than the apiserver's 90 s, so that it is the
    /// client that ends an idle connection ([`crate::conn_timer`]).
    pub idle_timeout: Duration,
    /// At most this many connections stay idle; beyond it the one idle longest is
    /// closed (`--max-idle-connections`, [`crate::conn_timer::ConnLimit`]).
    pub max_idle_connections: usize,
    /// At most this many connections are open on each listener; beyond it the one
    /// idle longest is closed, or with none idle the new one refused
    /// (`--max-connections`, [`crate::conn_timer::ConnLimit`]).
    pub max_connections: usize,
    /// How often certificate, policy and namespaces files are checked for changes
    /// (all by one task, [`Poller`]).
    pub reload_interval: Duration,
    /// How long [`RunningServer::shutdown`] waits for open connections.
    pub shutdown_timeout: Duration,
    /// Admission requests read and decided at once (`--max-in-flight`).
    pub max_in_flight: usize,
    /// Request bytes those may hold between them (`--max-in-flight-mib`).
    pub max_in_flight_body_bytes: usize,
    /// How long the cluster namespace view may go without hearing from the
    /// apiserver before `/readyz` fails (`--namespace-stale-after-secs`).
    pub namespace_stale_after: Duration,
}

impl ServerConfig {
    /// Defaults: no metrics listener, built-in policy, in-cluster namespaces, 3 s
    /// read timeout, 120 s idle timeout, 512 open and 512 idle connections, 500 ms reload interval,
    /// 20 s shutdown timeout, 64 admission
    /// requests / 16 MiB of bodies in flight, namespace view stale after 60 s.
    pub fn new(addr: SocketAddr, tls_cert: PathBuf, tls_key: PathBuf) -> Self {
        ServerConfig {
            addr,
            metrics_addr: None,
            tls_cert,
            tls_key,
            policy: PolicySource::default(),
            namespaces: NamespaceSource::Cluster { kubeconfig: None },
            read_timeout: Duration::from_secs(3),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_idle_connections: DEFAULT_MAX_IDLE,
            max_connections: DEFAULT_MAX_OPEN,
            reload_interval: Duration::from_millis(500),
            shutdown_timeout: Duration::from_secs(20),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_in_flight_body_bytes: DEFAULT_MAX_IN_FLIGHT_BODY_BYTES,
            namespace_stale_after: crate::namespace_view::DEFAULT_STALE_AFTER,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("{flag} {addr}: {error}")]
    Bind {
        /// `--addr` or `--metrics-addr`.
        flag: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The serving certificate was refused.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The policy file was refused.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The namespace view could not start.
    #[error(transparent)]
    Namespaces(#[from] NamespaceViewError),
}

/// State shared by the handlers.
#[derive(Clone)]
struct App {
    policy: PolicyHandle,
    namespaces: NamespaceView,
    metrics: Arc<Metrics>,
    certs: Arc<CertStore>,
    read_timeout: Duration,
    limits: Limits,
    /// Each namespace's settings, derived once per policy and annotations.
    ready: Arc<ReadyMemo>,
    /// The admission port's connections (for `/metrics`).
    connections: Arc<ConnLimit>,
}

/// The in-flight bounds: request slots, and body bytes in KiB permits.
#[derive(Clone)]
struct Limits {
    requests: Arc<Semaphore>,
    max_requests: usize,
    body_kib: Arc<Semaphore>,
    max_body_kib: u32,
}

/// Room held by one admission request.
struct Admitted {
    _request: OwnedSemaphorePermit,
    body: Option<OwnedSemaphorePermit>,
    body_kib: u32,
}

impl Limits {
    fn new(max_requests: usize, max_body_bytes: usize) -> Self {
        let max_requests = max_requests.clamp(1, Semaphore::MAX_PERMITS);
        let max_body_kib = u32::try_from(max_body_bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        Limits {
            requests: Arc::new(Semaphore::new(max_requests)),
            max_requests,
            body_kib: Arc::new(Semaphore::new(max_body_kib as usize)),
            max_body_kib,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} admission requests or {} MiB of request bodies in flight",
            self.max_requests,
            self.max_body_kib.div_ceil(1024)
        )
    }

    /// A request slot, waiting until `deadline`.
    async fn admit(&self, deadline: tokio::time::Instant) -> Option<Admitted> {
        let permit = take(&self.requests, 1, deadline).await?;
        Some(Admitted {
            _request: permit,
            body: None,
            body_kib: 0,
        })
    }

    /// Hold room for `bytes` of body in total, waiting until `deadline`. A body
    /// larger than the whole budget may still use all of it.
    async fn reserve(
        &self,
        admitted: &mut Admitted,
        bytes: usize,
        deadline: tokio::time::Instant,
    ) -> bool {
        let want = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.max_body_kib);
        if want <= admitted.body_kib {
            return true;
        }
        let more = want - admitted.body_kib;
        let Some(permit) = take(&self.body_kib, more, deadline).await else {
            return false;
        };
        match &mut admitted.body {
            Some(held) => held.merge(permit),
            None => admitted.body = Some(permit),
        }
        admitted.body_kib = want;
        true
    }
}

/// `n` permits of `semaphore`, waiting until `deadline`. Permits free now are
/// taken without a timer: the usual case costs no timer entry. Taking them
/// cannot overtake a request already waiting, since the semaphore hands freed
/// permits to its waiters first.
async fn take(
    semaphore: &Arc<Semaphore>,
    n: u32,
    deadline: tokio::time::Instant,
) -> Option<OwnedSemaphorePermit> {
    match semaphore.clone().try_acquire_many_owned(n) {
        Ok(permit) => Some(permit),
        Err(TryAcquireError::Closed) => None,
        Err(TryAcquireError::NoPermits) => {
            tokio::time::timeout_at(deadline, semaphore.clone().acquire_many_owned(n))
                .await
                .ok()?
                .ok()
        }
    }
}

/// The webhook server.
#[derive(Debug)]
pub struct Server;

/// A started server; dropping it stops accepting and closes connections without
/// waiting (use [`RunningServer::shutdown`] to wait).
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    policy: PolicyHandle,
    metrics_addr: Option<SocketAddr>,
    token: CancellationToken,
    tracker: TaskTracker,
    tasks: Tasks,
    shutdown_timeout: Duration,
}

impl Server {
    /// Load certificate, policy and namespace view (errors name the flag), bind the
    /// listeners and start serving. Must run inside a tokio runtime.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        let metrics = Arc::new(Metrics::new());
        let certs = Arc::new(CertStore::load(&config.tls_cert, &config.tls_key)?);
        metrics.set_certificate_expiry(certs.not_after());
        if let Err(reason) = certs.check_valid(SystemTime::now()) {
            tracing::warn!(%reason, "serving certificate has expired; /readyz fails until it is replaced");
        }
        let tls = TlsAcceptor::from(certs.server_config()?);
        let policy = PolicyWatch::load(config.policy.clone())?;

        let bind = |flag: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|error| ServerError::Bind { flag, addr, error })
        };
        let listener = bind("--addr", config.addr).await?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(bind("--metrics-addr", addr).await?),
            None => None,
        };
        let local = |l: &TcpListener, flag, addr| {
            l.local_addr()
                .map_err(|error| ServerError::Bind { flag, addr, error })
        };
        let local_addr = local(&listener, "--addr", config.addr)?;
        let metrics_addr = match (&metrics_listener, config.metrics_addr) {
            (Some(l), Some(addr)) => Some(local(l, "--metrics-addr", addr)?),
            _ => None,
        };

        // Every watched file (the serving pair, the policy, a namespaces file) is
        // polled by one task: an idle server wakes once per interval.
        let mut poller = Poller::new();
        let (namespaces, mut tasks) = NamespaceView::start(
            config.namespaces,
            &mut poller,
            config.namespace_stale_after,
            metrics.clone(),
        )
        .await?;
        certs.watch_files(&mut poller, metrics.clone());
        policy.watch_file(&mut poller, metrics.clone());
        if let Some(t) = poller.spawn(config.reload_interval) {
            tasks.push(t);
        }

        // Each listener has its own bounds, so that connections to one (the
        // admission port, open to the network) cannot crowd out the other.
        let limit = || {
            ConnLimit::new(
                config.max_connections,
                config.max_idle_connections,
                metrics.idle_connections_closed(),
                metrics.connections_refused(),
            )
        };
        let admission_limit = limit();
        let metrics_listener = metrics_listener.map(|l| (l, limit()));
        let accepted = metrics.connections_accepted();
        let app_policy = policy.handle();
        let app = App {
            policy: app_policy.clone(),
            namespaces,
            metrics,
            certs,
            read_timeout: config.read_timeout,
            limits: Limits::new(config.max_in_flight, config.max_in_flight_body_bytes),
            ready: Arc::default(),
            connections: admission_limit.clone(),
        };
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let conn = ConnSettings {
            read_timeout: config.read_timeout,
            idle_timeout: config.idle_timeout.max(config.read_timeout),
            limit: admission_limit,
            accepted: Some(accepted),
            token: token.clone(),
            tracker: tracker.clone(),
        };
        if let Some((l, limit)) = metrics_listener {
            let conn = ConnSettings {
                limit,
                accepted: None,
                ..conn.clone()
            };
            tracker.spawn(accept_loop(l, None, router(app.clone(), false), conn));
        }
        tracker.spawn(accept_loop(listener, Some(tls), router(app, true), conn));
        log_serving(local_addr, metrics_addr);
        Ok(RunningServer {
            policy: app_policy,
            local_addr,
            metrics_addr,
            token,
            tracker,
            tasks,
            shutdown_timeout: config.shutdown_timeout,
        })
    }
}

impl RunningServer {
    /// The policy in force, reloaded when its file changes (shared with the
    /// controller so that one watcher serves both).
    pub fn policy(&self) -> PolicyHandle {
        self.policy.clone()
    }

    /// The HTTPS address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The plain-HTTP metrics address actually bound, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Graceful shutdown: stop accepting, let each connection finish its
    /// in-flight request and close, stop the background watchers. Returns `true`
    /// when every connection finished within the shutdown timeout.
    pub async fn shutdown(mut self) -> bool {
        self.token.cancel();
        self.tracker.close();
        let finished = tokio::time::timeout(self.shutdown_timeout, self.tracker.wait())
            .await
            .is_ok();
        if finished {
            tracing::info!("all connections closed");
        } else {
            tracing::warn!(
                open = self.tracker.len(),
                timeout = ?self.shutdown_timeout,
                "shutdown timeout reached with connections still open"
            );
        }
        self.tasks.abort_all();
        finished
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

#[derive(Clone)]
struct ConnSettings {
    read_timeout: Duration,
    idle_timeout: Duration,
    limit: Arc<ConnLimit>,
    /// Counts the connections accepted (the admission port's; `None` for the
    /// metrics port).
    accepted: Option<Counter>,
    token: CancellationToken,
    tracker: TaskTracker,
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    conn: ConnSettings,
) {
    loop {
        let accepted = tokio::select! {
            _ = conn.token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Some(accepted) = &conn.accepted {
            accepted.inc();
        }
        let Some(registration) = conn.limit.register() else {
            // The maximum are open and busy: closed before its handshake.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        conn.tracker.spawn(serve_connection(
            stream,
            registration,
            peer,
            tls.clone(),
            router.clone(),
            conn.clone(),
        ));
    }
    tracing::debug!("listener closed");
}

async fn serve_connection(
    stream: TcpStream,
    registration: Registration,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    conn: ConnSettings,
) {
    let Some(acceptor) = tls else {
        return serve_http(stream, registration, router, conn).await;
    };
    // A handshake under way at shutdown is finished (bounded by the read
    // timeout): the client connected while we were accepting, so it is served.
    // rustls reads at most 4 KiB per call: below it, one read of up to
    // READ_BUFFER takes a whole ~10 KB review from the socket at once.
    let stream = BufReader::with_capacity(READ_BUFFER, stream);
    let stream = match tokio::time::timeout(conn.read_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    serve_http(stream, registration, router, conn).await;
}

async fn serve_http<S>(stream: S, registration: Registration, router: Router, conn: ConnSettings)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // hyper's one timer runs from a response to the next request's headers: the
    // idle timeout. The read timeout for the headers themselves, from their first
    // byte, and the idle close at shutdown are `Timed`'s.
    let stream = Timed::new(stream, conn.read_timeout, conn.token.clone(), registration);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(conn.idle_timeout)
        .keep_alive(true);
    // Once shutdown has begun, every answer closes its connection (hyper honours
    // the header); idle connections end a read timeout after the signal.
    let token = conn.token.clone();
    let service = ServiceExt::<Request<hyper::body::Incoming>>::map_response(
        router,
        move |mut response: Response| {
            if token.is_cancelled() {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        },
    );
    let connection =
        builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

fn router(app: App, admission: bool) -> Router {
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page));
    if admission {
        r = r
            .route("/mutate", post(mutate))
            .route("/validate", post(validate));
    }
    r.with_state(app)
}

async fn healthz() -> &'static str {
    "ok"
}

/// Evaluate every readiness check, record each in the metrics; the reasons of
/// those failing.
fn readiness(app: &App) -> Vec<String> {
    let mut reasons = Vec::new();
    let mut check = |which: ReadinessCheck, outcome: Result<(), String>| {
        app.metrics.set_readiness(which, outcome.is_ok());
        if let Err(r) = outcome {
            reasons.push(r);
        }
    };
    check(
        ReadinessCheck::Certificate,
        app.certs.check_valid(SystemTime::now()),
    );
    check(
        ReadinessCheck::NamespaceViewSynced,
        if app.namespaces.is_ready() {
            Ok(())
        } else {
            Err("the namespace view has not synced yet".to_string())
        },
    );
    check(
        ReadinessCheck::NamespaceViewFresh,
        app.namespaces.check_fresh(),
    );
    reasons
}

async fn readyz(State(app): State<App>) -> Response {
    let reasons = readiness(&app);
    if reasons.is_empty() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, reasons.join("; ")).into_response()
    }
}

async fn metrics_page(State(app): State<App>) -> Response {
    let _ = readiness(&app);
    let (open, idle) = app.connections.counts();
    app.metrics.set_connections(open, idle);
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        app.metrics.encode(),
    )
        .into_response()
}

async fn mutate(State(app): State<App>, req: Request) -> Response {
    admit(&app, Endpoint::Mutate, req).await
}

async fn validate(State(app): State<App>, req: Request) -> Response {
    admit(&app, Endpoint::Validate, req).await
}

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("request body exceeds {MAX_BODY} bytes")]
    TooLarge,
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    #[error("cannot read request body: {0}")]
    Read(String),
    #[error("the webhook is at its limit of {0}; retry shortly")]
    Overloaded(String),
}

impl BodyError {
    fn reason(&self) -> &'static str {
        match self {
            BodyError::TooLarge => "too-large",
            BodyError::Timeout(_) => "read-timeout",
            BodyError::Read(_) => "bad-request",
            BodyError::Overloaded(_) => "overloaded",
        }
    }

    fn into_response(self) -> Response {
        let status = match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Read(_) => StatusCode::BAD_REQUEST,
            BodyError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let overloaded = matches!(self, BodyError::Overloaded(_));
        let mut response = (status, self.to_string()).into_response();
        if overloaded {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        // The rest of the body may still be on the wire: do not reuse the connection.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Read at most `limit` bytes of body within `timeout` (from now), holding room
/// for them under the in-flight limits (a declared length waiting for room until
/// `queue_deadline`).
///
/// A body that arrives in one frame (a review up to about a TLS record, as the
/// apiserver sends it) is kept as that frame's bytes, a view of hyper's read
/// buffer, without a copy; only a body of several frames is joined into one
/// buffer.
async fn read_body(
    req: Request,
    limit: usize,
    timeout: Duration,
    limits: &Limits,
    admitted: &mut Admitted,
    queue_deadline: tokio::time::Instant,
) -> Result<Bytes, BodyError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > limit as u64) {
        drain(body, deadline).await;
        return Err(BodyError::TooLarge);
    }
    // The apiserver always declares the length: hold room for all of it now.
    if let Some(n) = declared.and_then(|n| usize::try_from(n).ok())
        && !limits.reserve(admitted, n, queue_deadline).await
    {
        drain(body, deadline).await;
        return Err(BodyError::Overloaded(limits.describe()));
    }
    // Trust the declared length only so far: a client declaring 4 MiB and
    // sending nothing must not cost 4 MiB for the whole read timeout.
    let capacity = declared.map_or(INITIAL_BUFFER, |n| {
        usize::try_from(n).map_or(INITIAL_BUFFER, |n| n.min(INITIAL_BUFFER))
    });
    let mut read = BodyBuffer::default();
    loop {
        // What is there already (the body's end, after a one-frame review) is
        // taken without a timer; only a wait is timed.
        let next = match body.frame().now_or_never() {
            Some(next) => next,
            None => match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => return Err(BodyError::Timeout(timeout)),
                Ok(next) => next,
            },
        };
        let frame = match next {
            None => return Ok(read.into_bytes()),
            Some(Err(e)) => return Err(BodyError::Read(e.to_string())),
            Some(Ok(frame)) => frame,
        };
        if let Ok(data) = frame.into_data() {
            let total = read.len() + data.len();
            if total > limit {
                drain(body, deadline).await;
                return Err(BodyError::TooLarge);
            }
            if !limits.reserve(admitted, total, deadline).await {
                drain(body, deadline).await;
                return Err(BodyError::Overloaded(limits.describe()));
            }
            read.push(data, capacity);
        }
    }
}

/// The frames of a body read so far: none, one (kept as it came), or several
/// (joined).
#[derive(Debug, Default)]
enum BodyBuffer {
    #[default]
    Empty,
    One(Bytes),
    Joined(Vec<u8>),
}

impl BodyBuffer {
    fn len(&self) -> usize {
        match self {
            BodyBuffer::Empty => 0,
            BodyBuffer::One(b) => b.len(),
            BodyBuffer::Joined(v) => v.len(),
        }
    }

    /// Add a frame; `capacity`: the buffer to start with when frames are joined.
    fn push(&mut self, data: Bytes, capacity: usize) {
        match std::mem::take(self) {
            BodyBuffer::Empty => *self = BodyBuffer::One(data),
            BodyBuffer::One(first) => {
                let mut joined = Vec::with_capacity(capacity.max(first.len() + data.len()));
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&data);
                *self = BodyBuffer::Joined(joined);
            }
            BodyBuffer::Joined(mut joined) => {
                joined.extend_from_slice(&data);
                *self = BodyBuffer::Joined(joined);
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            BodyBuffer::Empty => Bytes::new(),
            BodyBuffer::One(b) => b,
            BodyBuffer::Joined(v) => Bytes::from(v),
        }
    }
}

/// Read and discard the rest of a body, up to [`DRAIN_LIMIT`] bytes or the deadline.
async fn drain(mut body: Body, deadline: tokio::time::Instant) {
    let mut drained: u64 = 0;
    while drained <= DRAIN_LIMIT {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    drained += data.len() as u64;
                }
            }
            _ => return,
        }
    }
}

/// Read, parse, look up, decide, serialise.
async fn admit(app: &App, endpoint: Endpoint, req: Request) -> Response {
    // One reading of the clock for the start and the wait for a slot.
    let now = tokio::time::Instant::now();
    let started = now.into_std();
    let ep = endpoint.as_str();
    let refuse = |reason: &'static str, error: &dyn std::fmt::Display| {
        app.metrics.admission(
            ep,
            "unknown",
            "unknown",
            Outcome::Error,
            reason,
            started.elapsed(),
        );
        tracing::warn!(endpoint = ep, reason, error = %error, "admission request refused");
    };
    let queue_deadline = now + QUEUE_WAIT;
    let Some(mut admitted) = app.limits.admit(queue_deadline).await else {
        let e = BodyError::Overloaded(app.limits.describe());
        refuse(e.reason(), &e);
        let (parts, body) = req.into_parts();
        drop(parts);
        drain(body, tokio::time::Instant::now() + app.read_timeout).await;
        return e.into_response();
    };
    // Counted from the moment it has a slot (so never above --max-in-flight).
    let _in_flight = app.metrics.admission_started();
    let body = match read_body(
        req,
        MAX_BODY,
        app.read_timeout,
        &app.limits,
        &mut admitted,
        queue_deadline,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            refuse(e.reason(), &e);
            return e.into_response();
        }
    };
    let review = match admission::parse_review_for(endpoint, &body) {
        Ok(r) => r,
        Err(e) => {
            refuse("bad-request", &e);
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    drop(body);
    let decision = match review.namespace() {
        None => decide(app, endpoint, &review, None),
        Some(name) => match app.namespaces.lookup(name).await {
            Ok(found) => {
                let ns = found.unwrap_or_else(|| Arc::new(NamespaceMeta::named(name)));
                decide(app, endpoint, &review, Some(&ns))
            }
            Err(e) => Some(Decision::unavailable(&e.to_string())),
        },
    };
    let kind = metrics::kind_label(&review);
    let operation = metrics::operation_label(&review);
    let Some(decision) = decision else {
        app.metrics.admission(
            ep,
            kind,
            operation,
            Outcome::Error,
            "internal-error",
            started.elapsed(),
        );
        tracing::error!(endpoint = ep, uid = %review.request.uid, object = %review.object_name(), "admission decision panicked");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error deciding on this review",
        )
            .into_response();
    };
    let response = review.respond(&decision);
    let elapsed = started.elapsed();
    app.metrics.admission(
        ep,
        kind,
        operation,
        metrics::outcome(&decision),
        decision.reason,
        elapsed,
    );
    log_decision(ep, &review, &decision, elapsed);
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(response),
    )
        .into_response()
}

/// The pure decision, shielded: a panic in it is answered 500, never unwinds
/// into the connection.
fn decide(
    app: &App,
    endpoint: Endpoint,
    review: &Review,
    ns: Option<&NamespaceMeta>,
) -> Option<Decision> {
    let policy = app.policy.current();
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        admission::decide_with(endpoint, review, &policy, ns, &|ns| {
            app.ready.get(&policy, ns)
        })
    }))
    .ok()
}

/// The `tracing` target of the line that says where the server listens, so that
/// `RUST_LOG=warn,vespa_tls_webhook::server::listen=info` shows it without the
/// decision lines. With `--addr 127.0.0.1:0` the kernel picks the port at bind
/// time and this line is where to read it (the test harnesses and the bench do).
pub const LISTEN_TARGET: &str = "vespa_tls_webhook::server::listen";

/// "vespa-tls-webhook serving" with the bound addresses (`addr`, and
/// `metrics_addr` when the metrics listener is on), as `ip:port` strings.
fn log_serving(addr: SocketAddr, metrics_addr: Option<SocketAddr>) {
    tracing::info!(
        target: LISTEN_TARGET,
        addr = %addr,
        // `None` records no field at all.
        metrics_addr = metrics_addr.map(tracing::field::display),
        "vespa-tls-webhook serving"
    );
}

fn log_decision(endpoint: &str, review: &Review, d: &Decision, elapsed: Duration) {
    let r = &review.request;
    let elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let dry_run = r.dry_run.unwrap_or(false);
    if d.allowed {
        tracing::info!(
            endpoint,
            uid = r.uid.as_str(),
            kind = r.kind.kind.as_str(),
            operation = r.operation.as_str(),
            object = %review.object_name(),
            allowed = true,
            reason = d.reason,
            patch_ops = d.patch.len(),
            warnings = d.warnings.len(),
            dry_run,
            elapsed_us,
            "admission decision"
        );
    } else {
        tracing::info!(
            endpoint,
            uid = r.uid.as_str(),
            kind = r.kind.kind.as_str(),
            operation = r.operation.as_str(),
            object = %review.object_name(),
            allowed = false,
            reason = d.reason,
            message = %d.message,
            dry_run,
            elapsed_us,
            "admission decision"
        );
    }
}

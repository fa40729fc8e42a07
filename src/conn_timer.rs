//! The two clocks of one keep-alive connection: how long it may sit idle between
//! requests, and how long a request's headers may take once they have started.
//!
//! hyper has one timer for both (`header_read_timeout` runs from the end of a
//! response to the end of the next request's headers). With it set to the read
//! timeout (3 s) the webhook closed every connection idle for 3 s, while the
//! apiserver keeps idle connections for 90 s and does not retry a POST: a review
//! sent on a connection at the moment the webhook closed it failed, and every
//! review after a quiet spell of 3 s paid a new TCP and TLS handshake.
//!
//! So hyper's timer is given the idle timeout (`--idle-timeout-secs`, 120 s by
//! default, longer than the apiserver's 90 s so that the client, not the server,
//! ends an idle connection), and [`Timed`], wrapped around the connection's
//! stream, keeps the read timeout for the part a slow client could stretch:
//!
//! | the connection is | [`Timed`] |
//! |---|---|
//! | new (accepted, TLS done) | the first request's headers must end within the read timeout |
//! | idle (a response was written) | no limit of its own (hyper's idle timeout) |
//! | receiving a request (a byte after idle) | its headers, up to the blank line, must end within the read timeout of that first byte |
//! | past the headers | nothing: the handler times the body (and answers 408); an interim `100 Continue` does not end the request |
//! | idle when shutdown begins | closed if no request starts within the read timeout |
//! | idle longest when another connection arrives with [`ConnLimit`]'s maximum idle, or its maximum open | closed |
//!
//! A request pipelined behind another (which the apiserver never does) is bounded
//! by hyper's timer alone.
//!
//! A read that would wait past the headers' deadline fails with
//! [`std::io::ErrorKind::TimedOut`], which ends the connection as hyper's own
//! timer would; an idle connection at shutdown reads as closed by the client.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Where the connection is in its request/response cycle, as far as its bytes show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request's headers against the deadline; `line`: where the
    /// last byte read left the current line.
    Headers { line: Line },
    /// Past the headers: the body and the answer are the handler's to time.
    Request,
    /// A response was written; waiting for the next request without a limit.
    Idle,
    /// Idle when shutdown began: closed at the deadline unless a request starts.
    Closing,
}

impl Phase {
    /// Waiting for a request ([`ConnLimit`] counts it as idle).
    fn is_idle(self) -> bool {
        matches!(self, Phase::Idle | Phase::Closing)
    }
}

/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 ";

/// The default idle timeout of a keep-alive connection (`--idle-timeout-secs`):
/// above the 90 s for which the apiserver (Go's `http.Transport`) keeps idle
/// connections.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The default of [`ConnLimit`]'s idle bound (`--max-idle-connections`): about
/// 18 MiB of idle TLS connections, far more than the apiserver keeps open.
pub const DEFAULT_MAX_IDLE: usize = 512;

/// The default of [`ConnLimit`]'s bound on open connections (`--max-connections`).
/// A connection costs about 8 KiB before its TLS handshake, 35 KiB once past it
/// (rustls and the 16 KiB read buffer) and about 90 KiB while a body arrives
/// (measured with 500 each, 2026-11-28): 512 keep the worst case near 50 MiB,
/// beside the 16 MiB of bodies decided at once, within the shipped 128 MiB limit.
pub const DEFAULT_MAX_OPEN: usize = 512;

/// The bounds on a listener's connections.
///
/// Idle: at most `max_idle` connections stay idle; when a connection arrives
/// while the maximum are idle, the one idle longest is closed. Idle connections
/// cost about 35 KiB each and are kept up to the idle timeout, so without a
/// bound any client that can connect could hold memory by opening connections
/// and going quiet. (Closing an idle connection can race a request sent on it at
/// that moment — the reason idle connections are kept at all — so this is for
/// abuse, and the bound is far above what the apiserver keeps.)
///
/// Open: at most `max_open` connections are open, busy (in their TLS handshake,
/// or with a request under way) or idle. A connection arriving with the maximum
/// open closes the one idle longest to make room; when none is idle, the new
/// connection is refused — closed as soon as it is accepted, before its
/// handshake. Busy connections end by themselves (each phase of a request is
/// bounded by the read timeout), so a refusal lasts only while clients keep that
/// many requests under way; it bounds memory whatever clients do.
///
/// The lock is taken when a connection opens and closes; a connection turning
/// idle or busy only writes its own [`Slot`], so a review takes no lock here.
#[derive(Debug)]
pub struct ConnLimit {
    max_idle: usize,
    max_open: usize,
    /// What idle times are counted from.
    origin: Instant,
    conns: Mutex<Conns>,
    /// Idle connections closed to make room.
    closed: Counter,
    /// Connections refused with the maximum open and none idle.
    refused: Counter,
}

#[derive(Debug, Default)]
struct Conns {
    next_id: u64,
    open: HashMap<u64, Arc<Slot>>,
}

/// One open connection as [`ConnLimit`] sees it.
#[derive(Debug, Default)]
struct Slot {
    /// Nanoseconds from the limit's origin to when the connection turned idle,
    /// plus one; 0 while it is busy.
    idle_since: AtomicU64,
    /// Closes it (read by its [`Timed`] while idle).
    evict: CancellationToken,
}

impl Slot {
    fn idle_since(&self) -> Option<u64> {
        Some(self.idle_since.load(Ordering::Relaxed)).filter(|&t| t != 0)
    }
}

impl ConnLimit {
    /// Bounds of `max_open` open and `max_idle` idle connections (each at least
    /// 1), counting idle connections closed to make room in `closed` and
    /// connections refused in `refused`.
    pub fn new(
        max_open: usize,
        max_idle: usize,
        closed: Counter,
        refused: Counter,
    ) -> Arc<ConnLimit> {
        Arc::new(ConnLimit {
            max_idle: max_idle.max(1),
            max_open: max_open.max(1),
            origin: Instant::now(),
            conns: Mutex::default(),
            closed,
            refused,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conns> {
        // The map stays consistent whatever panicked while it was held.
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new connection: counted from now, busy. Closes the connection idle
    /// longest if the maximum are idle or open; `None` (the connection is to be
    /// refused) if the maximum are open and none is idle.
    pub fn register(self: &Arc<Self>) -> Option<Registration> {
        let slot = Arc::new(Slot::default());
        let mut conns = self.lock();
        let mut idle = 0;
        let mut longest: Option<(u64, u64)> = None;
        for (id, open) in &conns.open {
            if let Some(since) = open.idle_since() {
                idle += 1;
                if longest.is_none_or(|(oldest, _)| since < oldest) {
                    longest = Some((since, *id));
                }
            }
        }
        if (idle >= self.max_idle || conns.open.len() >= self.max_open)
            && let Some((_, id)) = longest
            && let Some(evicted) = conns.open.remove(&id)
        {
            tracing::debug!(
                max_idle = self.max_idle,
                max_open = self.max_open,
                "closing the connection idle longest"
            );
            evicted.evict.cancel();
            self.closed.inc();
        }
        if conns.open.len() >= self.max_open {
            tracing::debug!(
                max_open = self.max_open,
                "refusing a connection: the maximum are open and busy"
            );
            self.refused.inc();
            return None;
        }
        let id = conns.next_id;
        conns.next_id += 1;
        conns.open.insert(id, slot.clone());
        Some(Registration {
            limit: self.clone(),
            id,
            evicted: Box::pin(slot.evict.clone().cancelled_owned()),
            slot,
        })
    }

    /// How many connections are open and how many of them idle.
    pub fn counts(&self) -> (usize, usize) {
        let conns = self.lock();
        let idle = conns
            .open
            .values()
            .filter(|s| s.idle_since().is_some())
            .count();
        (conns.open.len(), idle)
    }
}

/// One connection's place in its [`ConnLimit`]; leaves it when dropped.
#[derive(Debug)]
pub struct Registration {
    limit: Arc<ConnLimit>,
    id: u64,
    slot: Arc<Slot>,
    evicted: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Registration {
    /// The connection turned idle (now) or busy.
    fn set_idle(&self, idle: bool) {
        let since = if idle {
            let nanos = self.limit.origin.elapsed().as_nanos();
            u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
        } else {
            0
        };
        self.slot.idle_since.store(since, Ordering::Relaxed);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.limit.lock().open.remove(&self.id);
    }
}

/// Where in a header line the bytes read so far end. The headers end with an
/// empty line: a line feed at the start of a line, after an optional carriage
/// return (`\r\n\r\n`, or `\n\n` as httparse also accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Within a line (or before the first).
    Within,
    /// Just after a line feed.
    Start,
    /// A carriage return at the start of a line.
    StartCr,
}

/// A connection's stream with the headers' deadline and shutdown's idle close.
pub struct Timed<S> {
    inner: S,
    read_timeout: Duration,
    phase: Phase,
    /// The deadline of `Headers` and `Closing`.
    deadline: Pin<Box<Sleep>>,
    /// Resolves when shutdown begins.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The token `shutdown` waits on (read without polling, below).
    shutdown_token: CancellationToken,
    /// The waker `shutdown` and the eviction were last polled with, if any.
    /// Both stay registered while the connection lives, so while the task's
    /// waker is the same they are not polled again: a poll of either takes its
    /// `Notify`'s lock, and the shutdown token's is shared by every connection
    /// (two locks per keep-alive review, one of them contended between the
    /// runtime's threads). Their state is read from the tokens instead.
    watched_with: Option<Waker>,
    /// The connection's place among the idle ones.
    registration: Registration,
}

impl<S> Timed<S> {
    /// Wrap a newly accepted connection: its first request's headers are due
    /// within `read_timeout` from now.
    pub fn new(
        inner: S,
        read_timeout: Duration,
        shutdown: CancellationToken,
        registration: Registration,
    ) -> Self {
        Timed {
            inner,
            read_timeout,
            phase: Phase::Headers { line: Line::Within },
            deadline: Box::pin(tokio::time::sleep(read_timeout)),
            shutdown: Box::pin(shutdown.clone().cancelled_owned()),
            shutdown_token: shutdown,
            watched_with: None,
            registration,
        }
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase.is_idle() != phase.is_idle() {
            self.registration.set_idle(phase.is_idle());
        }
        self.phase = phase;
    }

    /// Follow the request/response cycle through bytes just read.
    fn read_bytes(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut line = match self.phase {
            Phase::Headers { line } => line,
            Phase::Idle | Phase::Closing => {
                // The first byte of a request: its headers are due from now.
                self.deadline
                    .as_mut()
                    .reset(Instant::now() + self.read_timeout);
                Line::Within
            }
            Phase::Request => return,
        };
        // Within a line only a line feed matters: jump to the next one
        // (memchr, sixteen or more bytes at a time); at a line's start look at
        // the byte or two that may end the headers.
        let mut rest = bytes;
        loop {
            line = match (line, rest.first()) {
                (_, None) => break,
                (Line::Start | Line::StartCr, Some(b'\n')) => {
                    self.set_phase(Phase::Request);
                    return;
                }
                (Line::Start, Some(b'\r')) => {
                    rest = &rest[1..];
                    Line::StartCr
                }
                // Any other byte is within a line, and not a line feed: the
                // search below starts at it.
                (Line::Start | Line::StartCr, Some(_)) => Line::Within,
                (Line::Within, Some(_)) => match memchr::memchr(b'\n', rest) {
                    Some(i) => {
                        rest = &rest[i + 1..];
                        Line::Start
                    }
                    None => break,
                },
            };
        }
        self.set_phase(Phase::Headers { line });
    }

    /// `n` bytes of a response were written, starting with `first`: the request
    /// is over — unless this is an interim `100 Continue`, after which the body
    /// of the same request follows (timed by the handler).
    fn wrote(&mut self, n: usize, first: &[u8]) {
        if n > 0 && !first.starts_with(CONTINUE) {
            self.set_phase(Phase::Idle);
        }
    }

    /// The read found nothing to read: whether the connection's time is up.
    fn waiting(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (evicted, shutdown) = if !self.phase.is_idle() {
            (false, false)
        } else if self
            .watched_with
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            (
                self.registration.slot.evict.is_cancelled(),
                self.shutdown_token.is_cancelled(),
            )
        } else {
            let evicted = self.registration.evicted.as_mut().poll(cx).is_ready();
            let shutdown = self.shutdown.as_mut().poll(cx).is_ready();
            self.watched_with = Some(cx.waker().clone());
            (evicted, shutdown)
        };
        if evicted {
            // Closed to make room ([`ConnLimit`]): read as the end of the stream.
            return Poll::Ready(Ok(()));
        }
        if self.phase == Phase::Idle && shutdown {
            self.phase = Phase::Closing;
            self.deadline
                .as_mut()
                .reset(Instant::now() + self.read_timeout);
        }
        match self.phase {
            Phase::Headers { .. } => {
                ready!(self.deadline.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request headers not received within the read timeout",
                )))
            }
            Phase::Closing => {
                ready!(self.deadline.as_mut().poll(cx));
                // Read as the end of the stream: hyper closes the connection.
                Poll::Ready(Ok(()))
            }
            Phase::Request | Phase::Idle => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.read_bytes(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.waiting(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.wrote(n, buf);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        self.wrote(n, first);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    const T: Duration = Duration::from_secs(3);

    #[test]
    fn the_headers_end_at_the_blank_line_even_split_across_reads() {
        let (a, _b) = tokio::io::duplex(64);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut t = Timed::new(
                a,
                T,
                CancellationToken::new(),
                ConnLimit::new(8, 8, Counter::default(), Counter::default())
                    .register()
                    .unwrap(),
            );
            t.read_bytes(b"POST /mutate HTTP/1.1\r\nhost: x\r");
            assert_eq!(t.phase, Phase::Headers { line: Line::Within });
            t.read_bytes(b"\n\r");
            assert_eq!(
                t.phase,
                Phase::Headers {
                    line: Line::StartCr
                }
            );
            t.read_bytes(b"\n{\"body\"");
            assert_eq!(t.phase, Phase::Request);
            // Body bytes that look like a blank line change nothing.
            t.read_bytes(b"\r\n\r\n");
            assert_eq!(t.phase, Phase::Request);
            t.wrote(0, b"");
            assert_eq!(t.phase, Phase::Request);
            // An interim 100 Continue does not end the request; a response does.
            t.wrote(25, b"HTTP/1.1 100 Continue\r\n\r\n");
            assert_eq!(t.phase, Phase::Request);
            t.wrote(10, b"HTTP/1.1 200 OK\r\n");
            assert_eq!(t.phase, Phase::Idle);
            // Bare line feeds end them too; a carriage return within a line does not.
            t.read_bytes(b"GET / HTTP/1.1\nhost: x\r\n");
            assert_eq!(t.phase, Phase::Headers { line: Line::Start });
            t.read_bytes(b"\n");
            assert_eq!(t.phase, Phase::Request);
            t.wrote(1, b"H");
            t.read_bytes(b"GET / HTTP/1.1\r\nx: \r\r\n");
            assert_eq!(t.phase, Phase::Headers { line: Line::Start });
        });
    }

    /// The headers' end as the state machine read it a byte at a time (before
    /// it searched for line feeds): `None` once a blank line was read.
    fn headers_a_byte_at_a_time(bytes: &[u8]) -> Option<Line> {
        let mut line = Line::Within;
        for &b in bytes {
            line = match (line, b) {
                (Line::Start | Line::StartCr, b'\n') => return None,
                (_, b'\n') => Line::Start,
                (Line::Start, b'\r') => Line::StartCr,
                _ => Line::Within,
            };
        }
        Some(line)
    }

    #[test]
    fn the_headers_end_where_a_byte_at_a_time_says_at_every_split() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let limit = ConnLimit::new(8, 8, Counter::default(), Counter::default());
        let alphabet = [b'a', b'\r', b'\n'];
        let mut checked = 0;
        for len in 0..=7u32 {
            for mut n in 0..3usize.pow(len) {
                let mut bytes = Vec::new();
                for _ in 0..len {
                    bytes.push(alphabet[n % 3]);
                    n /= 3;
                }
                // Padding, so that the search's wide steps are taken too.
                for pad in [0, 40] {
                    let mut text = vec![b'x'; pad];
                    text.extend_from_slice(&bytes);
                    let want = match headers_a_byte_at_a_time(&text) {
                        Some(line) => Phase::Headers { line },
                        None => Phase::Request,
                    };
                    for split in 0..=text.len() {
                        let (a, _b) = duplex(64);
                        let mut t =
                            Timed::new(a, T, CancellationToken::new(), limit.register().unwrap());
                        t.read_bytes(&text[..split]);
                        t.read_bytes(&text[split..]);
                        assert_eq!(t.phase, want, "{text:?} split at {split}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_and_eviction_reach_a_connection_already_waiting_while_idle_before() {
        for evict in [false, true] {
            let (server, mut client) = duplex(1024);
            let token = CancellationToken::new();
            let limit = ConnLimit::new(8, 8, Counter::default(), Counter::default());
            let mut t = Timed::new(server, T, token.clone(), limit.register().unwrap());
            let mut buf = [0u8; 64];
            // Two requests, each followed by an idle wait in which the read is
            // pending (so both signals are watched from the first idle wait on).
            for _ in 0..2 {
                client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
                assert_eq!(t.read(&mut buf).await.unwrap(), 18);
                t.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
                let idle = tokio::time::timeout(Duration::from_secs(5), t.read(&mut buf)).await;
                assert!(idle.is_err(), "idle, the read waits");
            }
            let slot = limit.lock().open.values().next().cloned().unwrap();
            let signal = async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                if evict {
                    slot.evict.cancel();
                } else {
                    token.cancel();
                }
            };
            let start = Instant::now();
            let read = tokio::time::timeout(Duration::from_secs(600), t.read(&mut buf));
            let ((), read) = tokio::join!(signal, read);
            assert_eq!(
                read.expect("the signal reached the waiting read").unwrap(),
                0,
                "closed as if by the client"
            );
            let after = if evict { Duration::ZERO } else { T };
            assert_eq!(start.elapsed(), Duration::from_secs(60) + after);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_waits_past_the_read_timeout_and_slow_headers_do_not() {
        let (server, mut client) = duplex(1024);
        let mut t = Timed::new(
            server,
            T,
            CancellationToken::new(),
            ConnLimit::new(8, 8, Counter::default(), Counter::default())
                .register()
                .unwrap(),
        );
        let mut buf = [0u8; 256];
        client
            .write_all(b"GET /healthz HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let n = t.read(&mut buf).await.unwrap();
        assert!(n > 0);
        t.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        // Idle for ten read timeouts, then a request whose headers stall.
        let client_side = async {
            tokio::time::sleep(10 * T).await;
            client
                .write_all(b"POST /mutate HTTP/1.1\r\n")
                .await
                .unwrap();
            client
        };
        let reader = async {
            let first = t.read(&mut buf).await;
            let started = Instant::now();
            let second = t.read(&mut buf).await;
            (first, second, started.elapsed())
        };
        let (_client, (first, second, waited)) = tokio::join!(client_side, reader);
        assert_eq!(
            first.unwrap(),
            23,
            "the request after the idle time is read"
        );
        let e = second.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            waited, T,
            "the headers' deadline runs from their first byte"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_that_sends_nothing_times_out() {
        let (server, _client) = duplex(64);
        let mut t = Timed::new(
            server,
            T,
            CancellationToken::new(),
            ConnLimit::new(8, 8, Counter::default(), Counter::default())
                .register()
                .unwrap(),
        );
        let start = Instant::now();
        let e = t.read(&mut [0u8; 16]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), T);
    }

    #[tokio::test(start_paused = true)]
    async fn at_shutdown_an_idle_connection_closes_after_the_read_timeout_unless_used() {
        for used in [false, true] {
            let (server, mut client) = duplex(1024);
            let token = CancellationToken::new();
            let mut t = Timed::new(
                server,
                T,
                token.clone(),
                ConnLimit::new(8, 8, Counter::default(), Counter::default())
                    .register()
                    .unwrap(),
            );
            client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            let mut buf = [0u8; 64];
            assert_eq!(t.read(&mut buf).await.unwrap(), 18);
            t.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            let signal = async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                token.cancel();
                if used {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
                }
                client
            };
            let start = Instant::now();
            let (_client, read) = tokio::join!(signal, t.read(&mut buf));
            if used {
                assert_eq!(read.unwrap(), 18, "a request just after the signal is read");
                assert_eq!(start.elapsed(), Duration::from_secs(62));
            } else {
                assert_eq!(read.unwrap(), 0, "closed as if by the client");
                assert_eq!(start.elapsed(), Duration::from_secs(60) + T);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_maximum_idle_the_connection_idle_longest_is_closed() {
        let closed = Counter::default();
        let limit = ConnLimit::new(100, 2, closed.clone(), Counter::default());
        let mut clients = Vec::new();
        let mut timed = Vec::new();
        for _ in 0..3 {
            let (server, mut client) = duplex(1024);
            let mut t = Timed::new(
                server,
                T,
                CancellationToken::new(),
                limit.register().unwrap(),
            );
            client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            assert_eq!(t.read(&mut [0u8; 64]).await.unwrap(), 18);
            t.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            clients.push(client);
            timed.push(t);
        }
        // The third arrived with two idle: the first, idle longest, was closed.
        assert_eq!(limit.counts(), (2, 2));
        let mut buf = [0u8; 64];
        assert_eq!(timed[0].read(&mut buf).await.unwrap(), 0, "read as closed");
        assert_eq!(closed.get(), 1);
        // A request on the third makes it busy; a fourth arrives with one idle: room.
        clients[2]
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(timed[2].read(&mut buf).await.unwrap(), 18);
        assert_eq!(limit.counts(), (2, 1));
        let (server, _client) = duplex(64);
        let fourth = Timed::new(
            server,
            T,
            CancellationToken::new(),
            limit.register().unwrap(),
        );
        assert_eq!(limit.counts(), (3, 1));
        // The third answers and is idle again; a fifth arrives with two idle: the
        // second (idle longest) goes, never the busy fourth.
        timed[2]
            .write_all(b"HTTP/1.1 200 OK\r\n\r\n")
            .await
            .unwrap();
        let (server, _client) = duplex(64);
        let fifth = Timed::new(
            server,
            T,
            CancellationToken::new(),
            limit.register().unwrap(),
        );
        assert_eq!(limit.counts(), (3, 1));
        let second = tokio::time::timeout(Duration::from_millis(10), timed[1].read(&mut buf));
        assert_eq!(
            second.await.unwrap().unwrap(),
            0,
            "the second read as closed"
        );
        let third = tokio::time::timeout(Duration::from_millis(10), timed[2].read(&mut buf));
        assert!(third.await.is_err(), "the third still waits for a request");
        for t in timed.drain(..) {
            drop(t);
        }
        drop((fourth, fifth));
        assert_eq!(limit.counts(), (0, 0), "every connection left on drop");
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_maximum_open_an_idle_one_makes_room_else_the_new_one_is_refused() {
        let closed = Counter::default();
        let refused = Counter::default();
        let limit = ConnLimit::new(2, 8, closed.clone(), refused.clone());
        let (server, mut first_client) = duplex(1024);
        let mut first = Timed::new(
            server,
            T,
            CancellationToken::new(),
            limit.register().unwrap(),
        );
        let second = limit.register().unwrap();
        // Two open, both busy (a new connection is busy until its first answer).
        assert!(limit.register().is_none(), "the third is refused");
        assert_eq!((refused.get(), closed.get()), (1, 0));
        assert_eq!(limit.counts(), (2, 0));
        // The first answers a request and is idle: the next arrival closes it.
        first_client
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(first.read(&mut [0u8; 64]).await.unwrap(), 18);
        first.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        assert_eq!(limit.counts(), (2, 1));
        let third = limit.register().expect("room made by closing the idle one");
        assert_eq!((refused.get(), closed.get()), (1, 1));
        assert_eq!(limit.counts(), (2, 0));
        assert_eq!(
            first.read(&mut [0u8; 64]).await.unwrap(),
            0,
            "read as closed"
        );
        // A connection that ends leaves room.
        drop(second);
        let fourth = limit.register().expect("room left by the second");
        assert!(limit.register().is_none());
        assert_eq!(refused.get(), 2);
        drop((first, third, fourth));
        assert_eq!(limit.counts(), (0, 0));
    }
}

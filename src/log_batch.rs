//! Log lines gathered in memory and written out in batches by a logging thread.
//!
//! Every admission decision logs a line. Handing each line to a logging thread
//! through a channel (tracing-appender's non-blocking writer, used until
//! 2026-11-29) cost more than formatting it: a heap copy per line, a wake-up of
//! the logging thread per line when it slept, and that thread spinning on
//! `sched_yield` between lines on the core the server runs on — about 15% of
//! the server's throughput at 4 connections, against ~5% for the formatting.
//!
//! Here a line is appended to one shared buffer under a mutex (a copy of a few
//! hundred bytes; the logging thread holds the lock only to swap buffers). The
//! logging thread sleeps until a line arrives in an empty buffer, then waits
//! [`Limits::delay`] for more and writes everything waiting with one `write`:
//! under load about a hundred writes a second whatever the rate of lines, when
//! idle no wake-ups at all, and a line is out within the delay (10 ms).
//!
//! Nothing is dropped: when [`Limits::max_waiting`] bytes are waiting (the sink
//! is slower than the logging), logging waits for the logging thread, as the
//! channel did when full. When [`Limits::flush_at`] bytes are waiting the
//! logging thread is woken before its delay ends. Dropping the [`BatchGuard`]
//! writes out every line logged before and stops the thread; a line logged
//! after that is discarded (nothing logs then: the guard lives until `serve`
//! and `controller` return). A failing sink (stderr closed) loses its batch;
//! logging never fails or blocks because of it.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How lines are batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long the logging thread waits for more lines after the first.
    pub delay: Duration,
    /// Bytes waiting at which the logging thread is woken before the delay ends.
    pub flush_at: usize,
    /// Bytes waiting at which logging waits for the logging thread.
    pub max_waiting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            delay: Duration::from_millis(10),
            flush_at: 256 * 1024,
            max_waiting: 8 * 1024 * 1024,
        }
    }
}

/// What logging and the logging thread share.
#[derive(Debug)]
struct Shared {
    limits: Limits,
    state: Mutex<State>,
    /// The logging thread waits here for lines.
    lines: Condvar,
    /// Logging waits here for room.
    room: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Lines waiting to be written.
    waiting: Vec<u8>,
    /// The logging thread is waiting for a first line (not in its delay).
    asleep: bool,
    /// The guard was dropped or the logging thread ended.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one holds whole lines.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Append one line (or any bytes), waiting for room when the buffer is full.
    fn append(&self, line: &[u8]) {
        let mut state = self.lock();
        while state.waiting.len() >= self.limits.max_waiting && !state.closed {
            state = self
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.closed {
            return;
        }
        let before = state.waiting.len();
        state.waiting.extend_from_slice(line);
        // Wake the thread only for a first line (it sleeps only on an empty
        // buffer) or on crossing `flush_at`: a notify is a system call, and under
        // load the thread is in its delay.
        if state.asleep {
            state.asleep = false;
            self.lines.notify_one();
        } else if before < self.limits.flush_at && state.waiting.len() >= self.limits.flush_at {
            self.lines.notify_one();
        }
    }

    /// The logging thread: wait for lines, gather for the delay, write, repeat;
    /// at close, write what is left and stop.
    fn run(&self, mut sink: impl Write) {
        let mut batch = Vec::new();
        loop {
            let mut state = self.lock();
            while state.waiting.is_empty() && !state.closed {
                state.asleep = true;
                state = self
                    .lines
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            // (`asleep` was cleared by the line that woke us.)
            if !state.closed {
                state = self
                    .lines
                    .wait_timeout_while(state, self.limits.delay, |s| {
                        s.waiting.len() < self.limits.flush_at && !s.closed
                    })
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            let closed = state.closed;
            // Logging waits for room only on a full buffer.
            let was_full = state.waiting.len() >= self.limits.max_waiting;
            std::mem::swap(&mut batch, &mut state.waiting);
            drop(state);
            if was_full {
                self.room.notify_all();
            }
            if !batch.is_empty() {
                // A failing sink loses this batch; logging goes on.
                let _ = sink.write_all(&batch).and_then(|()| sink.flush());
                batch.clear();
                // After a burst (a stalled sink), keep no more than a normal batch.
                batch.shrink_to(self.limits.flush_at);
            }
            // Closed before the swap: nothing was appended after it.
            if closed {
                return;
            }
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.lines.notify_all();
        self.room.notify_all();
    }
}

/// Where the formatter writes: a handle on the shared buffer (cheap to clone).
#[derive(Debug, Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Keeps the logging thread; dropping it writes out every line logged so far
/// and stops the thread.
#[derive(Debug)]
#[must_use = "dropping the guard stops the logging thread"]
pub struct BatchGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Start a logging thread named `name` writing batches to `sink`.
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn(
    name: &str,
    sink: impl Write + Send + 'static,
    limits: Limits,
) -> std::io::Result<(BatchWriter, BatchGuard)> {
    let shared = Arc::new(Shared {
        limits,
        state: Mutex::default(),
        lines: Condvar::new(),
        room: Condvar::new(),
    });
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // However the thread ends, logging must not wait for it.
                let _closes = CloseOnDrop(&shared);
                shared.run(sink);
            })?
    };
    Ok((
        BatchWriter {
            shared: shared.clone(),
        },
        BatchGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

struct CloseOnDrop<'a>(&'a Shared);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        self.shared.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One event's writer (the formatter writes each line with one `write_all`).
#[derive(Debug)]
pub struct BatchLine<'a>(&'a Shared);

impl Write for BatchLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = BatchLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        BatchLine(&self.shared)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    /// A sink that records each `write_all` batch and can be held shut.
    #[derive(Clone, Default)]
    struct Sink {
        batches: Arc<Mutex<Vec<Vec<u8>>>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _open = self.gate.lock().unwrap();
            let mut batches = self.batches.lock().unwrap();
            batches.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.batches.lock().unwrap().concat()).unwrap()
        }
        fn writes(&self) -> usize {
            self.batches.lock().unwrap().len()
        }
    }

    fn limits(delay_ms: u64, flush_at: usize, max_waiting: usize) -> Limits {
        Limits {
            delay: Duration::from_millis(delay_ms),
            flush_at,
            max_waiting,
        }
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_and_in_order_in_few_writes() {
        let sink = Sink::default();
        let (writer, guard) =
            spawn("test-log", sink.clone(), limits(20, 1 << 20, 8 << 20)).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        writer
                            .make_writer()
                            .write_all(
                                format!("thread {t} line {i:03} {}\n", "x".repeat(100)).as_bytes(),
                            )
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = sink.text();
        assert_eq!(text.lines().count(), 2000);
        for t in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let want: Vec<String> = (0..500)
                .map(|i| format!("thread {t} line {i:03} {}", "x".repeat(100)))
                .collect();
            assert_eq!(mine, want, "thread {t}: every line, whole, in order");
        }
        assert!(
            sink.writes() < 100,
            "2000 lines in {} writes: not batched",
            sink.writes()
        );
    }

    #[test]
    fn a_line_logged_while_idle_is_written_within_the_delay() {
        let sink = Sink::default();
        let (writer, _guard) =
            spawn("test-log", sink.clone(), limits(10, 1 << 20, 8 << 20)).unwrap();
        // Twice: the second line finds the thread asleep again after its batch.
        for line in ["first\n", "second\n"] {
            let start = Instant::now();
            writer.make_writer().write_all(line.as_bytes()).unwrap();
            while !sink.text().ends_with(line) {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{line:?} not written while the guard lives"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(sink.text(), "first\nsecond\n");
        assert_eq!(sink.writes(), 2);
    }

    #[test]
    fn a_full_buffer_makes_logging_wait_and_loses_nothing() {
        let sink = Sink::default();
        let shut = sink.gate.lock().unwrap();
        let (writer, guard) = spawn("test-log", sink.clone(), limits(1, 64, 256)).unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        let logger = {
            let writer = writer.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    writer
                        .make_writer()
                        .write_all(format!("line {i:03} {}\n", "y".repeat(40)).as_bytes())
                        .unwrap();
                }
                done_tx.send(()).unwrap();
            })
        };
        // The sink is shut: one batch is stuck in it and 256 bytes wait, so
        // the logger cannot finish its 5 KB.
        assert_eq!(
            done_rx.recv_timeout(Duration::from_millis(300)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "logging went on past max_waiting"
        );
        assert!(writer.shared.lock().waiting.len() <= 256 + 50);
        drop(shut);
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        logger.join().unwrap();
        drop(guard);
        let want: String = (0..100)
            .map(|i| format!("line {i:03} {}\n", "y".repeat(40)))
            .collect();
        assert_eq!(sink.text(), want);
    }

    #[test]
    fn after_the_guard_is_dropped_lines_are_discarded_without_waiting() {
        let sink = Sink::default();
        let (writer, guard) = spawn("test-log", sink.clone(), limits(10, 8, 16)).unwrap();
        writer.make_writer().write_all(b"before\n").unwrap();
        drop(guard);
        assert_eq!(sink.text(), "before\n", "written out by the guard's drop");
        // More than max_waiting: would wait forever if it waited for room.
        for _ in 0..10 {
            writer
                .make_writer()
                .write_all(b"after the guard\n")
                .unwrap();
        }
        assert_eq!(sink.text(), "before\n");
    }
}

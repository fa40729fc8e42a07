//! Logging: `tracing` to stderr, JSON lines by default, text for people.
//!
//! `RUST_LOG` selects what is logged (default `info`).
//!
//! Lines are formatted on the thread that logs and written by a logging thread
//! through a buffer that is flushed whenever no more lines are waiting: under
//! load one `write` carries many lines instead of one system call per admission
//! decision (which cost ~5% of a review). Nothing is dropped — when 16k lines
//! are waiting, logging waits — and [`LogGuard`] flushes what is left when it is
//! dropped at the end of `serve` / `controller`.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Lines that may wait for the logging thread before logging waits (the
/// channel's slots are allocated up front: ~0.5 MiB).
const LINES_WAITING: usize = 16 * 1024;

/// Keeps the logging thread; dropping it writes out every line logged so far.
#[must_use = "dropping the guard stops the logging thread"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
}

/// Install the global subscriber. Calling it again (tests) is harmless: the
/// first subscriber stays.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LINES_WAITING)
        .thread_name("vespa-tls-webhook-log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // `try_init` fails only when a subscriber is already installed: keep that one.
    let installed = match format {
        LogFormat::Json => builder
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    LogGuard {
        _worker: installed.is_ok().then_some(guard),
    }
}

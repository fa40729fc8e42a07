//! Logging: `tracing` to stderr, JSON lines by default, text for people.
//!
//! `RUST_LOG` selects what is logged (default `info`).
//!
//! Lines are formatted on the thread that logs and written in batches by a
//! logging thread ([`crate::log_batch`]): under load one `write` carries many
//! lines, a line is out within 10 ms, nothing is dropped (when 8 MiB are
//! waiting, logging waits), and [`LogGuard`] writes what is left when it is
//! dropped at the end of `serve` / `controller`.
//!
//! A JSON line is one object: `timestamp` (RFC 3339, UTC), `level`, the event's
//! fields in the order they are logged (`message` first for a decision), then
//! `target`. [`JsonLine`] writes it straight into the line's buffer;
//! tracing-subscriber's own JSON format builds a map of `serde_json::Value`s per
//! line first, which was 5% of a review's CPU.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::LogFormat;
use crate::log_batch::{self, BatchGuard, Limits};

/// Keeps the logging thread; dropping it writes out every line logged so far.
#[must_use = "dropping the guard stops the logging thread"]
pub struct LogGuard {
    _batches: Option<BatchGuard>,
}

/// Install the global subscriber. Calling it again (tests) is harmless: the
/// first subscriber stays.
///
/// # Errors
/// When the logging thread cannot be started.
pub fn init(format: LogFormat) -> std::io::Result<LogGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = log_batch::spawn(
        "vespa-tls-webhook-log",
        std::io::stderr(),
        Limits::default(),
    )?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // `try_init` fails only when a subscriber is already installed: keep that one.
    let installed = match format {
        LogFormat::Json => builder.with_ansi(false).event_format(JsonLine).try_init(),
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    Ok(LogGuard {
        _batches: installed.is_ok().then_some(guard),
    })
}

/// The JSON line format (see the module's documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut w)?;
        write!(w, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = JsonFields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_str(",\"target\":")?;
        write_json_str(&mut w, meta.target())?;
        w.write_str("}\n")
    }
}

/// Writes each field of an event as `,"name":value`.
struct JsonFields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    /// `,"name":` then `value`; after a write error, nothing more.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self
                .w
                .write_char(',')
                .and_then(|()| write_json_str(self.w, field.name()))
                .and_then(|()| self.w.write_char(':'))
                .and_then(|()| value(self.w));
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| write_json_str(w, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those are written as strings.
        if value.is_finite() {
            self.field(field, |w| write!(w, "{value}"));
        } else {
            self.field(field, |w| write!(w, "\"{value}\""));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%display` fields arrive here too, formatted with Display.
        self.field(field, |w| {
            w.write_char('"')?;
            write!(JsonEscaped(&mut *w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// `s` as a JSON string.
fn write_json_str(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    JsonEscaped(&mut *w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string.
struct JsonEscaped<W>(W);

impl<W: fmt::Write> fmt::Write for JsonEscaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..0x20 | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};

    use super::*;

    /// Log with [`JsonLine`] into a buffer; the lines written.
    fn lines(log: impl FnOnce()) -> Vec<Value> {
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = {
            let buf = buf.clone();
            move || Sink(buf.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .event_format(JsonLine)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_is_one_json_object_with_every_field_typed() {
        let name = String::from("vespa/\"odd\" name\\with\nnew\tline\u{1}\u{7f}é");
        let got = lines(|| {
            tracing::info!(
                endpoint = "mutate",
                object = %name,
                reason = ?Some("x"),
                allowed = true,
                patch_ops = 7u64,
                delta = -3i64,
                ratio = 0.5f64,
                nan = f64::NAN,
                "admission decision"
            );
            tracing::warn!("second line {}", 2);
        });
        assert_eq!(got.len(), 2);
        let line = got[0].as_object().unwrap();
        let keys: Vec<&str> = line.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "message",
                "endpoint",
                "object",
                "reason",
                "allowed",
                "patch_ops",
                "delta",
                "ratio",
                "nan",
                "target"
            ]
        );
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "admission decision");
        assert_eq!(line["endpoint"], "mutate");
        assert_eq!(line["object"], json!(name), "escaped and read back exactly");
        assert_eq!(line["reason"], "Some(\"x\")");
        assert_eq!(line["allowed"], true);
        assert_eq!(line["patch_ops"], 7);
        assert_eq!(line["delta"], -3);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["nan"], "NaN");
        assert_eq!(line["target"], module_path!());
        let ts = line["timestamp"].as_str().unwrap();
        assert!(
            ts.len() >= 20
                && ts.as_bytes()[4] == b'-'
                && ts.as_bytes()[10] == b'T'
                && ts.ends_with('Z'),
            "{ts}"
        );
        assert_eq!(got[1]["level"], "WARN");
        assert_eq!(got[1]["message"], "second line 2");
    }
}

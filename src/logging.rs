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
        write_timestamp(&mut w)?;
        w.write_str("\",\"level\":\"")?;
        w.write_str(meta.level().as_str())?;
        w.write_char('"')?;
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
                .write_str(",\"")
                .and_then(|()| JsonEscaped(&mut *self.w).write_str(field.name()))
                .and_then(|()| self.w.write_str("\":"))
                .and_then(|()| value(self.w));
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| write_json_str(w, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| w.write_str(itoa::Buffer::new().format(value)));
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

/// The first second of the year 10000: from there on (and before 1970) the
/// timestamp is left to tracing-subscriber, which writes those years its way.
const YEAR_10000: u64 = 253_402_300_800;

thread_local! {
    /// The last second this thread wrote, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
}

/// Now, as tracing-subscriber's [`SystemTime`] writes it
/// (`2026-11-29T13:53:03.883547Z`), with the part up to the second formatted
/// once per second per thread instead of on every line.
fn write_timestamp(w: &mut Writer<'_>) -> fmt::Result {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let Some(since) = since.ok().filter(|d| d.as_secs() < YEAR_10000) else {
        return SystemTime.format_time(w);
    };
    let secs = since.as_secs();
    let mut second = SECOND.get();
    if second.0 != secs {
        second = (secs, civil(secs));
        SECOND.set(second);
    }
    w.write_str(std::str::from_utf8(&second.1).map_err(|_| fmt::Error)?)?;
    let mut fraction = *b".000000Z";
    zero_padded(&mut fraction[1..7], u64::from(since.subsec_micros()));
    w.write_str(std::str::from_utf8(&fraction).map_err(|_| fmt::Error)?)
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of a second since 1970 before [`YEAR_10000`]:
/// the proleptic Gregorian calendar, by Howard Hinnant's `civil_from_days`.
fn civil(secs: u64) -> [u8; 19] {
    let (days, in_day) = (secs / 86_400, secs % 86_400);
    // Days since 0000-03-01, in 400-year eras of 146,097 days.
    let z = days + 719_468;
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 0 is March, 11 is February.
    let m = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * m + 2) / 5 + 1;
    let month = if m < 10 { m + 3 } else { m - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    let mut out = *b"0000-00-00T00:00:00";
    zero_padded(&mut out[0..4], year);
    zero_padded(&mut out[5..7], month);
    zero_padded(&mut out[8..10], day);
    zero_padded(&mut out[11..13], in_day / 3_600);
    zero_padded(&mut out[14..16], in_day / 60 % 60);
    zero_padded(&mut out[17..19], in_day % 60);
    out
}

/// Fill `digits` with the last `digits.len()` decimal digits of `n`, zero-padded.
fn zero_padded(digits: &mut [u8], mut n: u64) {
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
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
        let bytes = s.as_bytes();
        let mut start = 0;
        loop {
            // The next quote, backslash, control character or DEL (sixteen
            // bytes at a time, as the review reader scans). It stops at an
            // ASCII byte (or the end), so every slice below is at char
            // boundaries; were one not, the line fails rather than losing text.
            let stop = crate::scan::skip_plain_or_del(bytes, start);
            let Some(&b) = bytes.get(stop) else {
                return self.0.write_str(s.get(start..).ok_or(fmt::Error)?);
            };
            self.0.write_str(s.get(start..stop).ok_or(fmt::Error)?)?;
            match b {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                _ => write!(self.0, "\\u{b:04x}")?,
            }
            start = stop + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};

    use super::*;

    /// Log with [`JsonLine`] into a buffer; the lines written, as text.
    fn lines(log: impl FnOnce()) -> Vec<String> {
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
        text.lines().map(str::to_string).collect()
    }

    /// A line read as JSON.
    fn parse(line: &str) -> Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// A line's top-level keys in the order written (serde_json's `Map` sorts
    /// them; serde_yaml's `Mapping` keeps them).
    fn keys_in_order(line: &str) -> Vec<String> {
        let map: serde_yaml::Mapping =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        map.keys()
            .map(|k| k.as_str().unwrap_or_default().to_string())
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

    /// Char by char: what [`super::JsonEscaped`] must write.
    fn escaped_reference(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '"' => "\\\"".to_owned(),
                '\\' => "\\\\".to_owned(),
                '\n' => "\\n".to_owned(),
                '\r' => "\\r".to_owned(),
                '\t' => "\\t".to_owned(),
                '\0'..='\u{1f}' | '\u{7f}' => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn escaping_matches_a_char_by_char_escape() {
        use std::fmt::Write as _;
        let specials = [
            '"', '\\', '\n', '\r', '\t', '\0', '\u{1}', '\u{1f}', '\u{7f}', ' ', 'é', '€',
        ];
        for len in 0..40 {
            let plain: String = (0..len)
                .map(|n| char::from(b'a' + (n % 26) as u8))
                .collect();
            for at in 0..len {
                for &c in &specials {
                    for &d in &specials {
                        let mut s: String = plain.chars().take(at).collect();
                        s.push(c);
                        s.extend(plain.chars().skip(at + 1));
                        s.push(d);
                        let mut out = String::new();
                        super::JsonEscaped(&mut out).write_str(&s).unwrap();
                        assert_eq!(out, escaped_reference(&s), "{s:?}");
                    }
                }
            }
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
                zero = 0u64,
                most = u64::MAX,
                least = i64::MIN,
                ratio = 0.5f64,
                nan = f64::NAN,
                "admission decision"
            );
            tracing::warn!("second line {}", 2);
        });
        assert_eq!(got.len(), 2);
        assert_eq!(
            keys_in_order(&got[0]),
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
                "zero",
                "most",
                "least",
                "ratio",
                "nan",
                "target"
            ]
        );
        let line = parse(&got[0]);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "admission decision");
        assert_eq!(line["endpoint"], "mutate");
        assert_eq!(line["object"], json!(name), "escaped and read back exactly");
        assert_eq!(line["reason"], "Some(\"x\")");
        assert_eq!(line["allowed"], true);
        assert_eq!(line["patch_ops"], 7);
        assert_eq!(line["delta"], -3);
        assert_eq!(line["zero"], 0);
        assert_eq!(line["most"], u64::MAX);
        assert_eq!(line["least"], i64::MIN);
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
        let second = parse(&got[1]);
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["message"], "second line 2");
    }

    /// What a timestamp writer writes.
    fn written(f: impl FnOnce(&mut Writer<'_>) -> fmt::Result) -> String {
        let mut out = String::new();
        f(&mut Writer::new(&mut out)).unwrap();
        out
    }

    #[test]
    fn the_timestamp_is_written_as_tracing_subscriber_writes_it() {
        // Both read the clock: compare them within one second (retry across a
        // second's boundary); the microseconds differ.
        for _ in 0..1_000 {
            let ours = written(write_timestamp);
            let theirs = written(|w| SystemTime.format_time(w));
            if ours[..20] == theirs[..20] {
                assert_eq!(ours.len(), theirs.len(), "{ours} vs {theirs}");
                assert!(ours.ends_with('Z') && ours.as_bytes()[19] == b'.', "{ours}");
                assert!(ours[20..26].bytes().all(|b| b.is_ascii_digit()), "{ours}");
                return;
            }
        }
        panic!("never in the same second as tracing-subscriber's timestamp");
    }

    #[test]
    fn civil_dates_of_known_seconds() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (951_868_800, "2000-03-01T00:00:00"),
            (2_147_483_648, "2038-01-19T03:14:08"),
            (4_107_542_400, "2100-03-01T00:00:00"),
            (YEAR_10000 - 1, "9999-12-31T23:59:59"),
        ] {
            assert_eq!(std::str::from_utf8(&civil(secs)).unwrap(), want, "{secs}");
        }
    }

    /// Seconds since 1970 of a civil time, counted year by year and month by
    /// month: an independent reading of what [`civil`] writes.
    fn seconds_of(text: &str) -> u64 {
        let n = |r: std::ops::Range<usize>| text[r].parse::<u64>().unwrap();
        let (year, month, day) = (n(0..4), n(5..7), n(8..10));
        let leap =
            |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        let lengths = [
            31,
            if leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        assert!((1..=12).contains(&month), "{text}");
        assert!((1..=lengths[month as usize - 1]).contains(&day), "{text}");
        let (hour, minute, second) = (n(11..13), n(14..16), n(17..19));
        assert!(hour < 24 && minute < 60 && second < 60, "{text}");
        let days = (1970..year)
            .map(|y| if leap(y) { 366 } else { 365 })
            .sum::<u64>()
            + lengths[..month as usize - 1].iter().sum::<u64>()
            + day
            - 1;
        days * 86_400 + hour * 3_600 + minute * 60 + second
    }

    proptest::proptest! {
        #[test]
        fn civil_writes_the_calendar_date_of_every_second(secs in 0..YEAR_10000) {
            let text = civil(secs);
            let text = std::str::from_utf8(&text).unwrap();
            proptest::prop_assert_eq!(&text[4..5], "-");
            proptest::prop_assert_eq!(&text[10..11], "T");
            proptest::prop_assert_eq!(seconds_of(text), secs, "{}", text);
        }
    }
}

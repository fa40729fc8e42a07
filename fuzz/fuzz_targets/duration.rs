//! Go durations (`GoDuration::from_str`), built from parts so that the numeric
//! edges are reached: integer parts near Go's limit (i64::MAX ns / unit) and near
//! u128::MAX / unit (the parser's own arithmetic), long fractions, every unit,
//! signs, junk. The raw bytes are tried as a duration too.
//!
//! Invariants: no panic (overflow checks are on); an accepted duration keeps its
//! text, fits Go's `time.Duration`, keeps its length when `0s` is appended, and
//! agrees with an independent, exact model of Go's `time.ParseDuration` (the
//! acceptance, and the length within a few nanoseconds of truncation).
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use vespa_tls_webhook::duration::GoDuration;
use vespa_tls_webhook_fuzz::check_accepted_duration;

const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];
const MAX: u128 = i64::MAX as u128;

fn unit(s: &str) -> Option<u128> {
    UNITS.iter().find(|(u, _)| *u == s).map(|(_, n)| *n)
}

/// Go's `time.ParseDuration` for inputs without a `-`, in exact arithmetic:
/// `None` when Go refuses the syntax, else the length (saturated far above the
/// i64 range when it overflows) and the number of components.
fn model(text: &str) -> Option<(u128, u128)> {
    let mut s = text.strip_prefix('+').unwrap_or(text);
    if s == "0" {
        return Some((0, 0));
    }
    if s.is_empty() {
        return None;
    }
    let (mut total, mut parts) = (0u128, 0u128);
    while !s.is_empty() {
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let i = digits(s);
        let int = s[..i].trim_start_matches('0');
        s = &s[i..];
        let mut frac = "";
        if let Some(r) = s.strip_prefix('.') {
            let j = digits(r);
            frac = &r[..j];
            s = &r[j..];
        }
        if i == 0 && frac.is_empty() {
            return None;
        }
        let k = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let scale = unit(&s[..k])?;
        s = &s[k..];
        parts += 1;
        if int.len() > 22 {
            total = u128::MAX / 2;
            continue;
        }
        let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let frac = &frac[..frac.len().min(24)];
        let f: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        let value = int * scale + f * scale / 10u128.pow(frac.len() as u32);
        total = total.saturating_add(value).min(u128::MAX / 2);
    }
    Some((total, parts))
}

fn check(s: &str) {
    let parsed = s.parse::<GoDuration>();
    if let Ok(d) = &parsed {
        check_accepted_duration(s, d);
    }
    if s.starts_with('-') {
        // Negative lengths are refused on purpose (Go accepts them).
        assert!(
            parsed.as_ref().map_or(true, GoDuration::is_zero),
            "{s:?}: {parsed:?}"
        );
        return;
    }
    match (model(s), &parsed) {
        (None, Ok(d)) => panic!("{s:?}: Go refuses this syntax, we accept {}", d.nanos()),
        (None, Err(_)) => {}
        (Some((exact, parts)), parsed) => {
            let slack = 16 * parts.max(1);
            if exact.abs_diff(MAX) <= slack {
                return; // at the limit, truncation decides either way
            }
            match parsed {
                Ok(d) => {
                    assert!(
                        exact <= MAX,
                        "{s:?}: overflows Go ({exact} ns) but accepted as {} ns",
                        d.nanos()
                    );
                    assert!(
                        d.nanos().abs_diff(exact) <= slack,
                        "{s:?}: {} ns, Go says {exact} ns",
                        d.nanos()
                    );
                }
                Err(e) => assert!(exact > MAX, "{s:?}: valid Go ({exact} ns) but refused: {e}"),
            }
        }
    }
}

fn number(u: &mut Unstructured, scale: u128) -> Result<String> {
    let k = u128::from(u.int_in_range(0u8..=15)?);
    Ok(match u.int_in_range(0..=6)? {
        0 => u.int_in_range(0u32..=1000)?.to_string(),
        1 => u.arbitrary::<u64>()?.to_string(),
        2 => u.arbitrary::<u128>()?.to_string(),
        3 => (MAX / scale).saturating_sub(k).to_string(),
        4 => (MAX / scale + k).to_string(),
        5 => (u128::MAX / scale).saturating_sub(k).to_string(),
        _ => format!(
            "{}{}",
            "0".repeat(u.int_in_range(1..=40)?),
            u.int_in_range(0u32..=99)?
        ),
    })
}

fn build(u: &mut Unstructured) -> Result<String> {
    let mut s = String::from(*u.choose(&["", "", "", "+", "-"])?);
    let parts = u.int_in_range(1..=4)?;
    for _ in 0..parts {
        let (name, scale) = *u.choose(&UNITS)?;
        let name = if u.ratio(1, 16)? {
            *u.choose(&["", "d", "H", "sec", " "])?
        } else {
            name
        };
        if u.ratio(7, 8)? {
            s.push_str(&number(u, scale)?);
        }
        if u.ratio(1, 3)? {
            s.push('.');
            let n = u.int_in_range(0..=30)?;
            for _ in 0..n {
                s.push(char::from(b'0' + u.int_in_range(0..=9)?));
            }
        }
        s.push_str(name);
    }
    Ok(s)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        check(s);
    }
    let mut u = Unstructured::new(data);
    if let Ok(s) = build(&mut u) {
        check(&s);
    }
});

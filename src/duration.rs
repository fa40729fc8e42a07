//! Go-syntax durations (`720h`, `90m`, `1h30m`, `1.5h`), parsed the way Go's
//! `time.ParseDuration` does, because the cert-manager csi-driver parses its
//! `duration` and `renew-before` attributes with it.

use std::fmt;
use std::str::FromStr;

/// A non-negative duration parsed from Go syntax; keeps the text it was parsed from
/// so that what we write into a volume attribute is exactly what the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoDuration {
    text: String,
    nanos: u128,
}

/// Why a duration string is not valid Go syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty string.
    #[error("empty duration")]
    Empty,
    /// Negative durations make no sense for certificates.
    #[error("negative duration")]
    Negative,
    /// A number without a unit (other than a lone `0`).
    #[error("missing unit (use ns, us, ms, s, m or h)")]
    MissingUnit,
    /// A unit we do not know.
    #[error("unknown unit {0:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit(String),
    /// Something that is not a number where a number must be.
    #[error("invalid number")]
    InvalidNumber,
    /// Larger than Go's `time.Duration` can hold (~2562047h).
    #[error("duration out of range")]
    Overflow,
}

const MAX_GO_NANOS: u128 = i64::MAX as u128;

impl GoDuration {
    /// A whole number of hours, written as `<h>h`.
    pub fn from_hours(hours: u32) -> GoDuration {
        GoDuration {
            text: format!("{hours}h"),
            nanos: u128::from(hours) * 3_600 * 1_000_000_000,
        }
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Length in nanoseconds.
    pub fn nanos(&self) -> u128 {
        self.nanos
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialOrd for GoDuration {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.nanos.cmp(&other.nanos))
    }
}

impl FromStr for GoDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let nanos = parse_nanos(text)?;
        Ok(GoDuration {
            text: text.to_string(),
            nanos,
        })
    }
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        _ => return None,
    })
}

fn parse_nanos(text: &str) -> Result<u128, DurationError> {
    let mut rest = text;
    if let Some(r) = rest.strip_prefix('-') {
        // "-0" is valid Go, but a negative certificate lifetime never is.
        if r.chars().all(|c| c == '0') && !r.is_empty() {
            return Ok(0);
        }
        return Err(DurationError::Negative);
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    if rest.is_empty() {
        return Err(DurationError::Empty);
    }
    if rest == "0" {
        return Ok(0);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, after_num) = match after_int.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after_int),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DurationError::InvalidNumber);
        }
        let unit_len = after_num
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after_num.len(), |(i, _)| i);
        let (unit, after_unit) = after_num.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit);
        }
        let scale = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit(unit.to_string()))?;
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| DurationError::Overflow)?
        };
        let mut value = int.checked_mul(scale).ok_or(DurationError::Overflow)?;
        if !frac_part.is_empty() {
            // Same truncation as Go: fraction digits beyond nanosecond precision are dropped.
            let mut frac_scale = scale;
            for digit in frac_part.bytes().map(|b| u128::from(b - b'0')) {
                frac_scale /= 10;
                if frac_scale == 0 {
                    break;
                }
                // `int * scale` may sit just below u128::MAX (a 26- to 39-digit
                // integer part): a plain `+=` would wrap to a tiny duration.
                value = value
                    .checked_add(digit * frac_scale)
                    .ok_or(DurationError::Overflow)?;
            }
        }
        total = total.checked_add(value).ok_or(DurationError::Overflow)?;
        if total > MAX_GO_NANOS {
            return Err(DurationError::Overflow);
        }
        rest = after_unit;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> Result<u128, DurationError> {
        s.parse::<GoDuration>().map(|d| d.nanos())
    }

    const H: u128 = 3_600_000_000_000;

    #[test]
    fn parses_go_syntax() {
        assert_eq!(nanos("720h"), Ok(720 * H));
        assert_eq!(nanos("90m"), Ok(90 * 60 * 1_000_000_000));
        assert_eq!(nanos("1h30m"), Ok(H + 30 * 60 * 1_000_000_000));
        assert_eq!(nanos("1.5h"), Ok(H + H / 2));
        assert_eq!(nanos(".5s"), Ok(500_000_000));
        assert_eq!(nanos("0"), Ok(0));
        assert_eq!(nanos("10us"), Ok(10_000));
        assert_eq!(nanos("10µs"), Ok(10_000));
        assert_eq!(nanos("2562047h"), Ok(2_562_047 * H));
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert_eq!(nanos(""), Err(DurationError::Empty));
        assert_eq!(nanos("720"), Err(DurationError::MissingUnit));
        assert_eq!(nanos("30d"), Err(DurationError::UnknownUnit("d".into())));
        assert_eq!(nanos("h"), Err(DurationError::InvalidNumber));
        assert_eq!(nanos("1h "), Err(DurationError::UnknownUnit("h ".into())));
        assert_eq!(nanos("-1h"), Err(DurationError::Negative));
        assert_eq!(nanos("2562048h"), Err(DurationError::Overflow));
        assert_eq!(
            nanos("99999999999999999999999999999999999999999h"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn keeps_text_and_orders_by_length() {
        let a: GoDuration = "60m".parse().unwrap();
        let b: GoDuration = "1h".parse().unwrap();
        assert_eq!(a.as_str(), "60m");
        assert_eq!(a.nanos(), b.nanos());
        assert!("2h".parse::<GoDuration>().unwrap() > b);
    }
}

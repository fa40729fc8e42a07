//! The usual review, read by hand in one pass; serde reads everything else.
//!
//! [`crate::admission::parse_review_for`] reads a review with serde_json and
//! the projection's visitors ([`crate::projection`]). That reading is exact for
//! every body, but serde's visitor interface costs about twice what a skim of
//! the same bytes costs. [`read`] is a hand-written reader for the reviews the
//! apiserver actually sends, built to give *exactly* the same [`Review`] — the
//! same projection, the same `Value`s, numbers and key order — and to give up
//! (`None`) on anything it is not sure of, so that the caller reads the body
//! with serde instead:
//!
//! - any error: a syntax error, a wrong type, a missing field, a review of
//!   another version, no `request` (serde then gives the exact error);
//! - a `\u` escape naming a surrogate that is not part of a pair, a control
//!   character in a string, an escape in a key (keys are compared as written);
//! - a number with an exponent or over [`LONG_NUMBER`] digits (serde may find
//!   it out of range), or one it does not read itself (fractions, `-0`, over 18
//!   digits) where it is kept — kept numbers are then read by serde_json;
//! - nesting deeper than [`MAX_DEPTH`] (serde_json stops at 128);
//! - a field of the envelope, the request, its `kind` or `userInfo` given
//!   twice, or `object` before `kind` (serde's derive rules for these);
//! - serde_json's raw-value key, and a keyed list entry whose key comes twice
//!   after the first was not a TLS one (the projection's own limits).
//!
//! So what it accepts is a subset of what serde accepts, read the same way.
//! `tests/core/scan.rs` and the `review` fuzz targets check that against
//! serde's reading ([`crate::admission::parse_review_serde`]).

use std::ops::ControlFlow;

use serde_json::{Map, Number, Value};

use crate::admission::{GroupVersionKind, Request, Review, UserInfo};
use crate::projection::{Purpose, RAW_VALUE_KEY, Shape};
use crate::target::Kind;

/// Deeper nesting than this is left to serde (whose limit is 128).
pub const MAX_DEPTH: usize = 100;

/// A skipped number with more digits than this is left to serde: with this
/// many digits and no exponent it cannot be out of `f64`'s range.
pub const LONG_NUMBER: usize = 300;

/// Read `text` as a review, its object projected for `purpose`; `None` when it
/// is not a review this reader is sure to read exactly as serde does.
pub fn read(text: &str, purpose: Purpose) -> Option<Review> {
    let mut s = Scanner {
        text,
        pos: 0,
        depth: 0,
        purpose,
    };
    let review = s.envelope()?;
    s.ws();
    (s.pos == text.len()).then_some(review)
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
    purpose: Purpose,
}

/// A string as written between its quotes, and whether it has escapes: where
/// it is in the text, so that a string skipped costs no slicing.
#[derive(Clone, Copy)]
struct Raw<'a> {
    text: &'a str,
    /// Its opening quote.
    start: usize,
    /// After its closing quote.
    end: usize,
    escaped: bool,
}

impl<'a> Raw<'a> {
    /// Its text, when it has no escapes.
    fn plain(self) -> Option<&'a str> {
        if self.escaped {
            None
        } else {
            self.text.get(self.start + 1..self.end.checked_sub(1)?)
        }
    }

    /// Its value.
    fn string(self) -> Option<String> {
        match self.plain() {
            Some(s) => Some(s.to_owned()),
            None => serde_json::from_str(self.text.get(self.start..self.end)?).ok(),
        }
    }
}

impl<'a> Scanner<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes().get(self.pos).copied()
    }

    /// Consume `b` (after whitespace).
    fn eat(&mut self, b: u8) -> Option<()> {
        if self.peek()? == b {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        if self.bytes().get(self.pos..end)? == word {
            self.pos = end;
            Some(())
        } else {
            None
        }
    }

    /// A string (after whitespace), checked as serde_json checks it.
    ///
    /// Inlined where it is called: most strings of a review are short and
    /// without escapes, read in one step of [`skip_plain`]; a string with an
    /// escape or a control character goes on in [`Self::escaped_string`].
    #[inline(always)]
    fn raw_string(&mut self) -> Option<Raw<'a>> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.pos;
        let end = skip_plain(self.bytes(), start + 1);
        if self.bytes().get(end) != Some(&b'"') {
            return self.escaped_string(start, end);
        }
        self.pos = end + 1;
        Some(Raw {
            text: self.text,
            start,
            end: self.pos,
            escaped: false,
        })
    }

    /// The rest of a string that starts at `start` (its quote) and whose first
    /// byte that is not plain is at `i` (not its closing quote).
    #[inline(never)]
    fn escaped_string(&mut self, start: usize, mut i: usize) -> Option<Raw<'a>> {
        loop {
            match *self.bytes().get(i)? {
                b'"' => break,
                b'\\' => i = escape(self.bytes(), i + 1)?,
                // A control character: serde's error.
                _ => return None,
            }
            i = skip_plain(self.bytes(), i);
        }
        self.pos = i + 1;
        Some(Raw {
            text: self.text,
            start,
            end: self.pos,
            escaped: true,
        })
    }

    /// A map key, without escapes, followed by its colon.
    fn key(&mut self) -> Option<&'a str> {
        let key = self.raw_string()?.plain()?;
        if key == RAW_VALUE_KEY {
            return None;
        }
        self.eat(b':')?;
        Some(key)
    }

    /// Iterate over a map's members: `f` is called with each key and must
    /// consume its value.
    fn map(&mut self, mut f: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.sequence(b'{', b'}', |s| {
            let key = s.key()?;
            f(s, key)
        })
    }

    /// Iterate over a list's elements: `f` must consume each.
    fn list(&mut self, f: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.sequence(b'[', b']', f)
    }

    /// `open`, items separated by commas (each read by `item`), `close`.
    fn sequence(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        self.enter()?;
        if self.peek()? == close {
            self.pos += 1;
        } else {
            loop {
                item(self)?;
                match self.peek()? {
                    b',' => self.pos += 1,
                    b if b == close => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// A number's text (after whitespace), checked against JSON's grammar.
    fn number(&mut self) -> Option<Numeral<'a>> {
        self.ws();
        let start = self.pos;
        let b = self.bytes();
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        match b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while let Some(b'0'..=b'9') = b.get(i) {
                    i += 1;
                }
            }
            _ => return None,
        }
        let int_digits = i - int_start;
        let mut plain = true;
        if b.get(i) == Some(&b'.') {
            plain = false;
            i += 1;
            let frac = i;
            while let Some(b'0'..=b'9') = b.get(i) {
                i += 1;
            }
            if i == frac {
                return None;
            }
        }
        // An exponent may take a number out of range: serde decides.
        if let Some(b'e' | b'E') = b.get(i) {
            return None;
        }
        if i - start > LONG_NUMBER {
            return None;
        }
        self.pos = i;
        Some(Numeral {
            text: self.text.get(start..i)?,
            integer: plain && int_digits <= 18,
        })
    }

    /// Any value, checked and not kept.
    fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.raw_string().map(drop),
            b'{' => self.map(|s, _| s.skip()),
            b'[' => self.list(Self::skip),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    /// Any value, kept whole as serde_json's `Value` reads it.
    fn whole(&mut self) -> Option<Value> {
        self.projected(Shape::Whole)
    }

    /// A value of the given shape, as [`crate::projection::Projected`] reads it.
    fn projected(&mut self, shape: Shape) -> Option<Value> {
        Some(match self.peek()? {
            b'"' => Value::String(self.raw_string()?.string()?),
            b'{' => match shape {
                Shape::Entry(keyed) => return self.keyed_entry(keyed),
                shape => {
                    let purpose = self.purpose;
                    let mut out = Map::new();
                    self.map(|s, key| {
                        match shape.member(key, purpose) {
                            Some(member) => {
                                let v = s.projected(member)?;
                                out.insert(key.to_owned(), v);
                            }
                            None => s.skip()?,
                        }
                        Some(())
                    })?;
                    Value::Object(out)
                }
            },
            b'[' => {
                let element = shape.element();
                // A keyed list keeps a place for every entry: a container's
                // env is often dozens long, so it starts at 16, not at 4
                // (two fewer moves to a larger buffer for 80 entries).
                let mut out = match shape {
                    Shape::List(_) => Vec::with_capacity(16),
                    _ => Vec::new(),
                };
                self.list(|s| {
                    out.push(s.projected(element)?);
                    Some(())
                })?;
                Value::Array(out)
            }
            b't' => self.literal(b"true").map(|()| Value::Bool(true))?,
            b'f' => self.literal(b"false").map(|()| Value::Bool(false))?,
            b'n' => self.literal(b"null").map(|()| Value::Null)?,
            _ => self.number()?.value()?,
        })
    }

    /// One entry of a keyed list, as the projection reads it: whole, or `null`
    /// when its key is a string the decision does not read.
    fn keyed_entry(&mut self, keyed: crate::projection::Keyed) -> Option<Value> {
        // Made at its first member kept: most entries are dropped at their key,
        // their first member, and an empty `Map` still costs its drop (about 75
        // instructions, times every env entry of every review).
        let mut entry: Option<Map<String, Value>> = None;
        let mut dropped = false;
        let mut named = false;
        self.map(|s, key| {
            if key != keyed.key() {
                if dropped {
                    s.skip()?;
                } else {
                    let v = s.whole()?;
                    entry.get_or_insert_default().insert(key.to_owned(), v);
                }
                return Some(());
            }
            // The projection reads a second key again in full; so do we (serde).
            if named {
                return None;
            }
            named = true;
            if s.peek()? == b'"' {
                let raw = s.raw_string()?;
                let name = match raw.plain() {
                    Some(name) => std::borrow::Cow::Borrowed(name),
                    None => std::borrow::Cow::Owned(raw.string()?),
                };
                if keyed.reads(&name) {
                    entry
                        .get_or_insert_default()
                        .insert(key.to_owned(), Value::String(name.into_owned()));
                } else {
                    dropped = true;
                    // What was kept before the key is not needed either.
                    entry = None;
                }
            } else {
                let v = s.whole()?;
                entry.get_or_insert_default().insert(key.to_owned(), v);
            }
            Some(())
        })?;
        Some(if dropped {
            Value::Null
        } else {
            Value::Object(entry.unwrap_or_default())
        })
    }

    /// A string field of a derived struct (no `null`).
    fn string(&mut self) -> Option<String> {
        self.raw_string()?.string()
    }

    /// An `Option<String>` field.
    fn optional_string(&mut self) -> Option<Option<String>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        self.string().map(Some)
    }

    fn envelope(&mut self) -> Option<Review> {
        let mut api_version = None;
        let mut kind = None;
        let mut request = None;
        self.map(|s, key| {
            match key {
                "apiVersion" => once(&mut api_version, s.string()?)?,
                "kind" => once(&mut kind, s.string()?)?,
                "request" => once(&mut request, s.request()?)?,
                _ => s.skip()?,
            }
            Some(())
        })?;
        let api_version = api_version?;
        let v1 = api_version == "admission.k8s.io/v1" || api_version == "admission.k8s.io/v1beta1";
        (v1 && kind? == "AdmissionReview").then_some(())?;
        Some(Review {
            api_version,
            request: request?,
        })
    }

    fn request(&mut self) -> Option<Request> {
        let mut uid = None;
        let mut kind: Option<GroupVersionKind> = None;
        let mut sub_resource = None;
        let mut name = None;
        let mut namespace = None;
        let mut operation = None;
        let mut user_info = None;
        let mut object = None;
        let mut old_object = None;
        let mut dry_run = None;
        let mut shape = None;
        self.map(|s, key| {
            match key {
                "uid" => once(&mut uid, s.string()?)?,
                "kind" => {
                    let gvk = s.group_version_kind()?;
                    shape = Some(match Kind::from_group_kind(&gvk.group, &gvk.kind) {
                        Some(Kind::Pod) => Shape::Pod,
                        Some(Kind::VespaSet) => Shape::VespaSet,
                        Some(Kind::Namespace) | None => Shape::Whole,
                    });
                    once(&mut kind, gvk)?;
                }
                "subResource" => once(&mut sub_resource, s.optional_string()?)?,
                "name" => once(&mut name, s.optional_string()?)?,
                "namespace" => once(&mut namespace, s.optional_string()?)?,
                "operation" => once(&mut operation, s.string()?)?,
                "userInfo" => once(&mut user_info, s.user_info()?)?,
                "object" => once(&mut object, s.object(shape?)?)?,
                "oldObject" => once(&mut old_object, s.object(shape?)?)?,
                "dryRun" => {
                    let v = match s.peek()? {
                        b'n' => s.literal(b"null").map(|()| None)?,
                        b't' => s.literal(b"true").map(|()| Some(true))?,
                        _ => s.literal(b"false").map(|()| Some(false))?,
                    };
                    once(&mut dry_run, v)?;
                }
                _ => s.skip()?,
            }
            Some(())
        })?;
        Some(Request {
            uid: uid?,
            kind: kind?,
            sub_resource: sub_resource.flatten(),
            name: name.flatten(),
            namespace: namespace.flatten(),
            operation: operation?,
            user_info: user_info.unwrap_or_default(),
            object: object.flatten(),
            old_object: old_object.flatten(),
            dry_run: dry_run.flatten(),
        })
    }

    fn group_version_kind(&mut self) -> Option<GroupVersionKind> {
        let (mut group, mut version, mut kind) = (None, None, None);
        self.map(|s, key| {
            match key {
                "group" => once(&mut group, s.string()?)?,
                "version" => once(&mut version, s.string()?)?,
                "kind" => once(&mut kind, s.string()?)?,
                _ => s.skip()?,
            }
            Some(())
        })?;
        Some(GroupVersionKind {
            group: group.unwrap_or_default(),
            version: version.unwrap_or_default(),
            kind: kind.unwrap_or_default(),
        })
    }

    fn user_info(&mut self) -> Option<UserInfo> {
        let (mut username, mut groups) = (None, None);
        self.map(|s, key| {
            match key {
                "username" => once(&mut username, s.string()?)?,
                "groups" => {
                    let mut out = Vec::new();
                    s.list(|s| {
                        out.push(s.string()?);
                        Some(())
                    })?;
                    once(&mut groups, out)?;
                }
                _ => s.skip()?,
            }
            Some(())
        })?;
        Some(UserInfo {
            username: username.unwrap_or_default(),
            groups: groups.unwrap_or_default(),
        })
    }

    /// `object` / `oldObject`: projected for the request's kind; `null` is none.
    fn object(&mut self, shape: Shape) -> Option<Option<Value>> {
        Some(match self.projected(shape)? {
            Value::Null => None,
            v => Some(v),
        })
    }
}

/// Set a field read once; `None` (give up) when it was already set: a derived
/// struct refuses a duplicate field.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

/// A number as written, checked against JSON's grammar.
struct Numeral<'a> {
    text: &'a str,
    /// No fraction and at most 18 digits: read here; otherwise by serde_json.
    integer: bool,
}

impl Numeral<'_> {
    /// Its value as serde_json reads it.
    fn value(&self) -> Option<Value> {
        if self.integer {
            let Some(digits) = self.text.strip_prefix('-') else {
                let n: u64 = self.text.parse().ok()?;
                return Some(Value::Number(n.into()));
            };
            let n: u64 = digits.parse().ok()?;
            // `-0` is a float to serde_json; leave it to serde_json.
            if n != 0 {
                let n = i64::try_from(n).ok()?;
                return Some(Value::Number(Number::from(-n)));
            }
        }
        serde_json::from_str(self.text).ok()
    }
}

/// The index of the first byte from `i` that is a quote, a backslash or a
/// control character (or the end).
///
/// This scan is most of what reading a review costs (over a third of the
/// 10 KB review's instructions with eight bytes at a time, as serde_json
/// scans). On x86-64 it takes sixteen bytes at a time with SSE2, which every
/// x86-64 CPU has (through `safe_arch`: this crate forbids `unsafe`); the
/// eight-byte scan elsewhere. The unit tests check both against a byte-by-byte
/// scan at every position.
#[inline(always)]
pub(crate) fn skip_plain(bytes: &[u8], i: usize) -> usize {
    skip_until::<false>(bytes, i)
}

/// [`skip_plain`] that stops at DEL (0x7f) too, which our log lines escape
/// (the log lines are the shell's: the core alone does not call it).
#[cfg_attr(not(feature = "server"), allow(dead_code))]
#[inline(always)]
pub(crate) fn skip_plain_or_del(bytes: &[u8], i: usize) -> usize {
    skip_until::<true>(bytes, i)
}

/// [`skip_plain`], and at DEL too when `DEL`.
#[inline(always)]
fn skip_until<const DEL: bool>(bytes: &[u8], i: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let i = match skip_plain_sse2::<DEL>(bytes, i) {
        ControlFlow::Break(found) => return found,
        ControlFlow::Continue(rest) => rest,
    };
    skip_plain_swar::<DEL>(bytes, i)
}

/// [`skip_until`], sixteen bytes at a time: `Break` with the first special
/// byte's index, or `Continue` where fewer than sixteen bytes are left.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn skip_plain_sse2<const DEL: bool>(bytes: &[u8], mut i: usize) -> ControlFlow<usize, usize> {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let quote = set_splat_i8_m128i(b'"' as i8);
    let backslash = set_splat_i8_m128i(b'\\' as i8);
    let control = set_splat_i8_m128i(0x1f);
    let del = set_splat_i8_m128i(0x7f);
    while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<16>) {
        let v = load_unaligned_m128i(chunk);
        // A byte below 0x20 is its own minimum with 0x1f.
        let mut found = bitor_m128i(
            bitor_m128i(
                cmp_eq_mask_i8_m128i(v, quote),
                cmp_eq_mask_i8_m128i(v, backslash),
            ),
            cmp_eq_mask_i8_m128i(min_u8_m128i(v, control), v),
        );
        if DEL {
            found = bitor_m128i(found, cmp_eq_mask_i8_m128i(v, del));
        }
        let mask = move_mask_i8_m128i(found);
        if mask != 0 {
            return ControlFlow::Break(i + mask.trailing_zeros() as usize);
        }
        i += 16;
    }
    ControlFlow::Continue(i)
}

/// [`skip_until`], eight bytes at a time, as serde_json scans.
fn skip_plain_swar<const DEL: bool>(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTE: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASH: u64 = u64::from_ne_bytes([b'\\'; 8]);
    const CONTROL: u64 = u64::from_ne_bytes([0x20; 8]);
    const DELETE: u64 = u64::from_ne_bytes([0x7f; 8]);
    while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let x = u64::from_le_bytes(*chunk);
        // A byte of `v` is zero: its high bit in the result is set (exact for
        // the lowest such byte, which is the one taken).
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let mut found =
            zero(x ^ QUOTE) | zero(x ^ BACKSLASH) | (x.wrapping_sub(CONTROL) & !x & HIGH);
        if DEL {
            found |= zero(x ^ DELETE);
        }
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 || (DEL && b == 0x7f) {
            break;
        }
        i += 1;
    }
    i
}

/// Check the escape whose letter is at `i` (after the backslash); the index
/// after it. `None` for what serde refuses or might (a surrogate not in a pair).
fn escape(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 1),
        b'u' => {
            let unit = hex4(bytes, i + 1)?;
            match unit {
                0xD800..=0xDBFF => {
                    // A leading surrogate must be followed by a trailing one.
                    if bytes.get(i + 5..i + 7)? != b"\\u" {
                        return None;
                    }
                    let low = hex4(bytes, i + 7)?;
                    (0xDC00..=0xDFFF).contains(&low).then_some(i + 11)
                }
                0xDC00..=0xDFFF => None,
                _ => Some(i + 5),
            }
        }
        _ => None,
    }
}

fn hex4(bytes: &[u8], i: usize) -> Option<u16> {
    let digits = bytes.get(i..i + 4)?;
    let mut n = 0u16;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        n = n << 4 | u16::from(v);
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::{skip_plain, skip_plain_or_del, skip_plain_swar};

    /// Byte by byte: the scan the fast ones must agree with.
    fn reference<const DEL: bool>(bytes: &[u8], i: usize) -> usize {
        bytes
            .iter()
            .skip(i)
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20 || (DEL && b == 0x7f))
            .map_or(bytes.len(), |n| i + n)
    }

    /// Both fast scans, each with and without DEL, stop where the byte-by-byte
    /// scan does, reading `bytes` from `start`.
    fn all_agree(bytes: &[u8], start: usize, what: &str) {
        let want = reference::<false>(bytes, start);
        assert_eq!(skip_plain(bytes, start), want, "{what}, from {start}");
        assert_eq!(skip_plain_swar::<false>(bytes, start), want, "{what}");
        let want = reference::<true>(bytes, start);
        assert_eq!(
            skip_plain_or_del(bytes, start),
            want,
            "{what}, from {start}, DEL too"
        );
        assert_eq!(
            skip_plain_swar::<true>(bytes, start),
            want,
            "{what}, DEL too"
        );
    }

    #[test]
    fn the_scan_stops_where_a_byte_by_byte_scan_does() {
        // Every byte the scans must stop at, and some they must not.
        let stops: Vec<u8> = (0..0x20).chain([b'"', b'\\']).collect();
        let passes = [b' ', b'!', b'#', b'[', b']', 0x7e, 0x7f, 0x80, 0xa0, 0xff];
        for len in 0..40 {
            let plain: Vec<u8> = (0..len).map(|n| b'a' + (n % 26) as u8).collect();
            for start in 0..=len {
                assert_eq!(
                    skip_plain(&plain, start),
                    len,
                    "{len} plain bytes from {start}"
                );
                all_agree(&plain, start, &format!("{len} plain bytes"));
            }
            for at in 0..len {
                for &b in stops.iter().chain(&passes) {
                    let mut bytes = plain.clone();
                    bytes[at] = b;
                    for start in 0..=len {
                        all_agree(&bytes, start, &format!("{b:#x} at {at} of {len}"));
                    }
                }
            }
        }
    }
}

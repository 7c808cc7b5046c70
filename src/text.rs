//! Bytes that are not UTF-8, carried losslessly through `str`.
//!
//! iptables treats rule files, comments, log prefixes, chain and interface
//! names as plain bytes: a Latin-1 comment loads and is printed back byte for
//! byte. This crate works on `str`, so a byte that is not part of valid UTF-8
//! is carried as one character of the last private-use plane,
//! `U+10FF80 + (byte - 0x80)` (only bytes 0x80–0xFF can be invalid). The
//! inverse, [`to_bytes`], turns those characters back into the bytes they
//! stand for wherever text reaches the kernel or the output.
//!
//! The mapping is exact both ways: a genuine `U+10FF80..=U+10FFFF` in the
//! input (valid UTF-8 `F4 8F BE xx` / `F4 8F BF xx`) is itself carried as four
//! escaped bytes, so [`to_bytes`]`(`[`from_bytes`]`(b)) == b` for every `b`.
//!
//! Text that is valid UTF-8 without such characters (the usual case) is
//! borrowed, never copied.

use std::borrow::Cow;

/// First character of the escape range (stands for byte 0x80).
const BASE: u32 = 0x10FF80;

/// Whether `b` holds a genuine character of the escape range (or the start
/// of one): `F4 8F BE`/`F4 8F BF`.
fn has_escape_prefix(b: &[u8]) -> bool {
    // Almost all text has no 0xF4 byte at all (a fast search).
    b.contains(&0xF4)
        && b.windows(3)
            .any(|w| w[0] == 0xF4 && w[1] == 0x8F && (w[2] == 0xBE || w[2] == 0xBF))
}

fn push_escaped(out: &mut String, byte: u8) {
    debug_assert!(byte >= 0x80);
    out.push(char::from_u32(BASE + u32::from(byte - 0x80)).expect("in the private-use plane"));
}

/// [`from_bytes`] for a buffer that is given away: valid UTF-8 becomes the
/// `String` without a copy.
pub fn from_vec(b: Vec<u8>) -> String {
    match String::from_utf8(b) {
        // Valid UTF-8 without escapes: the buffer itself, not a copy (and
        // checked once).
        Ok(s) if !has_escape_prefix(s.as_bytes()) => s,
        Ok(s) => from_bytes(s.as_bytes()).into_owned(),
        Err(e) => from_bytes(e.as_bytes()).into_owned(),
    }
}

/// Bytes as text: valid UTF-8 is borrowed; any other byte becomes its escape
/// character (see the module documentation).
pub fn from_bytes(b: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(b) {
        if !has_escape_prefix(b) {
            return Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(b.len() + 8);
    let mut rest = b;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let good = e.valid_up_to();
                // An incomplete sequence at the end has no error_len: each of
                // its bytes is escaped on its own.
                let bad = e.error_len().unwrap_or(1);
                (
                    std::str::from_utf8(&rest[..good]).expect("checked prefix"),
                    bad,
                )
            }
        };
        for ch in valid.chars() {
            if (BASE..=0x10FFFF).contains(&u32::from(ch)) {
                let mut buf = [0u8; 4];
                for &byte in ch.encode_utf8(&mut buf).as_bytes() {
                    push_escaped(&mut out, byte);
                }
            } else {
                out.push(ch);
            }
        }
        let after = valid.len();
        for &byte in &rest[after..after + bad] {
            push_escaped(&mut out, byte);
        }
        rest = &rest[after + bad..];
    }
    Cow::Owned(out)
}

/// The bytes `s` stands for: escape characters become the bytes they carry.
pub fn to_bytes(s: &str) -> Cow<'_, [u8]> {
    if !has_escape_prefix(s.as_bytes()) {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    for ch in s.chars() {
        let c = u32::from(ch);
        if c >= BASE {
            out.push((c - BASE + 0x80) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
    Cow::Owned(out)
}

/// How many bytes `s` stands for (what iptables' length limits count).
pub fn byte_len(s: &str) -> usize {
    to_bytes(s).len()
}

/// The 1-based byte column in the original input of the character at byte
/// offset `offset` of `s` (every escape character counts as one byte).
pub fn byte_column(s: &str, offset: usize) -> usize {
    let head = &s.as_bytes()[..offset.min(s.len())];
    if !has_escape_prefix(head) {
        return offset + 1;
    }
    // Only whole characters before `offset` count (an offset may point
    // into one: a column reported inside a multi-byte character).
    let mut end = offset.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let escapes = s[..end].chars().filter(|&c| u32::from(c) >= BASE).count();
    offset - 3 * escapes + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_borrowed() {
        assert!(matches!(from_bytes("grüße".as_bytes()), Cow::Borrowed(_)));
        assert!(matches!(to_bytes("grüße"), Cow::Borrowed(_)));
    }

    #[test]
    fn latin1_round_trips() {
        // "café" in Latin-1.
        let raw = b"caf\xe9 \xff\x80";
        let s = from_bytes(raw);
        assert_eq!(s.chars().count(), 7);
        assert!(s.starts_with("caf"));
        assert_eq!(&*to_bytes(&s), raw);
        assert_eq!(byte_len(&s), raw.len());
    }

    #[test]
    fn genuine_escape_range_characters_round_trip() {
        // U+10FF80 and U+10FFFF written as real UTF-8, a truncated sequence
        // and a lone continuation byte.
        let mut raw = "a\u{10FF80}b\u{10FFFF}".as_bytes().to_vec();
        raw.extend_from_slice(b"\xf4\x8f\xbe");
        raw.extend_from_slice(b"\x80z\xc3");
        let s = from_bytes(&raw);
        assert_eq!(&*to_bytes(&s), &raw[..]);
    }

    #[test]
    fn every_byte_pair_round_trips() {
        for a in 0u8..=255 {
            for b in [0u8, 0x41, 0x80, 0xA9, 0xBF, 0xC3, 0xF4, 0xFF] {
                let raw = [a, b, a];
                assert_eq!(&*to_bytes(&from_bytes(&raw)), &raw[..], "{raw:?}");
            }
        }
    }

    #[test]
    fn columns_inside_a_character_do_not_panic() {
        let s = from_bytes(b"\xe9\xff)x");
        for off in 0..=s.len() {
            assert!(byte_column(&s, off) >= 1);
        }
        // Inside the second escape (bytes 4..8): one whole escape before.
        assert_eq!(byte_column(&s, 5), 3);
    }

    #[test]
    fn columns_count_bytes() {
        let s = from_bytes(b"\xe9\xe9 x");
        let off = s.find('x').unwrap();
        assert_eq!(byte_column(&s, off), 4);
        assert_eq!(byte_column("ab x", 3), 4);
    }
}

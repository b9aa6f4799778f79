//! Reversible escaping of kernel-supplied bytes at the output boundary.
//!
//! Everything a process controls (argv, paths, comm) is bytes, not text: it
//! may be invalid UTF-8 and may carry newlines or terminal escape sequences
//! meant to forge or split log lines. Every such value is converted to an
//! OTLP string with this one function, documented in `docs/escaping.md`:
//!
//! - a backslash becomes `\\`;
//! - a C0 control byte (0x00-0x1f), DEL (0x7f), a C1 control character
//!   (U+0080-U+009F), the Unicode line and paragraph separators, bidi
//!   embeddings, overrides and isolates, zero-width characters, the soft
//!   hyphen and the BOM (see `is_invisible_format`) and every byte that is not part of valid UTF-8 become
//!   `\xHH` (multi-byte characters as the `\xHH` of each of their UTF-8
//!   bytes);
//! - everything else (valid UTF-8, printable) is kept as it is.
//!
//! The mapping is injective, so [`unescape`] recovers the original bytes
//! exactly, and the output never contains a control character, so no value
//! can start a new line or drive a terminal.

use std::borrow::Cow;

/// Escape `bytes` into a printable, single-line UTF-8 string. Printable
/// ASCII without backslashes (the common case) is borrowed, not copied.
pub fn escape(bytes: &[u8]) -> Cow<'_, str> {
    if is_plain(bytes) {
        // SAFETY: every byte was just checked to be printable ASCII, which is
        // valid UTF-8 (this skips a second validation pass on the hot path).
        return Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() || is_invisible_format(c) => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        push_hex(&mut out, b);
                    }
                }
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            push_hex(&mut out, b);
        }
    }
    Cow::Owned(out)
}

/// Whether every byte is printable ASCII other than a backslash (kept as
/// it is). Checked 16 bytes at a time without a branch per byte, which the
/// compiler turns into vector compares: every argument, path and comm of
/// every record goes through here. The bytes after the last 16 are checked
/// the same way, as overlapping blocks (most arguments are shorter than
/// 16 bytes: a loop with an exit per byte was half of this function).
fn is_plain(bytes: &[u8]) -> bool {
    #[inline(always)]
    fn kept(b: u8) -> bool {
        // 0x20..0x7f in one compare (bytes below 0x20 wrap to 0xe0 and up).
        (b.wrapping_sub(0x20) < 0x5f) & (b != b'\\')
    }
    #[inline(always)]
    fn all_kept<const N: usize>(block: &[u8; N]) -> bool {
        block.iter().fold(true, |all, &b| all & kept(b))
    }
    /// The first and the last `N` bytes of `rest` (`N <= rest.len()`;
    /// together they cover it when `rest.len() <= 2 * N`).
    #[inline(always)]
    fn ends_kept<const N: usize>(rest: &[u8]) -> bool {
        match (rest.first_chunk::<N>(), rest.last_chunk::<N>()) {
            (Some(first), Some(last)) => all_kept(first) & all_kept(last),
            _ => rest.iter().all(|&b| kept(b)),
        }
    }
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        if let Some(block) = chunk.first_chunk::<16>() {
            if !all_kept(block) {
                return false;
            }
        }
    }
    let rest = chunks.remainder();
    match rest.len() {
        0 => true,
        // The last 16 bytes overlap blocks already checked.
        _ if bytes.len() >= 16 => bytes.last_chunk::<16>().is_none_or(all_kept),
        8.. => ends_kept::<8>(rest),
        4.. => ends_kept::<4>(rest),
        _ => rest.iter().fold(true, |all, &b| all & kept(b)),
    }
}

/// Characters that reorder or hide text without being controls: line and
/// paragraph separators, bidirectional embeddings, overrides and isolates
/// ("Trojan Source"), zero-width characters, the soft hyphen and the BOM.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
}

fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push('x');
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 0xf)] as char);
}

/// Error from [`unescape`] on a string that [`escape`] cannot have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid escape at byte {0}")]
pub struct UnescapeError(pub usize);

/// Recover the original bytes from an [`escape`]d string.
pub fn unescape(s: &str) -> Result<Vec<u8>, UnescapeError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = s.get(i + 2..i + 4).ok_or(UnescapeError(i))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| UnescapeError(i))?);
                i += 4;
            }
            _ => return Err(UnescapeError(i)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunked check agrees with the byte-by-byte definition, for
    /// every byte value at every position of a chunk and of the remainder.
    #[test]
    fn plain_check_matches_the_definition() {
        let kept = |b: u8| (0x20..0x7f).contains(&b) && b != b'\\';
        for len in (0usize..=40).chain([47, 48, 49, 63, 64, 65]) {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    assert_eq!(is_plain(&bytes), kept(b), "byte {b:#x} at {at} of {len}");
                }
            }
            assert!(is_plain(&vec![b'~'; len]));
        }
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(escape(b"/usr/bin/ls -la"), "/usr/bin/ls -la");
        assert_eq!(escape("gr\u{fc}n".as_bytes()), "gr\u{fc}n");
    }

    #[test]
    fn controls_and_invalid_utf8_are_escaped() {
        assert_eq!(escape(b"a\nb"), "a\\x0ab");
        assert_eq!(escape(b"\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape(b"back\\slash"), "back\\\\slash");
        assert_eq!(escape(b"\xff\xfe"), "\\xff\\xfe");
        assert_eq!(escape(b"nul\0"), "nul\\x00");
        // C1 control U+0085 (NEL) is a line break for some viewers.
        assert_eq!(escape("x\u{85}y".as_bytes()), "x\\xc2\\x85y");
        assert_eq!(escape("x\u{2028}y".as_bytes()), "x\\xe2\\x80\\xa8y");
        // A right-to-left override cannot reorder what a reader sees.
        assert_eq!(escape("evil\u{202E}fdp.exe".as_bytes()), "evil\\xe2\\x80\\xaefdp.exe");
        assert_eq!(escape("a\u{200B}b\u{2066}c\u{FEFF}".as_bytes()), "a\\xe2\\x80\\x8bb\\xe2\\x81\\xa6c\\xef\\xbb\\xbf");
    }

    #[test]
    fn output_never_contains_control_characters() {
        let all: Vec<u8> = (0..=255u8).collect();
        let e = escape(&all);
        assert!(!e.chars().any(char::is_control), "{e}");
    }

    #[test]
    fn round_trip_is_exact() {
        let cases: [&[u8]; 6] = [b"", b"\\x41", b"\\\\", b"\xc3\x28", "\u{85}\u{2028}".as_bytes(), b"a\x00b\nc\x7f"];
        for c in cases {
            assert_eq!(unescape(&escape(c)).expect("unescape"), c, "{c:?}");
        }
        // Exhaustive over all two-byte inputs.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let v = [a, b];
                assert_eq!(unescape(&escape(&v)).expect("unescape"), v);
            }
        }
    }

    #[test]
    fn unescape_rejects_foreign_input() {
        assert!(unescape("\\q").is_err());
        assert!(unescape("\\x4").is_err());
        assert!(unescape("\\").is_err());
    }
}

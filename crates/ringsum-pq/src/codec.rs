//! A bounded reader and helpers for the fixed big-endian layouts of
//! docs/formats.md, shared with the protocol's payloads. The reader never
//! allocates more than it has been given.

use crate::error::{PqError, Result};

/// Reads fields from untrusted bytes; every read checks what is left.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, naming `what` in its errors.
    #[must_use]
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, what }
    }

    /// The next `len` bytes.
    ///
    /// # Errors
    /// [`PqError::Malformed`] if fewer are left.
    pub fn take(&mut self, len: usize, field: &str) -> Result<&'a [u8]> {
        if self.bytes.len() < len {
            return Err(PqError::malformed(
                self.what,
                format!("{field} needs {len} bytes, {} are left", self.bytes.len()),
            ));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    /// The next N bytes as an array.
    ///
    /// # Errors
    /// [`PqError::Malformed`] if fewer are left.
    pub fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let slice = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// A big-endian u8.
    ///
    /// # Errors
    /// [`PqError::Malformed`] if too few bytes are left.
    pub fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    /// A big-endian u16.
    ///
    /// # Errors
    /// [`PqError::Malformed`] if too few bytes are left.
    pub fn u16(&mut self, field: &str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// A big-endian u32.
    ///
    /// # Errors
    /// [`PqError::Malformed`] if too few bytes are left.
    pub fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// A big-endian u64.
    ///
    /// # Errors
    /// [`PqError::Malformed`] if too few bytes are left.
    pub fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A u32 length, checked against `limit` before anything is read.
    ///
    /// # Errors
    /// [`PqError::Malformed`] or [`PqError::TooLarge`].
    pub fn length(&mut self, field: &'static str, limit: usize) -> Result<usize> {
        let len = self.u32(field)?;
        let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
        if len_usize > limit {
            return Err(PqError::TooLarge {
                what: field,
                len: u64::from(len),
                limit: limit as u64,
            });
        }
        Ok(len_usize)
    }

    /// How many bytes are left.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Succeeds only if every byte was read.
    ///
    /// # Errors
    /// [`PqError::Malformed`] for trailing bytes.
    pub fn finish(self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(PqError::malformed(
                self.what,
                format!("{} trailing bytes", self.bytes.len()),
            ))
        }
    }
}

/// Appends a u32 length prefix.
///
/// # Errors
/// [`PqError::TooLarge`] for a length above u32.
pub fn put_len(out: &mut Vec<u8>, len: usize, what: &'static str) -> Result<()> {
    let len32 = u32::try_from(len).map_err(|_| PqError::TooLarge {
        what,
        len: len as u64,
        limit: u64::from(u32::MAX),
    })?;
    out.extend_from_slice(&len32.to_be_bytes());
    Ok(())
}

/// Lowercase hex of public bytes.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(hex_nibble_ct(b >> 4)));
        s.push(char::from(hex_nibble_ct(b & 15)));
    }
    s
}

/// The lowercase hex digit of a nibble, without a branch or a table lookup
/// (secret-key files are written with it).
pub(crate) fn hex_nibble_ct(nibble: u8) -> u8 {
    // 0xff when nibble > 9: then add the distance from '9' + 1 to 'a'.
    let letter = (9u16.wrapping_sub(u16::from(nibble)) >> 8) as u8;
    b'0' + nibble + (letter & (b'a' - b'9' - 1))
}

/// Decodes lowercase or uppercase hex of public bytes; `None` for an odd
/// length or a non-hex character.
#[must_use]
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0u8; bytes.len() / 2];
    unhex_ct(bytes, &mut out).then_some(out)
}

/// The value of one hex digit, without a branch on the digit: secret key
/// files are parsed with it. Returns 0xff for a non-hex byte.
fn hex_digit_ct(c: u8) -> u8 {
    // Each mask is 0xff when c lies in the range, 0 otherwise.
    let in_range = |c: u8, lo: u8, hi: u8| -> u8 {
        let above = (u16::from(c).wrapping_sub(u16::from(lo)) >> 8) as u8; // 0xff if c < lo
        let below = (u16::from(hi).wrapping_sub(u16::from(c)) >> 8) as u8; // 0xff if c > hi
        !(above | below)
    };
    let digit = in_range(c, b'0', b'9');
    let lower = in_range(c, b'a', b'f');
    let upper = in_range(c, b'A', b'F');
    let valid = digit | lower | upper;
    (digit & c.wrapping_sub(b'0'))
        | (lower & c.wrapping_sub(b'a' - 10))
        | (upper & c.wrapping_sub(b'A' - 10))
        | !valid
}

/// Decodes hex into `out` without branching on the digits; false on a bad
/// length or a non-hex character (which one is not revealed).
pub(crate) fn unhex_ct(text: &[u8], out: &mut [u8]) -> bool {
    if text.len() != out.len() * 2 {
        return false;
    }
    let mut bad = 0u8;
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (hex_digit_ct(*hi), hex_digit_ct(*lo)),
            _ => (0xff, 0xff),
        };
        bad |= (hi | lo) & 0xf0;
        *byte = (hi << 4) | (lo & 15);
    }
    bad == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_hex_matches_the_plain_decoder() {
        for c in 0..=255u8 {
            let expected = char::from(c)
                .to_digit(16)
                .map_or(0xff, |d| u8::try_from(d).unwrap_or(0xff));
            assert_eq!(hex_digit_ct(c), expected, "byte {c}");
        }
        let mut out = [0u8; 3];
        assert!(unhex_ct(b"00fFa9", &mut out));
        assert_eq!(out, [0x00, 0xff, 0xa9]);
        assert!(!unhex_ct(b"00fFg9", &mut out));
        assert!(!unhex_ct(b"00fF", &mut out));
        assert_eq!(hex(&[0x00, 0xff, 0xa9]), "00ffa9");
        for nibble in 0..16u8 {
            let expected = char::from_digit(u32::from(nibble), 16).unwrap_or('?');
            assert_eq!(char::from(hex_nibble_ct(nibble)), expected);
        }
    }
}

//! Secret-key files: created with mode 0600 and never over an existing
//! file; refused on reading when group or others may read them.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{PqError, Result};

/// The largest secret-key file read (they are a few hundred bytes).
const MAX_SECRET_FILE: u64 = 4096;
const MAX_SECRET_FILE_BYTES: usize = 4096;

fn io_error(path: &Path, source: std::io::Error) -> PqError {
    PqError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `contents` to a new file readable only by its owner.
pub(crate) fn write_secret(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io_error(path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(path, e))
}

/// Reads a secret-key file, refusing one that others may read and
/// anything but a regular file (a FIFO would block the reader).
pub(crate) fn read_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let kind = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if !kind.is_file() {
        return Err(PqError::malformed("secret key file", "not a regular file"));
    }
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let metadata = file.metadata().map_err(|e| io_error(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PqError::InsecurePermissions {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    if metadata.len() > MAX_SECRET_FILE {
        return Err(PqError::TooLarge {
            what: "secret key file",
            len: metadata.len(),
            limit: MAX_SECRET_FILE,
        });
    }
    // Allocated once, so no reallocation leaves a copy of the secret behind.
    let mut contents = Zeroizing::new(Vec::with_capacity(MAX_SECRET_FILE_BYTES + 1));
    file.take(MAX_SECRET_FILE)
        .read_to_end(&mut contents)
        .map_err(|e| io_error(path, e))?;
    Ok(contents)
}

/// Writes public bytes (a raw public key) to a new file.
pub(crate) fn write_public(path: &Path, contents: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(path, e))
}

/// Reads a public key file of at most `limit` bytes.
pub(crate) fn read_public(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut contents = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut contents)
        .map_err(|e| io_error(path, e))?;
    if contents.len() as u64 > limit {
        return Err(PqError::TooLarge {
            what: "public key file",
            len: contents.len() as u64,
            limit,
        });
    }
    Ok(contents)
}

/// A parsed secret-key file: a header line, then `name value` lines in a
/// fixed order. Lines live in zeroized buffers.
pub(crate) struct SecretText<'a> {
    lines: std::str::Lines<'a>,
    what: &'static str,
}

impl<'a> SecretText<'a> {
    pub(crate) fn new(contents: &'a [u8], header: &str, what: &'static str) -> Result<Self> {
        let text = std::str::from_utf8(contents)
            .map_err(|_| PqError::malformed(what, "not UTF-8 text"))?;
        let mut lines = text.lines();
        if lines.next() != Some(header) {
            return Err(PqError::malformed(
                what,
                format!("first line must be {header:?}"),
            ));
        }
        Ok(Self { lines, what })
    }

    /// The value of the next line, which must be named `name`.
    pub(crate) fn field(&mut self, name: &str) -> Result<&'a str> {
        let line = self
            .lines
            .next()
            .ok_or_else(|| PqError::malformed(self.what, format!("missing {name} line")))?;
        match line.split_once(' ') {
            Some((key, value)) if key == name => Ok(value),
            _ => Err(PqError::malformed(
                self.what,
                format!("expected a {name} line"),
            )),
        }
    }

    /// A secret in hex, decoded without branching on its digits.
    pub(crate) fn secret<const N: usize>(&mut self, name: &str) -> Result<Zeroizing<[u8; N]>> {
        let value = self.field(name)?;
        let mut out = Zeroizing::new([0u8; N]);
        if crate::codec::unhex_ct(value.as_bytes(), out.as_mut()) {
            Ok(out)
        } else {
            Err(PqError::malformed(
                self.what,
                format!("{name} is not {N} bytes of hex"),
            ))
        }
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        match self.lines.next() {
            None => Ok(()),
            Some(_) => Err(PqError::malformed(self.what, "unexpected extra line")),
        }
    }
}

/// Appends `name hex(secret)\n` to a zeroized buffer.
pub(crate) fn put_secret(out: &mut Zeroizing<Vec<u8>>, name: &str, secret: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    for &b in secret {
        out.push(crate::codec::hex_nibble_ct(b >> 4));
        out.push(crate::codec::hex_nibble_ct(b & 15));
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_written_as_lowercase_hex() {
        let mut out = Zeroizing::new(Vec::new());
        put_secret(&mut out, "seed", &[0x01, 0xab, 0xff]);
        assert_eq!(out.as_slice(), b"seed 01abff\n");
    }
}

//! Bounds-checked reading and writing of wire bytes (after arti's `tor-bytes`).
//!
//! Every decoder in the crate reads through [`Reader`], so a short or malicious input yields a
//! [`BytesError`] instead of a panic; every encoder writes through [`Writer`] into a fixed
//! buffer, so an oversized message is an error, never a reallocation past the cell size.

/// Errors of the byte layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BytesError {
    /// The input ended before a field was complete.
    #[error("truncated input: needed {needed} more bytes, {remaining} left")]
    Truncated {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// The output buffer is too small for what is being written.
    #[error("output full: {needed} bytes do not fit in the {remaining} left")]
    Full {
        /// Bytes being written.
        needed: usize,
        /// Space that was left.
        remaining: usize,
    },
}

/// A cursor over received bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], BytesError> {
        if n > self.buf.len() {
            return Err(BytesError::Truncated {
                needed: n,
                remaining: self.buf.len(),
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], BytesError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, BytesError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, BytesError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, BytesError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, BytesError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

/// A cursor writing into a fixed buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Writes into `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Appends bytes.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), BytesError> {
        let remaining = self.buf.len() - self.pos;
        let dst = self
            .buf
            .get_mut(self.pos..self.pos + bytes.len())
            .ok_or(BytesError::Full {
                needed: bytes.len(),
                remaining,
            })?;
        dst.copy_from_slice(bytes);
        self.pos += bytes.len();
        Ok(())
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> Result<(), BytesError> {
        self.put(&[v])
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> Result<(), BytesError> {
        self.put(&v.to_be_bytes())
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> Result<(), BytesError> {
        self.put(&v.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_stops_at_end() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(
            r.u16(),
            Err(BytesError::Truncated {
                needed: 2,
                remaining: 1
            })
        );
        assert_eq!(r.u8(), Ok(3));
    }

    #[test]
    fn writer_refuses_overflow() {
        let mut b = [0u8; 3];
        let mut w = Writer::new(&mut b);
        assert!(w.u16(7).is_ok());
        assert!(w.u16(7).is_err());
        assert_eq!(w.position(), 2);
    }
}

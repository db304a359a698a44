//! A bounds-checked reader for the crate's decoders: every read is a `get`, never an index,
//! so malformed input yields an error, not a panic.

use crate::ReceiptError;

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader {
            bytes,
            offset: 0,
            what,
        }
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], ReceiptError> {
        let rest = self.bytes.get(self.offset..).unwrap_or_default();
        match rest.get(..len) {
            Some(out) => {
                self.offset += len;
                Ok(out)
            }
            None => Err(ReceiptError::Truncated {
                what: self.what,
                offset: self.offset,
                needed: len - rest.len(),
            }),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ReceiptError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ReceiptError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, ReceiptError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ReceiptError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ReceiptError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Refuses anything left over.
    pub(crate) fn finish(self) -> Result<(), ReceiptError> {
        let extra = self.bytes.len().saturating_sub(self.offset);
        if extra == 0 {
            Ok(())
        } else {
            Err(ReceiptError::TrailingBytes {
                what: self.what,
                extra,
            })
        }
    }
}

/// Lower-case hex of the first bytes, for ids in messages.
pub(crate) fn short_hex(bytes: &[u8], f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    for b in bytes.iter().take(8) {
        write!(f, "{b:02x}")?;
    }
    if bytes.len() > 8 {
        write!(f, "…")?;
    }
    Ok(())
}

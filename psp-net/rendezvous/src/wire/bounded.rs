//! Byte strings with an upper bound checked at construction, so encoding never fails.

use super::WireError;

/// Bytes of at most `MAX` bytes. `MAX` must fit the 2-byte length prefix (≤ 65 535).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct BoundedBytes<const MAX: usize>(Vec<u8>);

impl<const MAX: usize> BoundedBytes<MAX> {
    /// Wraps `bytes`, or says which field is too long.
    pub fn new(field: &'static str, bytes: Vec<u8>) -> Result<Self, WireError> {
        if bytes.len() > MAX {
            return Err(WireError::FieldTooLong {
                field,
                len: bytes.len(),
                max: MAX,
            });
        }
        Ok(Self(bytes))
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, owned.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const MAX: usize> AsRef<[u8]> for BoundedBytes<MAX> {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

//! Cuts a stream's bytes into message bodies.
//!
//! An onion stream delivers bytes in cell-sized chunks that need not line up with messages.
//! The deframer keeps at most one incomplete frame: its buffer never exceeds
//! 2 + [`MAX_MESSAGE_LEN`] = 8 194 bytes, whatever the peer sends.

use super::codec::MIN_BODY_LEN;
use super::{WireError, LENGTH_PREFIX_LEN, MAX_MESSAGE_LEN};

/// Reassembles frames from a byte stream. After an error the stream is unusable (its framing
/// is lost): close it.
#[derive(Debug, Default, Clone)]
pub struct Deframer {
    /// The incomplete frame: its length prefix and as much of its body as arrived.
    partial: Vec<u8>,
}

impl Deframer {
    /// Feeds received bytes; returns the bodies they complete, in order.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
        let mut bodies = Vec::new();
        while !bytes.is_empty() {
            let want = match self.announced_len()? {
                None => LENGTH_PREFIX_LEN - self.partial.len(),
                Some(body_len) => LENGTH_PREFIX_LEN + body_len - self.partial.len(),
            };
            let (head, rest) = bytes.split_at(want.min(bytes.len()));
            self.partial.extend_from_slice(head);
            bytes = rest;
            if let Some(body_len) = self.announced_len()? {
                if self.partial.len() == LENGTH_PREFIX_LEN + body_len {
                    let frame = core::mem::take(&mut self.partial);
                    bodies.push(frame.get(LENGTH_PREFIX_LEN..).unwrap_or_default().to_vec());
                }
            }
        }
        Ok(bodies)
    }

    /// Bytes of an incomplete frame held.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// The body length of the incomplete frame, once its prefix is complete.
    fn announced_len(&self) -> Result<Option<usize>, WireError> {
        let Some(&[high, low]) = self.partial.get(..LENGTH_PREFIX_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([high, low]));
        if len < MIN_BODY_LEN {
            return Err(WireError::FrameTooShort { len });
        }
        if len > MAX_MESSAGE_LEN {
            return Err(WireError::FrameTooLong { len });
        }
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let stream = [0, 3, 1, 2, 9, 0, 2, 1, 5];
        for cut in 0..=stream.len() {
            let mut d = Deframer::default();
            let mut bodies = d.feed(&stream[..cut]).unwrap();
            bodies.extend(d.feed(&stream[cut..]).unwrap());
            assert_eq!(bodies, vec![vec![1, 2, 9], vec![1, 5]]);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn bad_lengths_are_refused_before_buffering() {
        let mut d = Deframer::default();
        assert_eq!(d.feed(&[0, 1]), Err(WireError::FrameTooShort { len: 1 }));
        let mut d = Deframer::default();
        assert_eq!(
            d.feed(&[0xff, 0xff, 1]),
            Err(WireError::FrameTooLong { len: 0xffff })
        );
    }
}

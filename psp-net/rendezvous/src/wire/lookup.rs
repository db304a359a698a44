//! Messages on a stream to a node's `lookup` service.
//!
//! A looker (Alice, over a 3-hop circuit) asks a node for the presence records of an
//! identity; the node fetches the keys of the identity's presence slots from the DHT and
//! hands back what it found, unchecked. The looker checks every record itself
//! ([`crate::record::verify_presence_record`]) and trusts no node.
//!
//! | message | direction | fields (after version and type) |
//! |---|---|---|
//! | `Request` | looker → node | owner 32 · slots 1 (1 ..= [`MAX_LOOKUP_SLOTS`]) |
//! | `Records` | node → looker | count 1 (≤ [`MAX_LOOKUP_RECORDS`]) · count × record (2 + ≤ [`MAX_LOOKUP_RECORD_LEN`]) |
//! | `Refused` | node → looker | reason 1 |
//!
//! A record is an encoded `psp_dht::SignedRecord`. The DHT's own bound,
//! `psp_dht::record::MAX_RECORD_LEN`, is 124 + 4 096 + 128 = 4 348 bytes: only one such
//! record would fit a body ([`MAX_MESSAGE_LEN`] − 2 = 8 190 bytes). A *presence* record is
//! smaller: its value is a `PresenceValue` of at most
//! [`MAX_PRESENCE_VALUE_LEN`] = 516 bytes, so it is
//! at most header 124 + 516 + two signatures 128 = 768 bytes, and anything longer is not a
//! valid presence record. With that bound eight records fit:
//! 2 + 1 + 8 × (2 + 768) = 6 163 ≤ 8 192 bytes.

use psp_dht::record::HEADER_LEN as RECORD_HEADER_LEN;
use psp_onion::bytes::Reader;
use psp_onion::crypto::SIGNATURE_LEN;

use super::codec::{
    expect_end, finish_frame, put_bytes, read_bytes, read_header, reason_code, reason_from_code,
    start_frame,
};
use super::{BoundedBytes, WireError, BODY_HEADER_LEN, MAX_MESSAGE_LEN, VERSION};
use crate::record::MAX_PRESENCE_VALUE_LEN;

/// Most presence slots one `Request` may ask for: 8 (slots `0..8`). A client holds two
/// points by default.
pub const MAX_LOOKUP_SLOTS: u8 = 8;
/// Most records in one `Records`: one per slot asked, so 8.
pub const MAX_LOOKUP_RECORDS: usize = MAX_LOOKUP_SLOTS as usize;
/// Largest record carried: the largest encoded presence record, record header 124 + value
/// 516 + owner and publisher signatures 2 × 64 = 768 bytes.
pub const MAX_LOOKUP_RECORD_LEN: usize =
    RECORD_HEADER_LEN + MAX_PRESENCE_VALUE_LEN + 2 * SIGNATURE_LEN;
/// Largest `Records` body: version and type 2 + count 1 + 8 × (length 2 + 768) = 6 163
/// bytes, within [`MAX_MESSAGE_LEN`] (checked at compile time).
pub const MAX_RECORDS_BODY_LEN: usize =
    BODY_HEADER_LEN + 1 + MAX_LOOKUP_RECORDS * (2 + MAX_LOOKUP_RECORD_LEN);

const _: () = assert!(MAX_RECORDS_BODY_LEN <= MAX_MESSAGE_LEN);
const _: () = assert!(MAX_LOOKUP_RECORD_LEN == 768);

/// An encoded `psp_dht::SignedRecord`, as the node carries it (unchecked).
pub type LookupRecord = BoundedBytes<MAX_LOOKUP_RECORD_LEN>;

/// Why the lookup service refused a request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum LookupRefusal {
    /// The node runs as many fetches as it allows, or its fetch did not complete in time:
    /// retry later or at another node.
    Busy,
    /// The message did not decode or was not expected (a second request while one is in
    /// flight); the node closes the stream.
    Malformed,
    /// The stream made as many requests as the node allows; the node closes it. Open a new
    /// stream (or circuit).
    TooManyRequests,
}

const REFUSALS: [LookupRefusal; 3] = [
    LookupRefusal::Busy,
    LookupRefusal::Malformed,
    LookupRefusal::TooManyRequests,
];

/// Every message on a stream to the `lookup` service.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum LookupMsg {
    /// Looker → node: fetch the presence records of `owner`'s slots `0..slots`.
    Request {
        /// The identity looked up.
        owner: [u8; 32],
        /// How many slots, from 0: 1 ..= [`MAX_LOOKUP_SLOTS`].
        slots: u8,
    },
    /// Node → looker: the records found, unchecked, at most one per slot asked. `encode`
    /// writes the first [`MAX_LOOKUP_RECORDS`] only; build with [`LookupMsg::records`] to be
    /// told instead.
    Records(Vec<LookupRecord>),
    /// Node → looker: refused.
    Refused(LookupRefusal),
}

mod types {
    pub const REQUEST: u8 = 0x01;
    pub const RECORDS: u8 = 0x02;
    pub const REFUSED: u8 = 0x03;
}

impl LookupMsg {
    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Request { .. } => "Request",
            Self::Records(_) => "Records",
            Self::Refused(_) => "Refused",
        }
    }

    /// A `Records` message of encoded records, or why they do not fit (more than
    /// [`MAX_LOOKUP_RECORDS`], or one longer than [`MAX_LOOKUP_RECORD_LEN`]).
    pub fn records(records: Vec<Vec<u8>>) -> Result<Self, WireError> {
        if records.len() > MAX_LOOKUP_RECORDS {
            return Err(WireError::FieldTooLong {
                field: "lookup record count",
                len: records.len(),
                max: MAX_LOOKUP_RECORDS,
            });
        }
        let records = records
            .into_iter()
            .map(|r| LookupRecord::new("lookup record", r))
            .collect::<Result<_, _>>()?;
        Ok(Self::Records(records))
    }

    /// The frame to write on the stream: length prefix and body.
    pub fn encode(&self) -> Vec<u8> {
        use types::*;
        let out = match self {
            Self::Request { owner, slots } => {
                let mut out = start_frame(VERSION, REQUEST);
                out.extend_from_slice(owner);
                out.push(*slots);
                out
            }
            Self::Records(records) => {
                let mut out = start_frame(VERSION, RECORDS);
                let count = records.len().min(MAX_LOOKUP_RECORDS);
                // count ≤ 8.
                out.push(u8::try_from(count).unwrap_or(0));
                for record in records.iter().take(count) {
                    put_bytes(&mut out, record);
                }
                out
            }
            Self::Refused(reason) => {
                let mut out = start_frame(VERSION, REFUSED);
                out.push(reason_code(&REFUSALS, reason));
                out
            }
        };
        finish_frame(out)
    }

    /// Decodes one body (as the [`super::Deframer`] yields it, without the length prefix).
    /// Checks structure and bounds only: records are not decoded.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        use types::*;
        let mut r = Reader::new(body);
        let msg = match read_header(&mut r, VERSION)? {
            REQUEST => {
                let owner = r.array()?;
                let slots = r.u8()?;
                if slots == 0 || slots > MAX_LOOKUP_SLOTS {
                    return Err(WireError::InvalidValue {
                        field: "lookup slots",
                        value: u64::from(slots),
                    });
                }
                Self::Request { owner, slots }
            }
            RECORDS => {
                let count = usize::from(r.u8()?);
                if count > MAX_LOOKUP_RECORDS {
                    return Err(WireError::FieldTooLong {
                        field: "lookup record count",
                        len: count,
                        max: MAX_LOOKUP_RECORDS,
                    });
                }
                let mut records = Vec::with_capacity(count);
                for _ in 0..count {
                    records.push(read_bytes(&mut r, "lookup record")?);
                }
                Self::Records(records)
            }
            REFUSED => Self::Refused(reason_from_code(
                &REFUSALS,
                "lookup refusal reason",
                r.u8()?,
            )?),
            got => {
                return Err(WireError::UnknownType {
                    service: "lookup",
                    got,
                })
            }
        };
        expect_end(&r, msg.name())?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Deframer;

    fn round_trip(msg: LookupMsg) {
        let frame = msg.encode();
        let bodies = Deframer::default().feed(&frame).unwrap();
        assert_eq!(bodies.len(), 1);
        assert_eq!(LookupMsg::decode(&bodies[0]).unwrap(), msg);
        for cut in 0..bodies[0].len() {
            assert!(LookupMsg::decode(&bodies[0][..cut]).is_err());
        }
    }

    #[test]
    fn every_message_round_trips() {
        round_trip(LookupMsg::Request {
            owner: [3; 32],
            slots: 1,
        });
        round_trip(LookupMsg::Request {
            owner: [4; 32],
            slots: MAX_LOOKUP_SLOTS,
        });
        round_trip(LookupMsg::records(Vec::new()).unwrap());
        round_trip(LookupMsg::records(vec![vec![1; 500], Vec::new(), vec![2; 768]]).unwrap());
        for reason in REFUSALS {
            round_trip(LookupMsg::Refused(reason));
        }
    }

    #[test]
    fn known_answers() {
        let mut request = vec![0, 35, 1, 0x01];
        request.extend_from_slice(&[0x11; 32]);
        request.push(2);
        assert_eq!(
            LookupMsg::Request {
                owner: [0x11; 32],
                slots: 2
            }
            .encode(),
            request
        );
        assert_eq!(
            LookupMsg::records(vec![vec![0xaa]]).unwrap().encode(),
            [0, 6, 1, 0x02, 1, 0, 1, 0xaa]
        );
        assert_eq!(
            LookupMsg::Refused(LookupRefusal::TooManyRequests).encode(),
            [0, 3, 1, 0x03, 3]
        );
    }

    #[test]
    fn the_biggest_records_message_fits_one_frame() {
        let full = vec![vec![0x5a; MAX_LOOKUP_RECORD_LEN]; MAX_LOOKUP_RECORDS];
        let frame = LookupMsg::records(full).unwrap().encode();
        assert_eq!(frame.len(), 2 + MAX_RECORDS_BODY_LEN);
        assert_eq!(Deframer::default().feed(&frame).unwrap().len(), 1);
        // Too many or too long is refused at construction; encode writes at most eight.
        assert!(LookupMsg::records(vec![Vec::new(); MAX_LOOKUP_RECORDS + 1]).is_err());
        assert!(LookupMsg::records(vec![vec![0; MAX_LOOKUP_RECORD_LEN + 1]]).is_err());
        let nine = LookupMsg::Records(vec![LookupRecord::default(); 9]).encode();
        let body = Deframer::default().feed(&nine).unwrap().remove(0);
        assert_eq!(
            LookupMsg::decode(&body).unwrap(),
            LookupMsg::Records(vec![LookupRecord::default(); 8])
        );
    }

    #[test]
    fn bad_bytes_are_refused() {
        let mut request = vec![1, types::REQUEST];
        request.extend_from_slice(&[0; 32]);
        for slots in [0, MAX_LOOKUP_SLOTS + 1, 0xff] {
            let mut body = request.clone();
            body.push(slots);
            assert!(matches!(
                LookupMsg::decode(&body),
                Err(WireError::InvalidValue {
                    field: "lookup slots",
                    ..
                })
            ));
        }
        assert_eq!(
            LookupMsg::decode(&[2, 1]),
            Err(WireError::Version { got: 2 })
        );
        assert!(matches!(
            LookupMsg::decode(&[1, 0x7f]),
            Err(WireError::UnknownType {
                service: "lookup",
                got: 0x7f
            })
        ));
        assert!(matches!(
            LookupMsg::decode(&[1, types::RECORDS, 9]),
            Err(WireError::FieldTooLong { len: 9, .. })
        ));
        assert!(matches!(
            LookupMsg::decode(&[1, types::RECORDS, 1, 0x03, 0x01]),
            Err(WireError::FieldTooLong { len: 769, .. })
        ));
        assert!(matches!(
            LookupMsg::decode(&[1, types::RECORDS, 0, 0]),
            Err(WireError::TrailingBytes { count: 1, .. })
        ));
        assert!(matches!(
            LookupMsg::decode(&[1, types::REFUSED, 0]),
            Err(WireError::InvalidValue { value: 0, .. })
        ));
    }
}

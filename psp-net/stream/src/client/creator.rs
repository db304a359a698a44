//! The stream creator: one stream creation at one landing node.

use psp_onion::registry::IdentityRegistry;
use psp_receipts::receipt::MAX_DISTRIBUTION_NODES;
use psp_receipts::Receipt;
use psp_rendezvous::StreamHandle;

use super::{Exchange, Output, Transmit};
use crate::error::StreamError;
use crate::record::{stream_id_for, verify_stream_record, StreamId, VerifiedStreamRecord};
use crate::wire::{BoundedBytes, FormatFlags, LandingMsg, WireError};

/// The stream creator's last event.
#[derive(Debug)]
#[non_exhaustive]
pub enum CreatorEvent {
    /// The stream exists; its record verified and matches what was asked.
    Created {
        /// The stream id.
        stream_id: StreamId,
        /// The checked record.
        record: VerifiedStreamRecord,
        /// Its bytes, as the landing node publishes them.
        record_bytes: Vec<u8>,
    },
    /// The landing node refused ([`StreamError::LandingRefused`]), stayed silent, closed the
    /// stream, or answered with a record that does not verify or match.
    Failed(StreamError),
}

/// What the creator asked for, to check the record against.
#[derive(Debug)]
struct Asked {
    landing: [u8; 32],
    stream_id: StreamId,
    distribution_nodes: Vec<[u8; 32]>,
    format: FormatFlags,
}

/// One stream creation at one landing node.
#[derive(Debug)]
pub struct StreamCreator {
    /// What was asked, to check the record against.
    exchange: Exchange<Asked>,
}

impl StreamCreator {
    /// Asks the landing node `landing` (its node id) on `stream` to create a stream with
    /// `receipt`, served by `distribution_nodes` (1 ..= 32, at most the receipt's allowance)
    /// over `format`. Returns the machine and the `CreateStream` to write.
    pub fn new(
        stream: StreamHandle,
        landing: [u8; 32],
        receipt: &Receipt,
        distribution_nodes: Vec<[u8; 32]>,
        format: FormatFlags,
        now: u64,
        timeout_secs: u64,
    ) -> Result<(Self, Transmit), StreamError> {
        let count = distribution_nodes.len();
        if count == 0 || count > usize::from(MAX_DISTRIBUTION_NODES) {
            return Err(StreamError::Malformed {
                what: "distribution nodes",
                source: WireError::InvalidValue {
                    field: "distribution node count",
                    value: count as u64,
                },
            });
        }
        let receipt_bytes = BoundedBytes::new("receipt", receipt.encode())
            .map_err(StreamError::malformed("receipt"))?;
        let msg = LandingMsg::CreateStream {
            receipt: receipt_bytes,
            distribution_nodes: distribution_nodes.clone(),
            format,
        };
        let asked = Asked {
            landing,
            stream_id: stream_id_for(&receipt.spend_id),
            distribution_nodes,
            format,
        };
        let creator = Self {
            exchange: Exchange::new(
                stream,
                asked,
                "landing",
                "waiting for the landing node's answer",
                now,
                timeout_secs,
            ),
        };
        Ok((
            creator,
            Transmit {
                stream,
                bytes: msg.encode(),
            },
        ))
    }

    super::exchange_methods!(CreatorEvent, "landing node");

    /// Bytes arrived from the landing node. The record is checked against `registry` (the
    /// client's latest finalized block) at `now`.
    pub fn handle_data(
        &mut self,
        now: u64,
        bytes: &[u8],
        registry: &dyn IdentityRegistry,
    ) -> Output<CreatorEvent> {
        let body = match self.exchange.receive(now, bytes, "landing frame") {
            Ok(body) => body,
            Err(output) => return output,
        };
        let result = match LandingMsg::decode(&body) {
            Ok(LandingMsg::StreamCreated { stream_id, record }) => {
                self.check(now, stream_id, record.as_slice(), registry)
            }
            Ok(LandingMsg::Refused(reason)) => Err(StreamError::LandingRefused(reason)),
            Ok(other) => Err(StreamError::UnexpectedMessage {
                message: other.name(),
                state: "waiting for the landing node's answer",
            }),
            Err(e) => Err(StreamError::malformed("landing message")(e)),
        };
        match result {
            Ok(event) => self.exchange.end(event),
            Err(e) => self.exchange.fail(e),
        }
    }

    fn check(
        &self,
        now: u64,
        stream_id: StreamId,
        record_bytes: &[u8],
        registry: &dyn IdentityRegistry,
    ) -> Result<CreatorEvent, StreamError> {
        let Some(asked) = &self.exchange.state else {
            return Err(StreamError::Ended {
                machine: "stream creator",
            });
        };
        let record = verify_stream_record(record_bytes, now, registry)?;
        let r = record.record();
        if stream_id != asked.stream_id || r.stream_id != asked.stream_id {
            return Err(StreamError::RecordMismatch(
                "stream id is not the receipt's",
            ));
        }
        if r.landing != asked.landing {
            return Err(StreamError::RecordMismatch(
                "signed by another landing node",
            ));
        }
        if r.access_points != asked.distribution_nodes {
            return Err(StreamError::RecordMismatch(
                "access points differ from the distribution nodes asked",
            ));
        }
        if r.format != asked.format {
            return Err(StreamError::RecordMismatch("format flags differ"));
        }
        Ok(CreatorEvent::Created {
            stream_id,
            record,
            record_bytes: record_bytes.to_vec(),
        })
    }
}

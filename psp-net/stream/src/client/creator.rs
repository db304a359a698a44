//! The stream creator: one stream creation at one landing node.

use psp_onion::registry::IdentityRegistry;
use psp_receipts::receipt::MAX_DISTRIBUTION_NODES;
use psp_receipts::Receipt;
use psp_rendezvous::StreamHandle;

use super::{Output, Transmit};
use crate::error::StreamError;
use crate::record::{stream_id_for, verify_stream_record, StreamId, VerifiedStreamRecord};
use crate::wire::{BoundedBytes, Deframer, FormatFlags, LandingMsg, WireError};

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
    stream: StreamHandle,
    deadline: u64,
    deframer: Deframer,
    /// `None` once ended.
    asked: Option<Asked>,
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
        let creator = Self {
            stream,
            deadline: now.saturating_add(timeout_secs),
            deframer: Deframer::default(),
            asked: Some(Asked {
                landing,
                stream_id: stream_id_for(&receipt.spend_id),
                distribution_nodes,
                format,
            }),
        };
        Ok((
            creator,
            Transmit {
                stream,
                bytes: msg.encode(),
            },
        ))
    }

    /// The stream to the landing node.
    pub fn stream(&self) -> StreamHandle {
        self.stream
    }

    /// Whether the machine ended.
    pub fn is_closed(&self) -> bool {
        self.asked.is_none()
    }

    /// When [`Self::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<u64> {
        (!self.is_closed()).then_some(self.deadline)
    }

    /// Ends the machine if its deadline passed.
    pub fn handle_timeout(&mut self, now: u64) -> Output<CreatorEvent> {
        if !self.is_closed() && now >= self.deadline {
            let deadline = self.deadline;
            return self.fail(StreamError::TimedOut {
                step: "waiting for the landing node's answer",
                deadline,
            });
        }
        Output::default()
    }

    /// The stream closed before the answer.
    pub fn handle_stream_closed(&mut self) -> Output<CreatorEvent> {
        if self.is_closed() {
            return Output::default();
        }
        self.fail(StreamError::StreamClosed {
            service: "landing",
            state: "waiting for the answer",
        })
    }

    /// Bytes arrived from the landing node. The record is checked against `registry` (the
    /// client's latest finalized block) at `now`.
    pub fn handle_data(
        &mut self,
        now: u64,
        bytes: &[u8],
        registry: &dyn IdentityRegistry,
    ) -> Output<CreatorEvent> {
        if self.is_closed() {
            return Output::default();
        }
        if now >= self.deadline {
            return self.handle_timeout(now);
        }
        let body = match self.deframer.feed(bytes) {
            Ok(bodies) => match bodies.into_iter().next() {
                Some(body) => body,
                None => return Output::default(),
            },
            Err(e) => return self.fail(StreamError::malformed("landing frame")(e)),
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
            Ok(event) => self.end(event),
            Err(e) => self.fail(e),
        }
    }

    fn check(
        &self,
        now: u64,
        stream_id: StreamId,
        record_bytes: &[u8],
        registry: &dyn IdentityRegistry,
    ) -> Result<CreatorEvent, StreamError> {
        let Some(asked) = &self.asked else {
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

    fn fail(&mut self, error: StreamError) -> Output<CreatorEvent> {
        self.end(CreatorEvent::Failed(error))
    }

    fn end(&mut self, event: CreatorEvent) -> Output<CreatorEvent> {
        self.asked = None;
        Output {
            transmits: Vec::new(),
            close: vec![self.stream],
            events: vec![event],
        }
    }
}

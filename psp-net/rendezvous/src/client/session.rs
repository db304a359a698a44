//! # Session: an established end-to-end channel on a rendezvous stream
//!
//! Both sides hold one after the handshake. [`Session::send`] turns a message into `Relay`
//! frames for the rendezvous stream (each within one onion cell with the default channel
//! configuration); [`Session::handle_data`] deframes what the stream delivers and yields
//! whole messages in order. Any fault (a frame that fails authentication, a refusal from the
//! rendezvous node, malformed bytes, the stream closing) ends the session with one
//! [`SessionEvent::Closed`] and asks the driver to close the stream.

use super::error::ClientError;
use super::output::{Output, Transmit};
use crate::channel::{Channel, ChannelError};
use crate::ids::StreamHandle;
use crate::wire::{Deframer, RendezvousMsg};

/// What a session's input produced.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A whole message from the peer, byte-exact, in the order sent.
    Message(Vec<u8>),
    /// The session ended; the error says why. Last event.
    Closed(ClientError),
}

/// An established channel on a rendezvous stream.
#[derive(Debug)]
pub struct Session {
    stream: StreamHandle,
    channel: Channel,
    deframer: Deframer,
    ended: bool,
}

impl Session {
    /// Starts a session on `stream` where a handshake left off: its deframer (with any
    /// incomplete frame) and the bodies that arrived after the last handshake message, which
    /// the session handles at once.
    pub(crate) fn start(
        stream: StreamHandle,
        channel: Channel,
        deframer: Deframer,
        rest: Vec<Vec<u8>>,
    ) -> (Self, Output<SessionEvent>) {
        let mut session = Self {
            stream,
            channel,
            deframer,
            ended: false,
        };
        let mut out = Output::default();
        session.handle_bodies(rest, &mut out);
        (session, out)
    }

    /// The rendezvous stream it runs on.
    pub fn stream(&self) -> StreamHandle {
        self.stream
    }

    /// The peer's identity, proven in the handshake.
    pub fn peer_identity(&self) -> &[u8; 32] {
        self.channel.peer_identity()
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        self.ended
    }

    /// Encrypts `message` into `Relay` frames, one transmit each, to write in order. A
    /// message over the channel's bound is refused and changes nothing; any other error
    /// ends the session (check [`Self::is_closed`], then close [`Self::stream`]).
    pub fn send(&mut self, message: &[u8]) -> Result<Vec<Transmit>, ClientError> {
        if self.ended {
            return Err(ClientError::Ended { machine: "session" });
        }
        let frames = match self.channel.seal_message(message) {
            Ok(frames) => frames,
            Err(e @ ChannelError::MessageTooLong { .. }) => return Err(e.into()),
            Err(e) => {
                self.ended = true;
                return Err(e.into());
            }
        };
        let mut transmits = Vec::with_capacity(frames.len());
        for frame in frames {
            // Frames are at most `max_frame_len` ≤ the relay payload bound (ChannelConfig).
            let relay = RendezvousMsg::relay(frame).map_err(|source| {
                self.ended = true;
                ClientError::Malformed {
                    service: "rendezvous",
                    source,
                }
            })?;
            transmits.push(Transmit {
                stream: self.stream,
                bytes: relay.encode(),
            });
        }
        Ok(transmits)
    }

    /// Bytes arrived on the rendezvous stream.
    pub fn handle_data(&mut self, bytes: &[u8]) -> Output<SessionEvent> {
        let mut out = Output::default();
        if self.ended {
            return out;
        }
        match self.deframer.feed(bytes) {
            Ok(bodies) => self.handle_bodies(bodies, &mut out),
            Err(source) => self.end(
                &mut out,
                ClientError::Malformed {
                    service: "rendezvous",
                    source,
                },
            ),
        }
        out
    }

    /// The rendezvous stream closed (the peer left, or the node closed an idle link).
    pub fn handle_stream_closed(&mut self) -> Output<SessionEvent> {
        let mut out = Output::default();
        if !self.ended {
            self.ended = true;
            out.emit(SessionEvent::Closed(ClientError::StreamClosed {
                service: "rendezvous",
                state: "in session",
            }));
        }
        out
    }

    /// Ends the session locally: returns the stream to close. No event.
    pub fn close(&mut self) -> Output<SessionEvent> {
        let mut out = Output::default();
        if !self.ended {
            self.ended = true;
            out.close(self.stream);
        }
        out
    }

    /// Handles whole message bodies from the stream.
    pub(crate) fn handle_bodies(&mut self, bodies: Vec<Vec<u8>>, out: &mut Output<SessionEvent>) {
        for body in bodies {
            if self.ended {
                return;
            }
            match RendezvousMsg::decode(&body) {
                Ok(RendezvousMsg::Relay(payload)) => {
                    match self.channel.open_frame(payload.as_slice()) {
                        Ok(Some(message)) => out.emit(SessionEvent::Message(message)),
                        Ok(None) => {}
                        Err(e) => self.end(out, e.into()),
                    }
                }
                Ok(RendezvousMsg::Refused(reason)) => {
                    self.end(out, ClientError::RendezvousRefused(reason))
                }
                Ok(other) => self.end(
                    out,
                    ClientError::Unexpected {
                        service: "rendezvous",
                        message: other.name(),
                        state: "in session",
                    },
                ),
                Err(source) => self.end(
                    out,
                    ClientError::Malformed {
                        service: "rendezvous",
                        source,
                    },
                ),
            }
        }
    }

    fn end(&mut self, out: &mut Output<SessionEvent>, error: ClientError) {
        self.ended = true;
        out.close(self.stream);
        out.emit(SessionEvent::Closed(error));
    }
}

//! What a client machine asks its driver to do: bytes to write, streams to close, events.

use crate::ids::StreamHandle;

/// Bytes to write on one of the machine's streams: one or more whole frames.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transmit {
    /// The stream, as the driver named it when it built the machine.
    pub stream: StreamHandle,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// What one input produced. Run it in order: write every transmit, then close the streams
/// in `close` (closing one the node already closed is a no-op for the driver), then handle
/// the events.
#[derive(Debug)]
#[must_use = "transmits must be written and streams closed"]
pub struct Output<E> {
    /// Bytes to write, in order.
    pub transmits: Vec<Transmit>,
    /// Streams the machine is done with: close them after the transmits.
    pub close: Vec<StreamHandle>,
    /// What happened, in order.
    pub events: Vec<E>,
}

impl<E> Default for Output<E> {
    fn default() -> Self {
        Self {
            transmits: Vec::new(),
            close: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl<E> Output<E> {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.transmits.is_empty() && self.close.is_empty() && self.events.is_empty()
    }

    pub(crate) fn send(&mut self, stream: StreamHandle, bytes: Vec<u8>) {
        self.transmits.push(Transmit { stream, bytes });
    }

    pub(crate) fn emit(&mut self, event: E) {
        self.events.push(event);
    }

    pub(crate) fn close(&mut self, stream: StreamHandle) {
        if !self.close.contains(&stream) {
            self.close.push(stream);
        }
    }

    /// Appends another machine's output, wrapping its events (a session started inside an
    /// initiator's or responder's input).
    pub(crate) fn absorb<F>(&mut self, other: Output<F>, wrap: impl Fn(F) -> E) {
        self.transmits.extend(other.transmits);
        for stream in other.close {
            self.close(stream);
        }
        self.events.extend(other.events.into_iter().map(wrap));
    }
}

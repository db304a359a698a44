//! What the node services (presence, rendezvous, lookup) share: cutting a stream's bytes into
//! message bodies, decoding each and handing it to the service, until the service has closed
//! the stream.

use crate::ids::StreamHandle;
use crate::wire::{Deframer, WireError};

/// A service that keeps one [`Deframer`] per open stream.
pub(crate) trait DeframedStreams {
    /// The deframer of `stream`, if the service still holds it.
    fn deframer(&mut self, stream: StreamHandle) -> Option<&mut Deframer>;
    /// Whether the service still holds `stream`.
    fn is_open(&self, stream: StreamHandle) -> bool;
}

/// Feeds `bytes` of `stream` to its deframer, decodes every whole body with `decode` and runs
/// `handle` on it, in order, stopping once the stream is closed. Bytes that do not frame or
/// decode go to `malformed` (which refuses and closes the stream). Returns the first error.
pub(crate) fn dispatch<S, M, E>(
    service: &mut S,
    stream: StreamHandle,
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<M, WireError>,
    mut handle: impl FnMut(&mut S, M) -> Result<(), E>,
    malformed: impl Fn(&mut S, StreamHandle),
) -> Result<(), E>
where
    S: DeframedStreams,
    E: From<WireError>,
{
    let fed = match service.deframer(stream) {
        Some(deframer) => deframer.feed(bytes),
        None => return Ok(()),
    };
    let bodies = match fed {
        Ok(bodies) => bodies,
        Err(e) => {
            malformed(service, stream);
            return Err(e.into());
        }
    };
    let mut first_error = Ok(());
    for body in bodies {
        let result = match decode(&body) {
            Ok(msg) => handle(service, msg),
            Err(e) => {
                malformed(service, stream);
                Err(e.into())
            }
        };
        if first_error.is_ok() {
            first_error = result;
        }
        if !service.is_open(stream) {
            break;
        }
    }
    first_error
}

//! Identifiers: stream handles, introduction ids and rendezvous cookies.

/// An onion stream at this node's service, as the driver names it. Opaque to the state
/// machines: the driver picks the values (one per open stream) and maps them back to its
/// circuits and stream ids when it runs the actions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct StreamHandle(pub u64);

/// A pending introduction at a presence node, as the node and the registered client name it.
/// Fresh per introduction and never reused by one node; it means nothing elsewhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct IntroId(pub u64);

/// The one-time secret that names a rendezvous point: the introducer draws it, establishes it
/// at the rendezvous node, and hands it to the receiver inside the sealed introduction.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cookie(pub [u8; 32]);

impl Cookie {
    /// Draws a fresh cookie.
    pub fn random(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }
}

impl core::fmt::Debug for Cookie {
    // The cookie is a bearer secret: logs show a prefix only.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Cookie({:02x?}..)", &self.0[..2])
    }
}

//! Circuit-level flow control: SENDME windows, as in Tor.
//!
//! Each end of a circuit (the client and its last hop) may have at most [`CIRCUIT_WINDOW`]
//! DATA cells in flight towards the other end. Whoever takes delivery of DATA answers every
//! [`SENDME_INCREMENT`] cells with a SENDME, which lets the sender put that many more on the
//! circuit. A sender that runs out of window waits (its cells wait in a bounded backlog at
//! the sender) instead of flooding the relays in between, whose per-circuit queues
//! ([`Config::max_queue_per_circuit`](super::Config), 128 cells by default) hold both
//! directions' windows with room to spare: a well-behaved fast sender is paced, never torn
//! down. Only DATA counts; control messages (BEGIN, END, EXTEND, SENDME itself) do not.
//!
//! A peer that breaks the windows, with DATA beyond the window or a SENDME that would open
//! it wider than [`CIRCUIT_WINDOW`], has its circuit closed as a protocol violation.

use super::CircuitError;

/// DATA cells one end may have in flight towards the other.
pub const CIRCUIT_WINDOW: u16 = 50;
/// DATA cells acknowledged by one SENDME.
pub const SENDME_INCREMENT: u16 = 25;

/// The two windows of one circuit end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    /// DATA cells this end may still send.
    package: u16,
    /// DATA cells the other end may still send before it needs our next SENDME.
    deliver: u16,
}

impl Default for Windows {
    fn default() -> Self {
        Self {
            package: CIRCUIT_WINDOW,
            deliver: CIRCUIT_WINDOW,
        }
    }
}

impl Windows {
    /// Whether one more DATA cell may be sent now.
    pub fn can_package(&self) -> bool {
        self.package > 0
    }

    /// DATA cells that may still be sent before the next SENDME.
    pub fn package_left(&self) -> u16 {
        self.package
    }

    /// Takes one DATA cell from the send window; `false` (and nothing taken) when it is empty.
    pub fn take_package(&mut self) -> bool {
        match self.package.checked_sub(1) {
            Some(left) => {
                self.package = left;
                true
            }
            None => false,
        }
    }

    /// A SENDME arrived: the send window opens by [`SENDME_INCREMENT`]. Refused when that
    /// would make it wider than [`CIRCUIT_WINDOW`] (a SENDME for DATA never sent).
    pub fn on_sendme(&mut self) -> Result<(), CircuitError> {
        let opened = self.package + SENDME_INCREMENT;
        if opened > CIRCUIT_WINDOW {
            return Err(CircuitError::Unexpected("SENDME beyond the circuit window"));
        }
        self.package = opened;
        Ok(())
    }

    /// A DATA cell arrived. Refused when the other end had no window left for it.
    pub fn on_data(&mut self) -> Result<(), CircuitError> {
        self.deliver = self
            .deliver
            .checked_sub(1)
            .ok_or(CircuitError::Unexpected("DATA beyond the circuit window"))?;
        Ok(())
    }

    /// Whether enough DATA has been delivered since the last SENDME to send another.
    pub fn sendme_due(&self) -> bool {
        CIRCUIT_WINDOW - self.deliver >= SENDME_INCREMENT
    }

    /// Records that a SENDME was sent: the other end may send [`SENDME_INCREMENT`] more.
    pub fn sendme_sent(&mut self) {
        self.deliver = (self.deliver + SENDME_INCREMENT).min(CIRCUIT_WINDOW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_stops_at_the_window_and_resumes_per_sendme() {
        let mut w = Windows::default();
        for _ in 0..CIRCUIT_WINDOW {
            assert!(w.take_package());
        }
        assert!(!w.can_package());
        assert!(!w.take_package(), "an empty window takes nothing");
        w.on_sendme().unwrap();
        assert_eq!(
            (0..CIRCUIT_WINDOW).filter(|_| w.take_package()).count(),
            usize::from(SENDME_INCREMENT)
        );
    }

    #[test]
    fn a_sendme_for_data_never_sent_is_refused() {
        let mut w = Windows::default();
        assert!(w.on_sendme().is_err(), "the window is already full");
        assert!(w.take_package());
        assert!(w.on_sendme().is_err(), "one cell sent is not an increment");
    }

    #[test]
    fn the_receiver_owes_a_sendme_per_increment_and_refuses_data_past_the_window() {
        let mut w = Windows::default();
        for i in 1..=CIRCUIT_WINDOW {
            w.on_data().unwrap();
            assert_eq!(w.sendme_due(), i >= SENDME_INCREMENT);
        }
        assert!(w.on_data().is_err(), "DATA past the window");
        w.sendme_sent();
        assert!(w.sendme_due(), "a second increment is still owed");
        w.sendme_sent();
        assert!(!w.sendme_due());
        for _ in 0..CIRCUIT_WINDOW {
            w.on_data().unwrap();
        }
    }
}

//! Consumers' session tickets and this relay's usage meter (PSP overview §8.3, issue 14,
//! points 1 and 3), on the media state.
//!
//! ```text
//! consumer ──POST /whep/<stream>  PSP-Admission: <hex>  PSP-Challenge: <recent finalized block>──▶ node
//! ```
//!
//! A distribution node accepts a consumer only with an *admission*: a session ticket an
//! elected oracle signed (of the current or the previous epoch; unexpired), the session key
//! whose hash is the ticket's session id, and that key's signature over this node, the
//! stream and the challenge ([`psp_net::usage::ticket::Admission`]). The challenge is a
//! finalized block among the latest [`super::super::super::usage::RECENT_BLOCKS`]: fresh
//! without a round trip, and the same for every consumer, so it costs the node no state. A
//! session is admitted once per node ([`TicketGate`]'s replay set): a copied admission is
//! refused (401) with the reason.
//!
//! Every frame sent to an admitted consumer is metered against its session
//! ([`RelayMeter`]). When the chain shows that an epoch ended (the next one's start time is
//! known), the meter cuts it at that chain time and signs one relay half per session, which
//! the driver sends to the epoch's oracles.

use std::collections::{HashMap, HashSet};

use psp_net::{
    crypto::{NodeId, Sr25519Keypair},
    usage::{
        report::{RelayHalf, RelayMeter, DEFAULT_MAX_METERED},
        ticket::{Admission, AdmittedSession, GateConfig, TicketGate},
    },
};
use psp_primitives::{rewards::SessionId, staking::EpochIndex};
use psp_webrtc::{PeerId, Refusal, SignallingRequest};

use super::hex32;
use crate::overlay::usage::ChainFacts;

/// The WHEP header carrying a consumer's admission (hex).
pub const ADMISSION_HEADER: &str = "psp-admission";
/// The WHEP header naming the challenge the admission signs: a recent finalized block (hex).
pub const CHALLENGE_HEADER: &str = "psp-challenge";
/// Admitted sessions waiting for their WebRTC connection; past it the oldest is dropped.
const MAX_WAITING: usize = 1_024;

/// The gate, the meter and who is who.
pub struct Metering {
    gate: TicketGate,
    meter: RelayMeter,
    recent: HashSet<[u8; 32]>,
    /// Admitted at the signalling step, not yet connected: session → (admission, when).
    waiting: HashMap<SessionId, (AdmittedSession, u64)>,
    /// Connected consumers' sessions.
    by_peer: HashMap<PeerId, SessionId>,
    /// The newest epoch cut.
    cut_through: Option<EpochIndex>,
    /// Test networks: report this many percent more bytes than sent (a lying relay).
    pub inflate_percent: u32,
}

impl Metering {
    /// Metering for the node of `key` on the chain `genesis`.
    pub fn new(genesis: [u8; 32], key: &Sr25519Keypair) -> Self {
        Self {
            gate: TicketGate::new(genesis, NodeId(key.public()), GateConfig::default()),
            meter: RelayMeter::new(genesis, key.clone(), DEFAULT_MAX_METERED),
            recent: HashSet::new(),
            waiting: HashMap::new(),
            by_peer: HashMap::new(),
            cut_through: None,
            inflate_percent: 0,
        }
    }

    /// Checks a WHEP request's admission for `stream_id` at `now_secs` (unix).
    pub fn admit(
        &mut self,
        request: &SignallingRequest<'_>,
        stream_id: &[u8; 32],
        now_ms: u64,
        now_secs: u64,
    ) -> Result<(), Refusal> {
        let (admission, challenge) = read_headers(request)?;
        if !self.recent.contains(&challenge) {
            return Err(Refusal::unauthorized(
                "the challenge is not a recent finalized block: sign a newer one",
            ));
        }
        let admitted = self
            .gate
            .admit(now_secs, stream_id, &challenge, &admission)
            .map_err(|e| Refusal::unauthorized(format!("session ticket refused: {e}")))?;
        if self.waiting.len() >= MAX_WAITING {
            let oldest = self
                .waiting
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(s, _)| *s);
            if let Some(oldest) = oldest {
                self.waiting.remove(&oldest);
            }
        }
        self.waiting.insert(admitted.session(), (admitted, now_ms));
        Ok(())
    }

    /// The admitted request became `peer`: its bytes are metered from now on.
    pub fn accepted(&mut self, request: &SignallingRequest<'_>, peer: PeerId) {
        let Ok((admission, _)) = read_headers(request) else {
            return;
        };
        let session = admission.ticket.ticket.session;
        let Some((admitted, _)) = self.waiting.remove(&session) else {
            return;
        };
        match self.meter.admit(&admitted) {
            Ok(()) => {
                self.by_peer.insert(peer, session);
            }
            Err(e) => log::warn!(target: "psp-media", "consumer {peer} not metered: {e}"),
        }
    }

    /// The admitted request's offer failed.
    pub fn failed(&mut self, request: &SignallingRequest<'_>) {
        if let Ok((admission, _)) = read_headers(request) {
            self.waiting.remove(&admission.ticket.ticket.session);
        }
    }

    /// `bytes` went to `peer` at `unix_ms`.
    pub fn sent(&mut self, peer: PeerId, bytes: usize, unix_ms: u64) {
        if let Some(session) = self.by_peer.get(&peer) {
            let bytes = (bytes as u64).saturating_mul(100 + u64::from(self.inflate_percent)) / 100;
            let _ = self.meter.record(session, bytes, unix_ms);
        }
    }

    /// `peer` left: its session is reported at the end of the epoch, then forgotten.
    pub fn gone(&mut self, peer: PeerId) {
        if let Some(session) = self.by_peer.remove(&peer) {
            self.meter.close(&session);
        }
    }

    /// Takes what the chain says: the oracles whose tickets count and the recent blocks;
    /// cuts every epoch whose end is now known. Returns each cut epoch's halves.
    pub fn on_chain(&mut self, facts: &ChainFacts) -> Vec<(EpochIndex, Vec<RelayHalf>)> {
        if let Err(e) = self.gate.set_elected(&facts.ticket_oracles()) {
            log::warn!(target: "psp-media", "ticket gate: oracles not taken: {e}");
        }
        self.recent = facts.recent_blocks.iter().copied().collect();
        let mut cut = Vec::new();
        for (&epoch, _) in facts.epochs.iter() {
            let Some(next) = facts.epochs.get(&epoch.saturating_add(1)) else {
                continue; // still running
            };
            if self.cut_through.is_some_and(|c| epoch <= c) {
                continue;
            }
            let halves = self.meter.end_epoch_at(epoch, next.started_at_ms);
            self.cut_through = Some(epoch);
            if !halves.is_empty() {
                cut.push((epoch, halves));
            }
        }
        cut
    }
}

/// The admission and challenge of a WHEP request.
fn read_headers(request: &SignallingRequest<'_>) -> Result<(Admission, [u8; 32]), Refusal> {
    let admission = request.header(ADMISSION_HEADER).ok_or_else(|| {
        Refusal::unauthorized(format!(
            "no session ticket: send {ADMISSION_HEADER} and {CHALLENGE_HEADER} (psp stream watch does)"
        ))
    })?;
    let admission = hex::decode(admission.trim())
        .map_err(|_| Refusal::bad_request(format!("{ADMISSION_HEADER} is not hex")))
        .and_then(|bytes| {
            Admission::decode(&bytes)
                .map_err(|e| Refusal::bad_request(format!("{ADMISSION_HEADER}: {e}")))
        })?;
    let challenge = request
        .header(CHALLENGE_HEADER)
        .and_then(|c| hex32(c.trim().trim_start_matches("0x")))
        .ok_or_else(|| {
            Refusal::bad_request(format!(
                "{CHALLENGE_HEADER} must be a block hash, 64 hex digits"
            ))
        })?;
    Ok((admission, challenge))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::usage::EpochFacts;
    use psp_net::usage::ticket::SessionTicket;
    use psp_primitives::rewards::session_id_of;
    use psp_webrtc::Route;

    const GENESIS: [u8; 32] = [1; 32];
    const BLOCK: [u8; 32] = [2; 32];
    const STREAM: [u8; 32] = [3; 32];
    const NOW: u64 = 1_000_000;

    fn facts(oracle: [u8; 32], epochs: &[(EpochIndex, u64)]) -> ChainFacts {
        ChainFacts {
            current: epochs.last().map(|(e, _)| *e),
            epochs: epochs
                .iter()
                .map(|&(e, started_at_ms)| {
                    (
                        e,
                        EpochFacts {
                            oracles: vec![oracle],
                            started_at_ms,
                        },
                    )
                })
                .collect(),
            recent_blocks: [BLOCK].into(),
        }
    }

    /// The headers of an admission for `node` by a session key of `seed`, with a ticket of
    /// `oracle`.
    fn headers(oracle: &Sr25519Keypair, node: &[u8; 32], seed: u8) -> Vec<(String, String)> {
        headers_until(oracle, node, seed, NOW + 600)
    }

    /// [`headers`] with a ticket valid until `valid_until`.
    fn headers_until(
        oracle: &Sr25519Keypair,
        node: &[u8; 32],
        seed: u8,
        valid_until: u64,
    ) -> Vec<(String, String)> {
        let key = Sr25519Keypair::from_seed(&[seed; 32]);
        let ticket = SessionTicket {
            genesis: GENESIS,
            session: session_id_of(&key.public()),
            oracle: NodeId(oracle.public()),
            valid_from: NOW - 3_600,
            valid_until,
        }
        .sign(oracle);
        let admission = Admission::new(ticket, &key, &NodeId(*node), &STREAM, &BLOCK);
        vec![
            ("PSP-Admission".into(), hex::encode(admission.encode())),
            ("PSP-Challenge".into(), hex::encode(BLOCK)),
        ]
    }

    fn whep(headers: &[(String, String)]) -> SignallingRequest<'_> {
        SignallingRequest {
            route: Route::Whep,
            stream_id: "03",
            headers,
            body: b"v=0",
        }
    }

    fn refusal(metering: &mut Metering, headers: &[(String, String)]) -> Refusal {
        metering
            .admit(&whep(headers), &STREAM, 0, NOW)
            .expect_err("refused")
    }

    #[test]
    fn consumers_need_a_fresh_unreplayed_ticket_and_their_bytes_are_cut_at_the_epoch_boundary() {
        let node = Sr25519Keypair::from_seed(&[8; 32]);
        let oracle = Sr25519Keypair::from_seed(&[9; 32]);
        let mut metering = Metering::new(GENESIS, &node);
        // Epochs 4 and 5 started; nothing metered yet, so cutting 4 reports nothing.
        let chain = facts(oracle.public(), &[(4, 1_000), (5, 31_000)]);
        assert!(metering.on_chain(&chain).is_empty());

        let good = headers(&oracle, &node.public(), 1);
        metering
            .admit(&whep(&good), &STREAM, 0, NOW)
            .expect("admitted");
        metering.accepted(&whep(&good), PeerId(1));
        metering.sent(PeerId(1), 1_000, 40_000);
        metering.sent(PeerId(1), 400, 60_999);
        metering.sent(PeerId(1), 500, 61_500);

        // Refused: the same admission again, none, a forged ticket, an unknown oracle, a
        // stale challenge, an expired ticket, another node's admission.
        let replayed = refusal(&mut metering, &good);
        assert_eq!(replayed.status, 401);
        assert!(
            replayed.reason.contains("already admitted"),
            "{}",
            replayed.reason
        );
        assert!(refusal(&mut metering, &[])
            .reason
            .contains("no session ticket"));
        let mut forged = headers(&oracle, &node.public(), 2);
        let at = 2 * (1 + 177) - 2;
        let flipped = if &forged[0].1[at..at + 2] == "00" {
            "01"
        } else {
            "00"
        };
        forged[0].1.replace_range(at..at + 2, flipped);
        assert!(refusal(&mut metering, &forged)
            .reason
            .contains("signature does not verify"));
        let stranger = Sr25519Keypair::from_seed(&[10; 32]);
        assert!(
            refusal(&mut metering, &headers(&stranger, &node.public(), 3))
                .reason
                .contains("oracle")
        );
        let mut stale = headers(&oracle, &node.public(), 4);
        stale[1].1 = hex::encode([7u8; 32]);
        assert!(refusal(&mut metering, &stale).reason.contains("recent"));
        let expired = headers_until(&oracle, &node.public(), 6, NOW - 600);
        assert!(refusal(&mut metering, &expired).reason.contains("expired"));
        let elsewhere = headers(&oracle, &[5; 32], 5);
        assert_eq!(refusal(&mut metering, &elsewhere).status, 401);
        let mut garbage = good.clone();
        garbage[0].1 = "zz".into();
        assert_eq!(refusal(&mut metering, &garbage).status, 400);

        // Epoch 6 started at 61 000: epoch 5 is cut there, the rest waits for epoch 6's end.
        let chain = facts(oracle.public(), &[(4, 1_000), (5, 31_000), (6, 61_000)]);
        let cut = metering.on_chain(&chain);
        assert_eq!(cut.len(), 1);
        let (epoch, halves) = &cut[0];
        assert_eq!(*epoch, 5);
        assert_eq!(halves.len(), 1);
        assert_eq!(halves[0].report.usage.bytes, 1_400);
        assert!(halves[0].ticket.signature_valid());
        assert!(metering.on_chain(&chain).is_empty(), "an epoch is cut once");
        metering.gone(PeerId(1));
        let chain = facts(oracle.public(), &[(5, 31_000), (6, 61_000), (7, 91_000)]);
        let cut = metering.on_chain(&chain);
        assert_eq!(cut[0].0, 6);
        assert_eq!(cut[0].1[0].report.usage.bytes, 500);
    }
}

//! The oracle's `usage` service inside the relay (PSP overview §8.3, issue 14): session
//! tickets for solved puzzles and consumers' usage reports, both over circuit streams, served
//! by `psp-usage`'s [`UsageService`].
//!
//! The service is shared ([`SharedUsage`]) three ways: this hub feeds it the bytes of client
//! streams (BEGIN [`USAGE_SERVICE`]); the node task feeds it the relays' halves that arrive
//! on the oracle exchange ([`super::counts`]); the host feeds it finalized blocks and epochs
//! from the chain and takes its batches to submit on chain. Every call is short (a hash, a
//! signature or two), so one lock serves all three.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use psp_rendezvous::StreamHandle;
use psp_usage::service::{Action, UsageService, USAGE_SERVICE};

use crate::circuit::{ServiceAction, ServiceHub, StreamRef, Timestamp};
use crate::driver::messaging::ServiceObserver;
use crate::driver::unix_now;

/// The usage service, shared by the hub, the node task and the host.
#[derive(Clone)]
pub struct SharedUsage(Arc<Mutex<UsageService>>);

impl SharedUsage {
    /// Shares `service`.
    pub fn new(service: UsageService) -> Self {
        Self(Arc::new(Mutex::new(service)))
    }

    /// The service, locked.
    pub fn lock(&self) -> MutexGuard<'_, UsageService> {
        // A poisoned lock only means another holder panicked between two whole calls.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The relay's hub: `usage` beside the services of `inner`.
pub struct UsageHub {
    inner: Box<dyn ServiceHub>,
    usage: SharedUsage,
    streams: HashMap<StreamRef, StreamHandle>,
    handles: HashMap<StreamHandle, StreamRef>,
    next_handle: u64,
    actions: VecDeque<ServiceAction>,
    /// The relay time and unix time of the latest call, to translate deadlines.
    clock: (Timestamp, u64),
    observer: Option<ServiceObserver>,
}

impl UsageHub {
    /// A hub serving `inner` beside the usage service.
    pub fn new(
        inner: Box<dyn ServiceHub>,
        usage: SharedUsage,
        observer: Option<ServiceObserver>,
    ) -> Self {
        Self {
            inner,
            usage,
            streams: HashMap::new(),
            handles: HashMap::new(),
            next_handle: 0,
            actions: VecDeque::new(),
            clock: (Timestamp(0), 0),
            observer,
        }
    }

    fn tick(&mut self, now: Timestamp) -> u64 {
        let unix = unix_now();
        self.clock = (now, unix);
        unix
    }

    /// Turns the service's actions into the relay's.
    fn drain(&mut self) {
        let actions: Vec<Action> = {
            let mut usage = self.usage.lock();
            std::iter::from_fn(|| usage.poll_action()).collect()
        };
        for action in actions {
            match action {
                Action::Send { stream, bytes } => {
                    if let Some(&to) = self.handles.get(&stream) {
                        self.actions
                            .push_back(ServiceAction::Send { to, data: bytes });
                    }
                }
                Action::Close { stream } => {
                    if let Some(at) = self.handles.remove(&stream) {
                        self.streams.remove(&at);
                        self.actions.push_back(ServiceAction::End { stream: at });
                    }
                }
                other => tracing::debug!(action = ?other, "psp usage: action ignored"),
            }
        }
    }
}

impl ServiceHub for UsageHub {
    fn open(&mut self, now: Timestamp, service: &str, stream: StreamRef) -> bool {
        if service != USAGE_SERVICE {
            return self.inner.open(now, service, stream);
        }
        self.next_handle = self.next_handle.wrapping_add(1);
        let handle = StreamHandle(self.next_handle);
        self.streams.insert(stream, handle);
        self.handles.insert(handle, stream);
        true
    }

    fn on_data(&mut self, now: Timestamp, stream: StreamRef, data: &[u8]) {
        let Some(handle) = self.streams.get(&stream).copied() else {
            return self.inner.on_data(now, stream, data);
        };
        if let Some(observe) = &self.observer {
            observe(USAGE_SERVICE, data);
        }
        let unix = self.tick(now);
        let result = self.usage.lock().handle_data(unix, handle, data);
        match result {
            Ok(handled) => tracing::debug!(?handled, "psp usage: request handled"),
            Err(e) => tracing::info!(%e, "psp usage: refused"),
        }
        self.drain();
    }

    fn on_closed(&mut self, now: Timestamp, stream: StreamRef) {
        let Some(handle) = self.streams.remove(&stream) else {
            return self.inner.on_closed(now, stream);
        };
        self.handles.remove(&handle);
        self.tick(now);
        self.usage.lock().handle_stream_closed(handle);
        self.drain();
    }

    fn poll_action(&mut self) -> Option<ServiceAction> {
        self.actions
            .pop_front()
            .or_else(|| self.inner.poll_action())
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        let (at, at_unix) = self.clock;
        let ours = self.usage.lock().poll_timeout().map(|unix| {
            Timestamp(at.0.saturating_add(unix.saturating_sub(at_unix).saturating_mul(1_000)))
        });
        match (ours, self.inner.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timeout(&mut self, now: Timestamp) {
        let unix = self.tick(now);
        self.usage.lock().handle_timeout(unix);
        self.drain();
        self.inner.on_timeout(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::Services;
    use crate::crypto::{NodeId, Sr25519Keypair};
    use psp_usage::collect::{Collector, CollectorConfig};
    use psp_usage::puzzle::{self, Challenge, Solution};
    use psp_usage::service::ServiceConfig;
    use psp_usage::ticket::{IssuerConfig, TicketIssuer};
    use psp_usage::wire::{self, AnswerReader, UsageMsg, UsageRefusal};

    const GENESIS: [u8; 32] = [7; 32];
    const BLOCK: [u8; 32] = [9; 32];

    fn hub() -> (UsageHub, Sr25519Keypair) {
        let oracle = Sr25519Keypair::from_seed(&[1; 32]);
        let config = IssuerConfig {
            difficulty: 4,
            ..IssuerConfig::default()
        };
        let mut issuer = TicketIssuer::new(GENESIS, oracle.clone(), config).expect("issuer");
        issuer.note_finalized(BLOCK);
        let collector = Collector::new(GENESIS, CollectorConfig::default());
        let usage = SharedUsage::new(UsageService::new(
            issuer,
            collector,
            ServiceConfig::default(),
        ));
        let hub = UsageHub::new(Box::new(Services::default()), usage, None);
        (hub, oracle)
    }

    /// Everything the hub answered on `stream`, and whether it ended it.
    fn answers(hub: &mut UsageHub, stream: StreamRef) -> (Vec<UsageMsg>, bool) {
        let mut reader = AnswerReader::new();
        let (mut got, mut ended) = (Vec::new(), false);
        while let Some(action) = hub.poll_action() {
            match action {
                ServiceAction::Send { to, data } if to == stream => {
                    got.extend(reader.feed(&data).expect("an answer"));
                }
                ServiceAction::End { stream: s } if s == stream => ended = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        (got, ended)
    }

    fn stream_ref(circuit: u64, stream: u16) -> StreamRef {
        StreamRef {
            circuit,
            stream: crate::cell::StreamId(std::num::NonZeroU16::new(stream).expect("non-zero")),
        }
    }

    fn solution(oracle: &Sr25519Keypair, seed: u8) -> Solution {
        let key = Sr25519Keypair::from_seed(&[seed; 32]).public();
        let challenge = Challenge {
            genesis: GENESIS,
            block: BLOCK,
            oracle: NodeId(oracle.public()),
            session_key: key,
        };
        let nonce = puzzle::solve(&challenge, 4, 0, u64::MAX)
            .expect("difficulty in range")
            .expect("a nonce");
        Solution {
            block: BLOCK,
            session_key: key,
            nonce,
        }
    }

    #[test]
    fn a_solved_puzzle_over_a_circuit_stream_buys_a_ticket_and_the_stream_ends() {
        let (mut hub, oracle) = hub();
        let stream = stream_ref(1, 1);
        assert!(hub.open(Timestamp(0), USAGE_SERVICE, stream));
        let request = wire::request_ticket(&solution(&oracle, 3));
        // Split in two: the service waits for the whole frame.
        hub.on_data(Timestamp(0), stream, &request[..10]);
        assert_eq!(answers(&mut hub, stream), (Vec::new(), false));
        hub.on_data(Timestamp(0), stream, &request[10..]);
        let (got, ended) = answers(&mut hub, stream);
        assert!(ended, "one request per stream");
        match &got[..] {
            [UsageMsg::Ticket(ticket)] => {
                assert!(ticket.signature_valid());
                assert_eq!(ticket.ticket.oracle, NodeId(oracle.public()));
            }
            other => panic!("expected a ticket, got {other:?}"),
        }

        // A wrong nonce on another stream: refused, ended; other services still reach the
        // inner hub.
        let other = stream_ref(1, 2);
        assert!(hub.open(Timestamp(0), USAGE_SERVICE, other));
        let mut wrong = solution(&oracle, 4);
        wrong.nonce = wrong.nonce.wrapping_add(1);
        while puzzle::verify(
            &Challenge {
                genesis: GENESIS,
                block: BLOCK,
                oracle: NodeId(oracle.public()),
                session_key: wrong.session_key,
            },
            4,
            wrong.nonce,
        )
        .is_ok()
        {
            wrong.nonce = wrong.nonce.wrapping_add(1);
        }
        hub.on_data(Timestamp(0), other, &wire::request_ticket(&wrong));
        assert_eq!(
            answers(&mut hub, other),
            (vec![UsageMsg::Refused(UsageRefusal::WrongSolution)], true)
        );
        let echo = stream_ref(2, 1);
        assert!(hub.open(Timestamp(0), "echo", echo));
        assert!(!hub.open(Timestamp(0), "no-such-service", echo));
    }
}

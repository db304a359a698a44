//! The libp2p side of a link: a `NetworkBehaviour` whose only job is to hand the driver the
//! `/psp/cells/1` substream of each connection, [`DialGate`] (outbound connections only to
//! registered nodes), and [`Overlay`], the swarm's whole behaviour (gate and cells plus, on
//! nodes, the DHT and the directory protocol).
//!
//! libp2p 0.54.1 has no `libp2p-stream`, so this is the smallest behaviour that does it: the
//! dialer of a connection opens one outbound substream; the listener accepts one inbound
//! substream per connection (more are dropped). Until its substream is handed over, a
//! connection is kept alive for at most `setup_timeout`; after that the substream itself keeps
//! it alive, and dropping the substream lets it close.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::core::Endpoint;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, Stream};

use super::PROTOCOL;

/// Events waiting for the driver; the swarm drains them on every poll, so this only
/// overflows if the driver stops polling (then new substreams are dropped).
const MAX_EVENTS: usize = 1_024;

/// What the behaviour reports to the driver task.
#[derive(Debug)]
pub(crate) enum Event {
    /// A cell substream is open on a connection to `peer`.
    Stream {
        /// The remote peer (authenticated by Noise).
        peer: PeerId,
        /// The substream.
        stream: Stream,
    },
    /// The peer does not speak `/psp/cells/1` (or opening the substream failed).
    Failed {
        /// The remote peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
}

/// The cell-substream behaviour.
pub(crate) struct Behaviour {
    setup_timeout: Duration,
    events: VecDeque<Event>,
    waker: Option<Waker>,
}

impl Behaviour {
    pub(crate) fn new(setup_timeout: Duration) -> Self {
        Self {
            setup_timeout,
            events: VecDeque::new(),
            waker: None,
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(false, self.setup_timeout))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(true, self.setup_timeout))
    }

    fn on_swarm_event(&mut self, _event: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        if self.events.len() >= MAX_EVENTS {
            tracing::warn!(%peer, "psp link: behaviour event queue full, dropping a substream");
            return;
        }
        self.events.push_back(match event {
            HandlerOut::Stream(stream) => Event::Stream { peer, stream },
            HandlerOut::Failed(reason) => Event::Failed { peer, reason },
        });
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        match self.events.pop_front() {
            Some(e) => Poll::Ready(ToSwarm::GenerateEvent(e)),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// What a connection handler reports.
#[derive(Debug)]
pub(crate) enum HandlerOut {
    Stream(Stream),
    Failed(String),
}

/// One connection's handler: opens (dialer) or accepts (listener) the cell substream.
pub(crate) struct Handler {
    /// Dialer side, and the substream not yet requested.
    open_outbound: bool,
    /// A substream has been handed over (or the one allowed inbound was taken).
    handed_over: bool,
    /// Keep-alive for the set-up phase ends here.
    setup_deadline: Pin<Box<tokio::time::Sleep>>,
    setup_expired: bool,
    out: VecDeque<HandlerOut>,
}

impl Handler {
    fn new(dialer: bool, setup_timeout: Duration) -> Self {
        Self {
            open_outbound: dialer,
            handed_over: false,
            setup_deadline: Box::pin(tokio::time::sleep(setup_timeout)),
            setup_expired: false,
            out: VecDeque::new(),
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = HandlerOut;
    type InboundProtocol = ReadyUpgrade<libp2p::StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<libp2p::StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, ()> {
        SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ())
    }

    fn connection_keep_alive(&self) -> bool {
        // Once handed over, the open substream keeps the connection alive by itself.
        !self.handed_over && !self.setup_expired
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        if let Some(e) = self.out.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(e));
        }
        if self.open_outbound {
            self.open_outbound = false;
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ()),
            });
        }
        if !self.handed_over
            && !self.setup_expired
            && self.setup_deadline.as_mut().poll(cx).is_ready()
        {
            self.setup_expired = true;
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), ()>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => {
                if self.handed_over {
                    tracing::debug!("psp link: extra inbound cell substream dropped");
                    return;
                }
                self.handed_over = true;
                self.out.push_back(HandlerOut::Stream(stream));
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                ..
            }) => {
                self.handed_over = true;
                self.out.push_back(HandlerOut::Stream(stream));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                self.setup_expired = true;
                self.out
                    .push_back(HandlerOut::Failed(format!("cell substream: {error}")));
            }
            _ => {}
        }
    }
}

/// Why [`DialGate`] refused a connection.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not a registered node")]
pub(crate) struct Unregistered(pub(crate) PeerId);

/// Outbound connections only to registered nodes.
///
/// A node's host feeds it the chain's live registered nodes
/// ([`super::NodeHandle::dht_set_peers`]); from then on every outbound connection of the
/// overlay swarm must go to one of them: a dial to any other peer id is denied before it
/// starts (`handle_pending_outbound_connection`), and an outbound connection whose
/// authenticated peer is not registered (a dial without a peer id) is closed once
/// established. That stops Kademlia from following a referral (a FIND_NODE or GET_VALUE
/// answer) to an unregistered peer; nothing legitimate dials anything else (the relay's
/// EXTEND targets and the discovery nodes are registered nodes). Inbound connections are
/// never refused here: clients have no chain identity.
///
/// Until the first set is fed, everything is allowed: clients (never fed) and nodes run
/// without a chain (static directories, as in the in-process driver tests).
#[derive(Default)]
pub(crate) struct DialGate {
    /// The registered set last fed; `None` until the first feed.
    registered: Option<HashSet<PeerId>>,
    /// Outbound connections refused.
    denied: u64,
}

impl DialGate {
    /// Replaces the registered set (the whole set, not a delta).
    pub(crate) fn set_registered(&mut self, peers: HashSet<PeerId>) {
        self.registered = Some(peers);
    }

    /// Outbound connections refused so far.
    pub(crate) fn denied(&self) -> u64 {
        self.denied
    }

    fn check(&mut self, peer: PeerId) -> Result<(), ConnectionDenied> {
        match &self.registered {
            Some(set) if !set.contains(&peer) => {
                self.denied = self.denied.saturating_add(1);
                tracing::debug!(%peer, "psp dht: referral to unregistered peer ignored");
                Err(ConnectionDenied::new(Unregistered(peer)))
            }
            _ => Ok(()),
        }
    }
}

impl NetworkBehaviour for DialGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        _addresses: &[Multiaddr],
        _effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        // Without a peer id there is nothing to check yet: the established connection is.
        if let Some(peer) = maybe_peer {
            self.check(peer)?;
        }
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _event: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// Everything the overlay's swarm runs: the dial gate, the cell substreams and, on nodes, the
/// DHT (Kademlia with the chain-checked store), the directory protocol and the oracles'
/// receipt counts (all off for clients). The gate comes first, so a denied dial reaches no other behaviour's
/// `handle_pending_outbound_connection`.
#[derive(libp2p::swarm::NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(crate) struct Overlay {
    pub(crate) gate: DialGate,
    pub(crate) cells: Behaviour,
    pub(crate) dht:
        libp2p::swarm::behaviour::toggle::Toggle<libp2p::kad::Behaviour<super::dht::DhtStore>>,
    pub(crate) directory: libp2p::swarm::behaviour::toggle::Toggle<super::directory::DirBehaviour>,
    pub(crate) counts: libp2p::swarm::behaviour::toggle::Toggle<super::counts::CountsBehaviour>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    fn dial(gate: &mut DialGate, peer: Option<PeerId>) -> bool {
        gate.handle_pending_outbound_connection(
            ConnectionId::new_unchecked(1),
            peer,
            &[],
            Endpoint::Dialer,
        )
        .is_ok()
    }

    fn established_out(gate: &mut DialGate, peer: PeerId) -> bool {
        gate.handle_established_outbound_connection(
            ConnectionId::new_unchecked(2),
            peer,
            &Multiaddr::empty(),
            Endpoint::Dialer,
            PortUse::Reuse,
        )
        .is_ok()
    }

    #[test]
    fn the_gate_allows_everything_until_the_first_feed() {
        let mut gate = DialGate::default();
        let anyone = random_peer();
        assert!(dial(&mut gate, Some(anyone)));
        assert!(dial(&mut gate, None));
        assert!(established_out(&mut gate, anyone));
        assert_eq!(gate.denied(), 0);
    }

    #[test]
    fn the_gate_allows_outbound_only_to_the_registered_set_and_all_inbound() {
        let mut gate = DialGate::default();
        let (registered, stranger) = (random_peer(), random_peer());
        gate.set_registered([registered].into_iter().collect());
        assert!(dial(&mut gate, Some(registered)));
        assert!(established_out(&mut gate, registered));

        assert!(!dial(&mut gate, Some(stranger)));
        let err = gate
            .handle_pending_outbound_connection(
                ConnectionId::new_unchecked(3),
                Some(stranger),
                &[],
                Endpoint::Dialer,
            )
            .unwrap_err();
        let cause = err
            .downcast::<Unregistered>()
            .expect("an Unregistered cause");
        assert_eq!(cause.0, stranger);
        // A dial without a peer id is checked once the peer is authenticated.
        assert!(dial(&mut gate, None));
        assert!(!established_out(&mut gate, stranger));
        assert_eq!(gate.denied(), 3);

        // Inbound: clients have no chain identity.
        assert!(gate
            .handle_established_inbound_connection(
                ConnectionId::new_unchecked(4),
                stranger,
                &Multiaddr::empty(),
                &Multiaddr::empty(),
            )
            .is_ok());

        // A new feed replaces the set.
        gate.set_registered([stranger].into_iter().collect());
        assert!(dial(&mut gate, Some(stranger)));
        assert!(!dial(&mut gate, Some(registered)));
    }
}

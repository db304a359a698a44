//! The server's protocol core, sans IO: many str0m [`Rtc`]s behind one UDP socket.
//!
//! No tokio and no clock: the driver ([`crate::server`]) feeds datagrams and the time in, and
//! takes datagrams to send, the next deadline and events out, like quinn-proto. Every
//! per-peer limit (queue, stall, connect deadline) is enforced here, so it is the same code
//! whatever drives it.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::config::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::{Error, Result};

/// str0m buffers at most this many bytes per peer connection, across its channels
/// (`MAX_BUFFERED_ACROSS_STREAMS` in str0m 0.23's `sctp` module); a larger message can never be
/// written, so [`ServerConfig::max_message_bytes`] may not exceed it.
pub const SCTP_SEND_BUFFER: usize = 128 * 1024;

/// Bytes the server lets str0m buffer per peer before it waits (see `Peer::flush`).
const WRITE_WINDOW: usize = 64 * 1024;

/// What one server instance allows. Every field bounds memory or time a peer can take.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Local UDP address to bind, e.g. `127.0.0.1:0`; every peer is served on this one port.
    pub bind: SocketAddr,
    /// Address announced as the host candidate. `None` announces the bound address, which
    /// then must be a concrete one (not `0.0.0.0`).
    pub advertised_addr: Option<SocketAddr>,
    /// Peers served at once; offers beyond it are refused with [`Error::TooManyPeers`].
    pub max_peers: usize,
    /// Largest message [`crate::WebRtcServer::send`] accepts. 64 KiB is what every WebRTC
    /// stack accepts without negotiation (a peer that sends no `a=max-message-size` is assumed
    /// to take 64 KiB); at most [`SCTP_SEND_BUFFER`].
    pub max_message_bytes: usize,
    /// Largest SDP offer accepted. A browser's data-channel-only offer is 1–2 KiB.
    pub max_offer_bytes: usize,
    /// Messages waiting for one peer's channel before the peer is dropped as too slow.
    pub peer_queue_messages: usize,
    /// Bytes waiting for one peer's channel before the peer is dropped as too slow.
    pub peer_queue_bytes: usize,
    /// A peer whose channel accepts nothing for this long while messages wait is dropped.
    pub stall_timeout: Duration,
    /// A peer whose data channel is not open this long after its offer is dropped.
    pub connect_timeout: Duration,
    /// Capacity of the event channel ([`crate::WebRtcServer::events`]).
    pub event_capacity: usize,
    /// Capacity of the command channel from the handles to the server task.
    pub command_capacity: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertised_addr: None,
            max_peers: 256,
            max_message_bytes: 64 * 1024,
            max_offer_bytes: 16 * 1024,
            peer_queue_messages: 256,
            peer_queue_bytes: 4 * 1024 * 1024,
            stall_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(15),
            event_capacity: 1024,
            command_capacity: 1024,
        }
    }
}

impl ServerConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_owned()));
        if self.max_message_bytes == 0 || self.max_message_bytes > SCTP_SEND_BUFFER {
            return bad("max_message_bytes must be 1..=131072 (str0m's SCTP send buffer)");
        }
        if self.max_peers == 0 || self.max_offer_bytes == 0 {
            return bad("max_peers and max_offer_bytes must be positive");
        }
        if self.peer_queue_messages == 0 || self.peer_queue_bytes < self.max_message_bytes {
            return bad("the peer queue must hold at least one message of max_message_bytes");
        }
        if self.event_capacity == 0 || self.command_capacity == 0 {
            return bad("event_capacity and command_capacity must be positive");
        }
        Ok(())
    }
}

/// A peer connection served by one [`crate::WebRtcServer`]; never reused within a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer-{}", self.0)
    }
}

/// The caller's tag for a peer, handed back in [`ServerEvent::PeerConnected`]; the signalling
/// endpoint uses the stream id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerLabel(pub String);

/// Why a peer was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GoneReason {
    /// More than the peer queue's bound waited for its channel: it reads slower than the stream.
    QueueFull,
    /// Its channel accepted nothing for [`ServerConfig::stall_timeout`] while messages waited.
    Stalled,
    /// No data channel opened within [`ServerConfig::connect_timeout`] of the offer.
    ConnectTimeout,
    /// ICE consent was lost: no STUN binding request from the peer for 15 s.
    Disconnected,
    /// The peer closed the connection (DTLS close, SCTP shutdown) or its data channel.
    Closed,
    /// str0m reported a protocol error for this peer.
    Protocol(String),
    /// The caller asked for it ([`crate::WebRtcServer::disconnect`]) or the server stopped.
    Kicked,
    /// str0m panicked on this peer's input; the peer was dropped to keep the others served.
    Internal,
}

/// What the server tells its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// ICE and DTLS are up with this peer.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// The label given with its offer.
        label: PeerLabel,
    },
    /// The peer opened a data channel; the first one opened carries [`crate::WebRtcServer::send`].
    ChannelOpen {
        /// The peer.
        peer: PeerId,
        /// The channel label the offerer chose (the watch page uses `media`).
        label: String,
    },
    /// A message the peer sent (ingest: a producer publishing over WebRTC).
    Data {
        /// The peer.
        peer: PeerId,
        /// The message, byte-exact.
        bytes: Vec<u8>,
    },
    /// The peer is no longer served; its id will not come back.
    PeerGone {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: GoneReason,
    },
}

struct Peer {
    id: PeerId,
    label: PeerLabel,
    rtc: Rtc,
    channel: Option<ChannelId>,
    queue: VecDeque<Arc<[u8]>>,
    queued_bytes: usize,
    /// Since when the channel has refused a write while messages wait.
    blocked_since: Option<Instant>,
    created: Instant,
    next_timeout: Instant,
}

/// The server's state: peers, and output not yet taken by the driver.
pub(crate) struct Core {
    config: ServerConfig,
    candidate_addr: SocketAddr,
    provider: Arc<CryptoProvider>,
    cert: DtlsCert,
    peers: Vec<Peer>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ServerEvent>,
}

impl Core {
    /// `candidate_addr` is the address announced to peers and matched against the destination
    /// of received datagrams.
    pub(crate) fn new(config: ServerConfig, candidate_addr: SocketAddr) -> Result<Core> {
        config.validate()?;
        Candidate::host(candidate_addr, "udp").map_err(|_| Error::BadCandidate(candidate_addr))?;
        let provider = Arc::new(str0m::crypto::from_feature_flags());
        // One certificate for all peers: str0m would otherwise generate one per offer (and
        // panic if that failed); a node's fingerprint says nothing a peer does not already know.
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or(Error::Certificate)?;
        Ok(Core {
            config,
            candidate_addr,
            provider,
            cert,
            peers: Vec::new(),
            next_id: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    #[cfg(test)]
    pub(crate) fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Creates a peer for `offer` and returns its id and the SDP answer.
    pub(crate) fn accept_offer(
        &mut self,
        now: Instant,
        offer: &str,
        label: PeerLabel,
    ) -> Result<(PeerId, String)> {
        let max = self.config.max_offer_bytes;
        if offer.len() > max {
            return Err(Error::OfferTooLarge {
                len: offer.len(),
                max,
            });
        }
        if self.peers.len() >= self.config.max_peers {
            return Err(Error::TooManyPeers {
                max: self.config.max_peers,
            });
        }
        if !offer.lines().any(|l| l.starts_with("m=application ")) {
            return Err(Error::NoDataChannel);
        }
        let offer = sanitize_offer(offer);
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_crypto_provider(self.provider.clone())
            .set_dtls_cert(self.cert.clone())
            .build(now);
        let candidate = Candidate::host(self.candidate_addr, "udp")
            .map_err(|_| Error::BadCandidate(self.candidate_addr))?;
        rtc.add_local_candidate(candidate);
        // str0m parses hostile input here; a panic in it must cost this offer, not the server.
        let answer = catch_unwind(AssertUnwindSafe(|| {
            let offer = SdpOffer::from_sdp_string(&offer)
                .map_err(|e| Error::MalformedOffer(e.to_string()))?;
            rtc.sdp_api()
                .accept_offer(offer)
                .map_err(|e| Error::MalformedOffer(e.to_string()))
        }))
        .unwrap_or_else(|_| Err(Error::MalformedOffer("str0m panicked on it".into())))?;

        let id = PeerId(self.next_id);
        self.next_id += 1;
        self.peers.push(Peer {
            id,
            label,
            rtc,
            channel: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            blocked_since: None,
            created: now,
            next_timeout: now,
        });
        let index = self.peers.len() - 1;
        self.step(index, now, Input::Timeout(now));
        Ok((id, answer.to_sdp_string()))
    }

    /// Queues `bytes` for `peer`. An unknown peer (already gone) is ignored: its
    /// [`ServerEvent::PeerGone`] has been or will be reported.
    pub(crate) fn send(&mut self, now: Instant, peer: PeerId, bytes: Arc<[u8]>) -> Result<()> {
        let max = self.config.max_message_bytes;
        if bytes.len() > max {
            return Err(Error::MessageTooLarge {
                len: bytes.len(),
                max,
            });
        }
        let Some(index) = self.index(peer) else {
            return Ok(());
        };
        let p = &mut self.peers[index];
        if p.queue.len() >= self.config.peer_queue_messages
            || p.queued_bytes + bytes.len() > self.config.peer_queue_bytes
        {
            self.remove(index, GoneReason::QueueFull);
            return Ok(());
        }
        p.queued_bytes += bytes.len();
        p.queue.push_back(bytes);
        self.step(index, now, Input::Timeout(now));
        Ok(())
    }

    /// Drops `peer`, telling it with a DTLS close.
    pub(crate) fn disconnect(&mut self, peer: PeerId) {
        if let Some(index) = self.index(peer) {
            self.remove(index, GoneReason::Kicked);
        }
    }

    /// Drops every peer (the server is stopping).
    pub(crate) fn disconnect_all(&mut self) {
        while !self.peers.is_empty() {
            self.remove(self.peers.len() - 1, GoneReason::Kicked);
        }
    }

    /// Hands a datagram received on the shared socket to the peer it belongs to.
    pub(crate) fn handle_datagram(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.candidate_addr, bytes) else {
            tracing::trace!(%source, "ignoring a datagram that is not STUN, DTLS, RTP or RTCP");
            return;
        };
        let input = Input::Receive(now, receive);
        match self.peers.iter().position(|p| p.rtc.accepts(&input)) {
            Some(index) => self.step(index, now, input),
            None => tracing::trace!(%source, "no peer accepts this datagram"),
        }
    }

    /// Runs every peer whose deadline has passed.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let mut index = 0;
        while index < self.peers.len() {
            let p = &self.peers[index];
            let id = p.id;
            if p.channel.is_none() && now >= p.created + self.config.connect_timeout {
                self.remove(index, GoneReason::ConnectTimeout);
                continue;
            }
            if p.blocked_since
                .is_some_and(|t| now >= t + self.config.stall_timeout)
            {
                self.remove(index, GoneReason::Stalled);
                continue;
            }
            if now >= p.next_timeout {
                self.step(index, now, Input::Timeout(now));
            }
            // `step` removes a failed peer, shifting the rest down by one.
            if self.peers.get(index).is_some_and(|p| p.id == id) {
                index += 1;
            }
        }
    }

    /// The next time [`Core::handle_timeout`] has work, if any peer exists.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .iter()
            .flat_map(|p| {
                let connect = p
                    .channel
                    .is_none()
                    .then(|| p.created + self.config.connect_timeout);
                let stall = p.blocked_since.map(|t| t + self.config.stall_timeout);
                [Some(p.next_timeout), connect, stall]
            })
            .flatten()
            .min()
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    #[cfg(test)]
    pub(crate) fn peer_count(&self) -> usize {
        self.peers.len()
    }

    fn index(&self, peer: PeerId) -> Option<usize> {
        self.peers.iter().position(|p| p.id == peer)
    }

    /// Feeds `input` to one peer and drains its output; removes it if that fails.
    fn step(&mut self, index: usize, now: Instant, input: Input) {
        let peer = &mut self.peers[index];
        let (transmits, events) = (&mut self.transmits, &mut self.events);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            peer.rtc
                .handle_input(input)
                .map_err(|e| GoneReason::Protocol(e.to_string()))?;
            peer.drain(now, transmits, events)
        }));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => self.remove(index, reason),
            Err(_) => {
                tracing::error!(peer = %self.peers[index].id, "str0m panicked; dropping the peer");
                self.remove(index, GoneReason::Internal)
            }
        }
    }

    fn remove(&mut self, index: usize, reason: GoneReason) {
        let mut peer = self.peers.remove(index);
        tracing::debug!(peer = %peer.id, ?reason, "peer gone");
        if peer.rtc.is_alive() {
            // Say goodbye (DTLS close_notify) so the peer learns at once; bounded, ignoring
            // events, and nothing str0m does here may take the server down.
            let transmits = &mut self.transmits;
            let _ = catch_unwind(AssertUnwindSafe(|| {
                if peer.rtc.close().is_err() {
                    return;
                }
                for _ in 0..32 {
                    match peer.rtc.poll_output() {
                        Ok(Output::Transmit(t)) => transmits.push_back(t),
                        Ok(Output::Event(_)) => {}
                        Ok(Output::Timeout(_)) | Err(_) => break,
                    }
                }
            }));
        }
        self.events.push_back(ServerEvent::PeerGone {
            peer: peer.id,
            reason,
        });
    }
}

impl Peer {
    /// Writes what the channel takes and polls str0m until it asks for a timeout.
    fn drain(
        &mut self,
        now: Instant,
        transmits: &mut VecDeque<Transmit>,
        events: &mut VecDeque<ServerEvent>,
    ) -> Result<(), GoneReason> {
        loop {
            let wrote = self.flush(now)?;
            loop {
                match self
                    .rtc
                    .poll_output()
                    .map_err(|e| GoneReason::Protocol(e.to_string()))?
                {
                    Output::Transmit(t) => transmits.push_back(t),
                    Output::Timeout(t) => {
                        self.next_timeout = t;
                        break;
                    }
                    Output::Event(e) => self.on_event(e, events)?,
                }
            }
            if !self.rtc.is_alive() {
                return Err(GoneReason::Closed);
            }
            if !wrote {
                return Ok(());
            }
        }
    }

    /// Writes queued messages until the queue is empty or str0m's buffer is full.
    fn flush(&mut self, now: Instant) -> Result<bool, GoneReason> {
        let Some(id) = self.channel else {
            return Ok(false);
        };
        let mut wrote = false;
        while let Some(message) = self.queue.front() {
            let Some(mut channel) = self.rtc.channel(id) else {
                return Err(GoneReason::Closed);
            };
            // Keep str0m's buffer at most WRITE_WINDOW full (one message always fits): its
            // poll_output recurses once per SCTP packet of a batch, and a full 128 KiB buffer
            // makes batches deep enough to overflow a 2 MiB stack in a debug build.
            let buffered = channel.buffered_amount();
            let accepted = (buffered == 0 || buffered + message.len() <= WRITE_WINDOW)
                && channel
                    .write(true, message)
                    .map_err(|e| GoneReason::Protocol(e.to_string()))?;
            if !accepted {
                self.blocked_since.get_or_insert(now);
                return Ok(wrote);
            }
            self.queued_bytes -= message.len();
            self.queue.pop_front();
            self.blocked_since = None;
            wrote = true;
        }
        Ok(wrote)
    }

    fn on_event(
        &mut self,
        event: Event,
        events: &mut VecDeque<ServerEvent>,
    ) -> Result<(), GoneReason> {
        let peer = self.id;
        match event {
            Event::Connected => events.push_back(ServerEvent::PeerConnected {
                peer,
                label: self.label.clone(),
            }),
            Event::ChannelOpen(id, label) => {
                self.channel.get_or_insert(id);
                events.push_back(ServerEvent::ChannelOpen { peer, label });
            }
            Event::ChannelData(data) => events.push_back(ServerEvent::Data {
                peer,
                bytes: data.data,
            }),
            Event::ChannelClose(id) if Some(id) == self.channel => return Err(GoneReason::Closed),
            Event::Closed => return Err(GoneReason::Closed),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err(GoneReason::Disconnected)
            }
            _ => {}
        }
        Ok(())
    }
}

/// Drops `a=candidate` lines whose address is not an IP address. Browsers hide their local
/// addresses behind mDNS names (`<uuid>.local`), which str0m does not parse; an ice-lite server
/// needs no remote candidates anyway, it learns the peer's address from its STUN requests.
fn sanitize_offer(offer: &str) -> String {
    let mut out = String::with_capacity(offer.len());
    for line in offer.split_inclusive('\n') {
        let keep = match line.trim_end().strip_prefix("a=candidate:") {
            // foundation component transport priority address port typ kind ...
            Some(rest) => rest
                .split(' ')
                .nth(4)
                .is_some_and(|a| a.parse::<std::net::IpAddr>().is_ok()),
            None => true,
        };
        if keep {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> Core {
        Core::new(ServerConfig::default(), "127.0.0.1:4000".parse().unwrap()).unwrap()
    }

    /// A data-channel offer as a str0m offerer writes it.
    fn offer() -> String {
        let mut rtc = Rtc::new(Instant::now());
        rtc.add_local_candidate(Candidate::host("127.0.0.1:5000".parse().unwrap(), "udp").unwrap());
        let mut api = rtc.sdp_api();
        api.add_channel("media".into());
        api.apply().unwrap().0.to_sdp_string()
    }

    #[test]
    fn mdns_candidates_are_dropped() {
        let sdp = "a=candidate:1 1 udp 2122260223 4a2b.local 5000 typ host\r\n\
                   a=candidate:2 1 udp 2122260223 10.0.0.1 5000 typ host\r\n\
                   a=mid:0\r\n";
        let out = sanitize_offer(sdp);
        assert!(!out.contains(".local"));
        assert!(out.contains("10.0.0.1") && out.contains("a=mid:0"));
    }

    #[test]
    fn offers_are_checked() {
        let mut c = core();
        let now = Instant::now();
        let label = || PeerLabel("s".into());
        assert!(matches!(
            c.accept_offer(now, "garbage", label()),
            Err(Error::NoDataChannel)
        ));
        assert!(matches!(
            c.accept_offer(now, "v=0\r\nm=application 9 nonsense\r\n", label()),
            Err(Error::MalformedOffer(_))
        ));
        let big = "x".repeat(c.config().max_offer_bytes + 1);
        assert!(matches!(
            c.accept_offer(now, &big, label()),
            Err(Error::OfferTooLarge { .. })
        ));
        let (_, answer) = c.accept_offer(now, &offer(), label()).unwrap();
        assert!(answer.contains("a=ice-lite") && answer.contains("127.0.0.1 4000"));
        assert_eq!(c.peer_count(), 1);
    }

    #[test]
    fn full_server_refuses() {
        let config = ServerConfig {
            max_peers: 1,
            ..ServerConfig::default()
        };
        let mut c = Core::new(config, "127.0.0.1:4000".parse().unwrap()).unwrap();
        let now = Instant::now();
        c.accept_offer(now, &offer(), PeerLabel("a".into()))
            .unwrap();
        assert!(matches!(
            c.accept_offer(now, &offer(), PeerLabel("b".into())),
            Err(Error::TooManyPeers { max: 1 })
        ));
    }

    /// Time jumps, no network: a peer that never connects is dropped at the connect deadline,
    /// and a send to a peer whose queue is full drops it.
    #[test]
    fn deadlines_and_queue_bounds() {
        let config = ServerConfig {
            peer_queue_messages: 2,
            ..ServerConfig::default()
        };
        let connect = config.connect_timeout;
        let mut c = Core::new(config, "127.0.0.1:4000".parse().unwrap()).unwrap();
        let t0 = Instant::now();
        let (a, _) = c.accept_offer(t0, &offer(), PeerLabel("a".into())).unwrap();
        let (b, _) = c.accept_offer(t0, &offer(), PeerLabel("b".into())).unwrap();
        assert!(c.poll_timeout().unwrap() <= t0 + connect);

        for _ in 0..2 {
            c.send(t0, b, Arc::from(&b"x"[..])).unwrap();
        }
        c.send(t0, b, Arc::from(&b"x"[..])).unwrap();
        let too_big = vec![0; c.config().max_message_bytes + 1];
        assert!(matches!(
            c.send(t0, a, too_big.into()),
            Err(Error::MessageTooLarge { .. })
        ));
        c.handle_timeout(t0 + connect);
        let gone: Vec<_> = std::iter::from_fn(|| c.poll_event())
            .filter_map(|e| match e {
                ServerEvent::PeerGone { peer, reason } => Some((peer, reason)),
                _ => None,
            })
            .collect();
        assert_eq!(
            gone,
            vec![(b, GoneReason::QueueFull), (a, GoneReason::ConnectTimeout)]
        );
        assert_eq!(c.peer_count(), 0);
        assert_eq!(c.poll_timeout(), None);
    }
}

//! The Kademlia routing table, with S/Kademlia's defences bound to the chain.
//!
//! A node's place in the key space is its [`DhtId`]: `blake2_256` of its node identity key. Nobody
//! picks where they sit, and every id costs a registered, staked node identity (stake replaces
//! S/Kademlia's crypto puzzles), so [`RoutingTable::insert`] only takes peers the registry
//! lists as live nodes.
//!
//! Buckets are indexed by the highest bit of the XOR distance to the local id and hold at most
//! k = [`K`] peers. A full bucket refuses newcomers and keeps the peers it has: Kademlia prefers
//! long-lived nodes, and an attacker cannot flush honest peers out by flooding new ones. The
//! caller evicts a peer that stops answering ([`RoutingTable::remove`]).
//!
//! **Diversity limits** make one operator with one address block fill few slots: at most
//! [`RoutingConfig::max_per_ip`] peers per IP address in the whole table, and at most
//! [`RoutingConfig::max_per_subnet_in_bucket`] per /24 (IPv4) or /48 (IPv6) prefix in one bucket.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::crypto::blake2_256;
use crate::registry::{IdentityKind, IdentityRegistry, IdentityStatus};

/// Kademlia's bucket size and replication factor: 20.
pub const K: usize = 20;
/// Bits of a [`DhtId`], and so the number of buckets: 256.
pub const ID_BITS: usize = 256;

/// A point of the key space: a node's id (`blake2_256` of its identity key) or a record key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DhtId(pub [u8; 32]);

impl DhtId {
    /// The DHT id of a node identity key.
    pub fn of_node(identity: &[u8; 32]) -> Self {
        Self(blake2_256(identity))
    }

    /// The XOR distance to `other`.
    pub fn distance(&self, other: &DhtId) -> Distance {
        let mut d = [0u8; 32];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }
}

impl core::fmt::Debug for DhtId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DhtId({}..)", hex4(&self.0))
    }
}

/// An XOR distance, ordered as a 256-bit big-endian integer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 32]);

impl Distance {
    /// The index of the highest set bit (0..=255), or `None` for distance zero.
    pub fn bucket(&self) -> Option<usize> {
        let byte = self.0.iter().position(|b| *b != 0)?;
        let bit = 7 - self.0[byte].leading_zeros() as usize;
        Some((31 - byte) * 8 + bit)
    }
}

fn hex4(bytes: &[u8; 32]) -> String {
    bytes[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// A peer as the DHT knows it: its node identity key, its DHT id and its address.
///
/// The id is always computed from the identity, never taken from the wire, so a peer cannot
/// claim a place in the key space.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    identity: [u8; 32],
    id: DhtId,
    addr: IpAddr,
}

impl PeerInfo {
    /// A peer with node identity key `identity` at `addr`.
    pub fn new(identity: [u8; 32], addr: IpAddr) -> Self {
        Self {
            identity,
            id: DhtId::of_node(&identity),
            addr,
        }
    }

    /// The node identity key (sr25519, registered on chain).
    pub fn identity(&self) -> &[u8; 32] {
        &self.identity
    }

    /// The DHT id: `blake2_256(identity)`.
    pub fn id(&self) -> &DhtId {
        &self.id
    }

    /// The IP address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
}

impl core::fmt::Debug for PeerInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PeerInfo(0x{}.. at {})", hex4(&self.identity), self.addr)
    }
}

/// The address block the per-bucket limit counts: the /24 of an IPv4 address, the /48 of an
/// IPv6 one (an IPv4-mapped IPv6 address counts as IPv4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Subnet {
    /// The first three octets.
    V4([u8; 3]),
    /// The first six octets.
    V6([u8; 6]),
}

impl Subnet {
    /// The subnet of `addr`.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => Self::v4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::v4(v4.octets()),
                None => {
                    let o = v6.octets();
                    Self::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
                }
            },
        }
    }

    fn v4(o: [u8; 4]) -> Self {
        Self::V4([o[0], o[1], o[2]])
    }
}

/// Bounds of a routing table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutingConfig {
    /// Peers per bucket (k).
    pub k: usize,
    /// Peers per IP address in the whole table.
    pub max_per_ip: usize,
    /// Peers per /24 (IPv4) or /48 (IPv6) in one bucket.
    pub max_per_subnet_in_bucket: usize,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            k: K,
            max_per_ip: 1,
            max_per_subnet_in_bucket: 2,
        }
    }
}

/// Why a peer was not taken into the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// The peer is not a live node identity on chain.
    #[error("peer 0x{}.. is not a registered node ({status:?})", hex4(.identity))]
    Unregistered {
        /// The peer's identity key.
        identity: [u8; 32],
        /// What the chain says.
        status: IdentityStatus,
    },
    /// The peer is the local node.
    #[error("the local node cannot be its own peer")]
    IsSelf,
    /// The bucket is full; its long-lived peers are kept.
    #[error("bucket {bucket} is full ({k} peers)")]
    BucketFull {
        /// The bucket index (highest bit of the distance).
        bucket: usize,
        /// The bucket size.
        k: usize,
    },
    /// Too many peers at this IP address.
    #[error("{max} peer(s) already at {addr}")]
    IpLimit {
        /// The address.
        addr: IpAddr,
        /// The limit.
        max: usize,
    },
    /// Too many peers of this address block in the bucket.
    #[error("{max} peer(s) of the subnet of {addr} already in bucket {bucket}")]
    SubnetLimit {
        /// The peer's address.
        addr: IpAddr,
        /// The bucket index.
        bucket: usize,
        /// The limit.
        max: usize,
    },
}

/// What [`RoutingTable::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A new peer.
    Inserted,
    /// The peer was known: it moved to the most-recently-seen end of its bucket.
    Refreshed,
}

/// The routing table of one node.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    local: DhtId,
    config: RoutingConfig,
    /// Bucket `i` holds the peers whose distance has its highest bit at `i`; least recently
    /// seen first.
    buckets: Vec<Vec<PeerInfo>>,
    per_ip: HashMap<IpAddr, usize>,
    len: usize,
}

impl RoutingTable {
    /// An empty table of the node with identity key `local_identity`.
    pub fn new(local_identity: &[u8; 32], config: RoutingConfig) -> Self {
        Self {
            local: DhtId::of_node(local_identity),
            config,
            buckets: vec![Vec::new(); ID_BITS],
            per_ip: HashMap::new(),
            len: 0,
        }
    }

    /// The local node's DHT id.
    pub fn local_id(&self) -> &DhtId {
        &self.local
    }

    /// The bounds in force.
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// Takes `peer` in, if the registry lists it as a live node and the limits allow.
    ///
    /// A known peer (same identity) is refreshed; its recorded address is kept, so a peer
    /// cannot walk around the diversity limits by re-announcing itself elsewhere.
    pub fn insert(
        &mut self,
        peer: PeerInfo,
        registry: &impl IdentityRegistry,
    ) -> Result<InsertOutcome, RoutingError> {
        let bucket = self.bucket_of(&peer)?;
        let entries = &mut self.buckets[bucket];
        if let Some(pos) = entries.iter().position(|p| p.identity == peer.identity) {
            let known = entries.remove(pos);
            entries.push(known);
            return Ok(InsertOutcome::Refreshed);
        }
        check_registered(&peer, registry)?;
        self.check_limits(bucket, &peer)?;
        self.buckets[bucket].push(peer);
        *self.per_ip.entry(peer.addr).or_insert(0) += 1;
        self.len += 1;
        Ok(InsertOutcome::Inserted)
    }

    fn bucket_of(&self, peer: &PeerInfo) -> Result<usize, RoutingError> {
        self.local
            .distance(&peer.id)
            .bucket()
            .ok_or(RoutingError::IsSelf)
    }

    fn check_limits(&self, bucket: usize, peer: &PeerInfo) -> Result<(), RoutingError> {
        let entries = &self.buckets[bucket];
        if entries.len() >= self.config.k {
            return Err(RoutingError::BucketFull {
                bucket,
                k: self.config.k,
            });
        }
        if self.per_ip.get(&peer.addr).copied().unwrap_or(0) >= self.config.max_per_ip {
            return Err(RoutingError::IpLimit {
                addr: peer.addr,
                max: self.config.max_per_ip,
            });
        }
        let subnet = Subnet::of(peer.addr);
        let same_subnet = entries
            .iter()
            .filter(|p| Subnet::of(p.addr) == subnet)
            .count();
        if same_subnet >= self.config.max_per_subnet_in_bucket {
            return Err(RoutingError::SubnetLimit {
                addr: peer.addr,
                bucket,
                max: self.config.max_per_subnet_in_bucket,
            });
        }
        Ok(())
    }

    /// Removes the peer with this identity (it stopped answering, or was revoked); returns
    /// whether it was there.
    pub fn remove(&mut self, identity: &[u8; 32]) -> bool {
        let id = DhtId::of_node(identity);
        let Some(bucket) = self.local.distance(&id).bucket() else {
            return false;
        };
        let entries = &mut self.buckets[bucket];
        let Some(pos) = entries.iter().position(|p| &p.identity == identity) else {
            return false;
        };
        let peer = entries.remove(pos);
        if let Some(n) = self.per_ip.get_mut(&peer.addr) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&peer.addr);
            }
        }
        self.len -= 1;
        true
    }

    /// Whether the peer with this identity is in the table.
    pub fn contains(&self, identity: &[u8; 32]) -> bool {
        let id = DhtId::of_node(identity);
        self.local
            .distance(&id)
            .bucket()
            .is_some_and(|b| self.buckets[b].iter().any(|p| &p.identity == identity))
    }

    /// The `n` known peers closest to `target`, closest first.
    pub fn closest(&self, target: &DhtId, n: usize) -> Vec<PeerInfo> {
        let mut all: Vec<(Distance, PeerInfo)> =
            self.iter().map(|p| (target.distance(&p.id), *p)).collect();
        all.sort_unstable_by_key(|(d, _)| *d);
        all.into_iter().take(n).map(|(_, p)| p).collect()
    }

    /// The peers of bucket `index` (least recently seen first); empty past the last bucket.
    pub fn bucket(&self, index: usize) -> &[PeerInfo] {
        self.buckets.get(index).map_or(&[], Vec::as_slice)
    }

    /// Every peer.
    pub fn iter(&self) -> impl Iterator<Item = &PeerInfo> {
        self.buckets.iter().flatten()
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn check_registered(peer: &PeerInfo, registry: &impl IdentityRegistry) -> Result<(), RoutingError> {
    match registry.status(&peer.identity) {
        IdentityStatus::Active(IdentityKind::Node) => Ok(()),
        status => Err(RoutingError::Unregistered {
            identity: peer.identity,
            status,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::StaticRegistry;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ident(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_be_bytes());
        k
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn registry_of(n: u32) -> StaticRegistry {
        let mut r = StaticRegistry::default();
        for i in 0..n {
            r.insert(ident(i), IdentityKind::Node);
        }
        r
    }

    /// Identities (from 1) whose id falls into `bucket` of the table of `ident(0)`.
    fn in_bucket(bucket: usize, count: usize) -> Vec<[u8; 32]> {
        let local = DhtId::of_node(&ident(0));
        (1..100_000)
            .map(ident)
            .filter(|k| local.distance(&DhtId::of_node(k)).bucket() == Some(bucket))
            .take(count)
            .collect()
    }

    #[test]
    fn distance_bucket_is_the_highest_set_bit() {
        let mut d = [0u8; 32];
        assert_eq!(Distance(d).bucket(), None);
        d[31] = 1;
        assert_eq!(Distance(d).bucket(), Some(0));
        d[0] = 0x80;
        assert_eq!(Distance(d).bucket(), Some(255));
        let mut e = [0u8; 32];
        e[30] = 0x03;
        assert_eq!(Distance(e).bucket(), Some(9));
    }

    #[test]
    fn refuses_unregistered_revoked_non_node_and_self() {
        let mut reg = registry_of(3);
        reg.insert(ident(5), IdentityKind::Client);
        reg.revoke(ident(2));
        let mut t = RoutingTable::new(&ident(0), RoutingConfig::default());
        let err = t.insert(PeerInfo::new(ident(9), v4(10, 0, 0, 9)), &reg);
        assert!(matches!(
            err,
            Err(RoutingError::Unregistered {
                status: IdentityStatus::Unknown,
                ..
            })
        ));
        let err = t.insert(PeerInfo::new(ident(2), v4(10, 0, 0, 2)), &reg);
        assert!(matches!(
            err,
            Err(RoutingError::Unregistered {
                status: IdentityStatus::Revoked,
                ..
            })
        ));
        let err = t.insert(PeerInfo::new(ident(5), v4(10, 0, 0, 5)), &reg);
        assert!(matches!(err, Err(RoutingError::Unregistered { .. })));
        let err = t.insert(PeerInfo::new(ident(0), v4(10, 0, 0, 1)), &reg);
        assert_eq!(err, Err(RoutingError::IsSelf));
        assert_eq!(
            t.insert(PeerInfo::new(ident(1), v4(10, 0, 0, 1)), &reg),
            Ok(InsertOutcome::Inserted)
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn full_bucket_keeps_old_peers_and_refresh_moves_to_the_end() {
        let peers = in_bucket(255, 4);
        let mut reg = StaticRegistry::default();
        for p in &peers {
            reg.insert(*p, IdentityKind::Node);
        }
        let config = RoutingConfig {
            k: 3,
            ..RoutingConfig::default()
        };
        let mut t = RoutingTable::new(&ident(0), config);
        for (i, p) in peers.iter().take(3).enumerate() {
            let addr = v4(10, i as u8, 0, 1);
            assert_eq!(
                t.insert(PeerInfo::new(*p, addr), &reg),
                Ok(InsertOutcome::Inserted)
            );
        }
        let err = t.insert(PeerInfo::new(peers[3], v4(10, 9, 0, 1)), &reg);
        assert_eq!(err, Err(RoutingError::BucketFull { bucket: 255, k: 3 }));
        assert_eq!(
            t.insert(PeerInfo::new(peers[0], v4(10, 0, 0, 1)), &reg),
            Ok(InsertOutcome::Refreshed)
        );
        assert_eq!(t.bucket(255).last().map(|p| *p.identity()), Some(peers[0]));
        assert!(t.remove(&peers[1]));
        assert!(!t.remove(&peers[1]));
        assert!(t
            .insert(PeerInfo::new(peers[3], v4(10, 9, 0, 1)), &reg)
            .is_ok());
        assert!(!t.contains(&peers[1]) && t.contains(&peers[3]));
    }

    #[test]
    fn one_peer_per_ip_in_the_whole_table() {
        let reg = registry_of(50);
        let mut t = RoutingTable::new(&ident(0), RoutingConfig::default());
        let same = v4(192, 0, 2, 7);
        assert!(t.insert(PeerInfo::new(ident(1), same), &reg).is_ok());
        let err = t.insert(PeerInfo::new(ident(2), same), &reg);
        assert_eq!(err, Err(RoutingError::IpLimit { addr: same, max: 1 }));
        assert!(t.remove(&ident(1)));
        assert!(t.insert(PeerInfo::new(ident(2), same), &reg).is_ok());
    }

    #[test]
    fn two_peers_per_subnet_in_one_bucket() {
        let peers = in_bucket(255, 4);
        let mut reg = StaticRegistry::default();
        for p in &peers {
            reg.insert(*p, IdentityKind::Node);
        }
        let mut t = RoutingTable::new(&ident(0), RoutingConfig::default());
        assert!(t
            .insert(PeerInfo::new(peers[0], v4(198, 51, 100, 1)), &reg)
            .is_ok());
        assert!(t
            .insert(PeerInfo::new(peers[1], v4(198, 51, 100, 2)), &reg)
            .is_ok());
        let err = t.insert(PeerInfo::new(peers[2], v4(198, 51, 100, 3)), &reg);
        assert!(matches!(
            err,
            Err(RoutingError::SubnetLimit {
                bucket: 255,
                max: 2,
                ..
            })
        ));
        assert!(t
            .insert(PeerInfo::new(peers[2], v4(198, 51, 101, 3)), &reg)
            .is_ok());
        let v6 = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 7, 1, 0, 0, 0, last));
        assert!(t.insert(PeerInfo::new(peers[3], v6(1)), &reg).is_ok());
        assert_eq!(
            Subnet::of(v6(1)),
            Subnet::of(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 7, 9, 9, 9, 9, 9)))
        );
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 9).to_ipv6_mapped());
        assert_eq!(Subnet::of(mapped), Subnet::of(v4(198, 51, 100, 1)));
    }

    #[test]
    fn closest_returns_the_nearest_by_xor() {
        let reg = registry_of(200);
        let mut t = RoutingTable::new(&ident(0), RoutingConfig::default());
        for i in 1..200u32 {
            let _ = t.insert(
                PeerInfo::new(ident(i), v4(10, (i >> 8) as u8, i as u8, 1)),
                &reg,
            );
        }
        let target = DhtId([0x5a; 32]);
        let got = t.closest(&target, 5);
        assert_eq!(got.len(), 5);
        let mut all: Vec<PeerInfo> = t.iter().copied().collect();
        all.sort_by_key(|p| target.distance(p.id()));
        assert_eq!(got, all[..5].to_vec());
        assert!(got
            .windows(2)
            .all(|w| target.distance(w[0].id()) < target.distance(w[1].id())));
    }
}

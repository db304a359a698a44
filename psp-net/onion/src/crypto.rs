//! Cryptographic primitives of the overlay: the only module that names primitive crates.
//!
//! * **Keys**: node identities are 32-byte sr25519 public keys ([`NodeId`]); the onion key a
//!   node registers on chain is an X25519 key ([`OnionSecret`] / [`OnionPublic`]).
//! * **Handshake**: an ntor-style one-round-trip X25519 handshake (tor-spec §5.1.4) with
//!   HMAC-SHA256 and HKDF-SHA256. The client knows the node's identity `ID` and onion key `B`;
//!   the server's `AUTH` proves possession of `b`, and the ephemeral `x`, `y` give forward secrecy.
//! * **Layer crypto**: one AES-256-GCM key pair per hop (ring, expanded once per circuit),
//!   nonces from per-direction cell counters (never sent). Forward cells carry one GCM tag per
//!   hop ("Sphinx-style" shift and zero filler keep every cell at one size); backward cells are
//!   sealed once by the last hop and masked with AES-256-CTR (GCM's keystream) at every hop in
//!   between. See the crate README for why.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use core::ops::RangeFrom;
use hkdf::Hkdf;
use ring::aead::{self, Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of every symmetric key and X25519 key: 256 bits.
pub const KEY_LEN: usize = 32;
/// Length of a GCM authentication tag: 128 bits.
pub const TAG_LEN: usize = 16;
/// Length of the ntor `AUTH` value: one HMAC-SHA256 output.
pub const AUTH_LEN: usize = 32;
/// Length of the relay cell body the layer crypto works on: 512-byte cell − 4-byte circuit id −
/// 1-byte command = 507 bytes.
pub const LAYER_LEN: usize = 507;
/// Plaintext under one layer: the body minus one tag, 507 − 16 = 491 bytes.
pub const LAYER_PLAINTEXT_LEN: usize = LAYER_LEN - TAG_LEN;
/// Most layers a forward cell can carry: the fillers of `hops − 1` hops, 16 bytes each, must fit
/// in the 491-byte plaintext, so 491 / 16 + 1 = 31.
pub const MAX_LAYERS: usize = LAYER_PLAINTEXT_LEN / TAG_LEN + 1;

/// Longest keystream [`LayerKey`] makes at once: the 507-byte body, rounded up to whole blocks.
const KEYSTREAM_MAX: usize = 512;

/// Protocol id mixed into every ntor hash (domain separation, versioning).
const PROTOID: &[u8] = b"psp-ntor-x25519-sha256-1";
const T_MAC: &[u8] = b"psp-ntor-x25519-sha256-1:mac";
const T_KEY: &[u8] = b"psp-ntor-x25519-sha256-1:key_extract";
const T_VERIFY: &[u8] = b"psp-ntor-x25519-sha256-1:verify";
const M_EXPAND: &[u8] = b"psp-ntor-x25519-sha256-1:key_expand";

/// Nonce domains: one per (direction, construction), so no key/nonce pair is used twice.
const DOMAIN_FORWARD_AEAD: u8 = 1;
const DOMAIN_BACKWARD_AEAD: u8 = 2;
const DOMAIN_BACKWARD_MASK: u8 = 3;

/// Errors of the crypto layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The handshake names a node id or onion key that is not ours: the client is trying to
    /// reach another node (or uses an outdated key from the chain).
    #[error("handshake addressed to another node or onion key")]
    WrongNode,
    /// A Diffie-Hellman result was all zeros: the peer sent a low-order point.
    #[error("non-contributory X25519 key (low-order point)")]
    NonContributory,
    /// The server's `AUTH` did not verify: we did not reach the node holding the onion key.
    #[error("handshake authentication failed: wrong node or tampered reply")]
    AuthFailed,
    /// A layer tag did not verify: the cell was modified, replayed, reordered or tagged.
    #[error("cell integrity check failed (modified, replayed or tagged cell)")]
    Integrity,
    /// The AEAD refused to seal (only inputs beyond GCM's 64 GiB limit are refused).
    #[error("the AEAD refused to seal")]
    Seal,
    /// A cell counter reached its maximum; the circuit must be rebuilt.
    #[error("cell counter exhausted")]
    CounterExhausted,
    /// The message does not fit in the space left by this many layers.
    #[error("message of {len} bytes does not fit in {capacity} bytes")]
    TooLong {
        /// Message length.
        len: usize,
        /// Space available.
        capacity: usize,
    },
    /// A circuit needs at least one hop to wrap a cell.
    #[error("no hops to wrap the cell for")]
    NoHops,
    /// More layers than the per-hop fillers leave room for in one cell.
    #[error("{hops} hops do not fit in one cell (at most {max})")]
    TooManyHops {
        /// Hops asked for.
        hops: usize,
        /// [`MAX_LAYERS`].
        max: usize,
    },
}

/// A node identity: its 32-byte sr25519 public key, as registered on chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 32]);

impl core::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "NodeId(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

/// A node's X25519 onion public key (`B` in ntor), as registered on chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct OnionPublic(pub [u8; 32]);

/// A node's X25519 onion secret key (`b` in ntor), with its public key cached (the server
/// handshake would otherwise pay one more scalar multiplication). Zeroized on drop.
pub struct OnionSecret(StaticSecret, OnionPublic);

impl OnionSecret {
    /// Builds the secret from 32 bytes (clamped by X25519).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = OnionPublic(PublicKey::from(&secret).to_bytes());
        Self(secret, public)
    }

    /// Draws a fresh secret from a cryptographic RNG.
    pub fn random(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        let s = Self::from_bytes(b);
        b.zeroize();
        s
    }

    /// The matching public key.
    pub fn public(&self) -> OnionPublic {
        self.1
    }
}

/// The client's first handshake message (carried by CREATE or EXTEND).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NtorClientMsg {
    /// Identity of the node the client wants to reach (`ID`).
    pub node_id: NodeId,
    /// The onion key the client believes that node has (`B`).
    pub onion_key: OnionPublic,
    /// The client's ephemeral public key (`X`).
    pub client_pk: [u8; 32],
}

/// The server's reply (carried by CREATED or EXTENDED).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NtorServerMsg {
    /// The server's ephemeral public key (`Y`).
    pub server_pk: [u8; 32],
    /// `AUTH = H(verify | ID | B | Y | X | PROTOID | "Server", t_mac)`.
    pub auth: [u8; AUTH_LEN],
}

/// The client's state between sending CREATE/EXTEND and receiving CREATED/EXTENDED.
pub struct NtorClientState {
    x: StaticSecret,
    msg: NtorClientMsg,
}

impl NtorClientState {
    /// The node this handshake is addressed to.
    pub fn node_id(&self) -> NodeId {
        self.msg.node_id
    }
}

/// The two symmetric keys of one hop, derived by the handshake. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct HopKeys {
    /// Key for cells travelling away from the client.
    pub forward: [u8; KEY_LEN],
    /// Key for cells travelling towards the client.
    pub backward: [u8; KEY_LEN],
}

impl core::fmt::Debug for HopKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HopKeys(..)")
    }
}

/// `H(x, t) = HMAC-SHA256(key = t, msg = x)`, which is HKDF-Extract(salt = t, ikm = x).
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut msg = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        msg.extend_from_slice(p);
    }
    let (prk, _) = Hkdf::<Sha256>::extract(Some(key), &msg);
    msg.zeroize();
    let mut out = [0u8; 32];
    out.copy_from_slice(&prk);
    out
}

/// Shared derivation of both sides: returns (keys, AUTH).
fn ntor_derive(
    dh_ephemeral: &[u8; 32],
    dh_static: &[u8; 32],
    msg: &NtorClientMsg,
    server_pk: &[u8; 32],
) -> (HopKeys, [u8; 32]) {
    let id = &msg.node_id.0[..];
    let b = &msg.onion_key.0[..];
    let x = &msg.client_pk[..];
    let y = &server_pk[..];
    let secret_input: [&[u8]; 7] = [dh_ephemeral, dh_static, id, b, x, y, PROTOID];
    let mut key_seed = hmac(T_KEY, &secret_input);
    let mut verify = hmac(T_VERIFY, &secret_input);
    let auth = hmac(T_MAC, &[&verify, id, b, y, x, PROTOID, b"Server"]);
    let mut okm = [0u8; 2 * KEY_LEN];
    // Expanding 64 bytes from a 32-byte PRK cannot exceed HKDF's 255 × 32 limit; fall back to a
    // zero key would be wrong, so an error here is unreachable by construction.
    let hk = Hkdf::<Sha256>::from_prk(&key_seed).unwrap_or_else(|_| Hkdf::new(None, &key_seed));
    let _ = hk.expand(M_EXPAND, &mut okm);
    let mut keys = HopKeys {
        forward: [0; KEY_LEN],
        backward: [0; KEY_LEN],
    };
    keys.forward.copy_from_slice(&okm[..KEY_LEN]);
    keys.backward.copy_from_slice(&okm[KEY_LEN..]);
    okm.zeroize();
    key_seed.zeroize();
    verify.zeroize();
    (keys, auth)
}

/// X25519 of one public key with two secrets, `(a·P, b·P)`, exactly as two [`dh`] calls
/// compute them. When `P` lies on the curve (not its twist) both products are computed on its
/// Edwards form, which curve25519-dalek multiplies with its vectorised (AVX2) backend where
/// the CPU has one, after one conversion shared by both: the clamped scalars are multiples of
/// the cofactor, so the u-coordinate of `[k]E` is X25519(k, u) for either Edwards point `E`
/// with that u. Twist points take the Montgomery ladder. Constant time in the secrets.
fn dh_pair(
    a: &StaticSecret,
    b: &StaticSecret,
    public: &[u8; 32],
) -> Result<([u8; 32], [u8; 32]), CryptoError> {
    let Some(point) = curve25519_dalek::MontgomeryPoint(*public).to_edwards(0) else {
        return Ok((dh(a, public)?, dh(b, public)?));
    };
    let product = |secret: &StaticSecret| {
        let mut scalar = secret.to_bytes();
        let shared = point.mul_clamped(scalar).to_montgomery().to_bytes();
        scalar.zeroize();
        shared
    };
    let (ap, bp) = (product(a), product(b));
    // An all-zero result means P had small order: nothing of the secret entered it.
    if bool::from(ap.ct_eq(&[0u8; 32]) | bp.ct_eq(&[0u8; 32])) {
        return Err(CryptoError::NonContributory);
    }
    Ok((ap, bp))
}

fn dh(secret: &StaticSecret, public: &[u8; 32]) -> Result<[u8; 32], CryptoError> {
    let shared = secret.diffie_hellman(&PublicKey::from(*public));
    if !shared.was_contributory() {
        return Err(CryptoError::NonContributory);
    }
    Ok(shared.to_bytes())
}

/// Client side, step 1: make the handshake message for `node_id` with onion key `onion_key`,
/// from 32 bytes of ephemeral secret (`x`).
pub fn ntor_client_start(
    node_id: NodeId,
    onion_key: OnionPublic,
    ephemeral: [u8; 32],
) -> (NtorClientState, NtorClientMsg) {
    let x = StaticSecret::from(ephemeral);
    let msg = NtorClientMsg {
        node_id,
        onion_key,
        client_pk: PublicKey::from(&x).to_bytes(),
    };
    (NtorClientState { x, msg }, msg)
}

/// Server side: answer a client message with our identity and onion key, from 32 bytes of
/// ephemeral secret (`y`). Fails if the message is addressed to another node or key.
pub fn ntor_server(
    my_id: &NodeId,
    my_secret: &OnionSecret,
    msg: &NtorClientMsg,
    ephemeral: [u8; 32],
) -> Result<(NtorServerMsg, HopKeys), CryptoError> {
    let my_public = my_secret.public();
    let id_ok = msg.node_id.0.ct_eq(&my_id.0);
    let key_ok = msg.onion_key.0.ct_eq(&my_public.0);
    if !bool::from(id_ok & key_ok) {
        return Err(CryptoError::WrongNode);
    }
    let y = StaticSecret::from(ephemeral);
    let server_pk = PublicKey::from(&y).to_bytes();
    let (mut xy, mut xb) = dh_pair(&y, &my_secret.0, &msg.client_pk)?;
    let (keys, auth) = ntor_derive(&xy, &xb, msg, &server_pk);
    xy.zeroize();
    xb.zeroize();
    Ok((NtorServerMsg { server_pk, auth }, keys))
}

/// Client side, step 2: check the server's reply and derive the hop keys.
pub fn ntor_client_finish(
    state: NtorClientState,
    reply: &NtorServerMsg,
) -> Result<HopKeys, CryptoError> {
    let mut yx = dh(&state.x, &reply.server_pk)?;
    let mut bx = dh(&state.x, &state.msg.onion_key.0)?;
    let (keys, auth) = ntor_derive(&yx, &bx, &state.msg, &reply.server_pk);
    yx.zeroize();
    bx.zeroize();
    if bool::from(auth.ct_eq(&reply.auth)) {
        Ok(keys)
    } else {
        Err(CryptoError::AuthFailed)
    }
}

fn nonce(domain: u8, counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[0] = domain;
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn next(counter: &mut u64) -> Result<u64, CryptoError> {
    let c = *counter;
    *counter = c.checked_add(1).ok_or(CryptoError::CounterExhausted)?;
    Ok(c)
}

fn xor_into(buf: &mut [u8], ks: &[u8]) {
    for (b, k) in buf.iter_mut().zip(ks) {
        *b ^= k;
    }
}

/// A ring AEAD key, prepared once.
fn prepared(algorithm: &'static aead::Algorithm, key: &[u8; KEY_LEN]) -> LessSafeKey {
    match UnboundKey::new(algorithm, key) {
        Ok(k) => LessSafeKey::new(k),
        // ring refuses only a key of the wrong length, which `[u8; 32]` rules out.
        Err(_) => unreachable!("ring's AEADs take 32-byte keys"),
    }
}

/// One direction of one hop: an AES-256-GCM key, expanded once (AES round keys and the GHASH
/// table), so a cell pays for none of it.
struct LayerKey(LessSafeKey);

impl LayerKey {
    fn new(key: &[u8; KEY_LEN]) -> Self {
        Self(prepared(&AES_256_GCM, key))
    }

    /// AES-256-GCM encryption of `buf` in place, empty associated data; returns the tag.
    fn encrypt(&self, nonce: Nonce, buf: &mut [u8]) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, Aad::empty(), buf)
            .map_err(|_| CryptoError::Seal)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// The first `len` bytes of the keystream GCM encrypts with under `nonce` (AES-256-CTR from
    /// counter block `nonce || 2`), at most 512. GCM cannot seek and ring has no bare CTR, so
    /// this encrypts zeros and drops their tag: no tag but a real cell's is ever sent. It runs
    /// to a whole number of 16-byte blocks, which ring encrypts without its slower partial-block
    /// step (512 bytes cost less than 507).
    fn keystream(&self, nonce: Nonce, len: usize) -> Result<[u8; KEYSTREAM_MAX], CryptoError> {
        let mut ks = [0u8; KEYSTREAM_MAX];
        let whole = len.next_multiple_of(16).min(KEYSTREAM_MAX);
        self.encrypt(nonce, &mut ks[..whole])?;
        Ok(ks)
    }

    /// Seals the 491 bytes of a forward layer in place: `body[..491]` (plaintext) becomes
    /// `tag || ciphertext`, the layout [`Self::open_forward`] peels.
    fn seal_forward(&self, nonce: Nonce, body: &mut [u8; LAYER_LEN]) -> Result<(), CryptoError> {
        let tag = self.encrypt(nonce, &mut body[..LAYER_PLAINTEXT_LEN])?;
        body.copy_within(..LAYER_PLAINTEXT_LEN, TAG_LEN);
        body[..TAG_LEN].copy_from_slice(&tag);
        Ok(())
    }

    /// The inverse of [`Self::seal_forward`]: authenticates `body[16..]` against the tag in
    /// `body[..16]` and decrypts it into `body[..491]` in the same pass (ring shifts as it
    /// decrypts); `body[491..]` keeps the last 16 ciphertext bytes.
    fn open_forward(&self, nonce: Nonce, body: &mut [u8; LAYER_LEN]) -> Result<(), CryptoError> {
        let tag = Tag::try_from(&body[..TAG_LEN]).map_err(|_| CryptoError::Integrity)?;
        self.open(nonce, tag, body, TAG_LEN..)
    }

    /// Seals the 491 bytes of a backward cell in place: `body[..491]` (plaintext) becomes
    /// `ciphertext || tag` (no shift needed: backward cells are sealed once).
    fn seal_backward(&self, nonce: Nonce, body: &mut [u8; LAYER_LEN]) -> Result<(), CryptoError> {
        let tag = self.encrypt(nonce, &mut body[..LAYER_PLAINTEXT_LEN])?;
        body[LAYER_PLAINTEXT_LEN..].copy_from_slice(&tag);
        Ok(())
    }

    /// The inverse of [`Self::seal_backward`]; the plaintext is `body[..491]`.
    fn open_backward(&self, nonce: Nonce, body: &mut [u8; LAYER_LEN]) -> Result<(), CryptoError> {
        let tag =
            Tag::try_from(&body[LAYER_PLAINTEXT_LEN..]).map_err(|_| CryptoError::Integrity)?;
        self.open(nonce, tag, &mut body[..LAYER_PLAINTEXT_LEN], 0..)
    }

    /// ring's open of `in_out[ciphertext]` into `in_out[..len]`: the tags are compared in constant
    /// time, and on failure ring zeroes the output, so no unauthenticated plaintext is left.
    fn open(
        &self,
        nonce: Nonce,
        tag: Tag,
        in_out: &mut [u8],
        ciphertext: RangeFrom<usize>,
    ) -> Result<(), CryptoError> {
        self.0
            .open_in_place_separate_tag(nonce, Aad::empty(), tag, in_out, ciphertext)
            .map(drop)
            .map_err(|_| CryptoError::Integrity)
    }
}

/// The layer state of one hop, held identically by the client and by that hop.
///
/// ring does not zeroize its expanded keys on drop (the [`HopKeys`] they came from are);
/// `#![forbid(unsafe_code)]` rules out wiping them from here.
pub struct HopCrypto {
    forward: LayerKey,
    backward: LayerKey,
    forward_counter: u64,
    backward_counter: u64,
}

impl HopCrypto {
    /// Expands both keys and starts both directions at counter 0.
    pub fn new(keys: HopKeys) -> Self {
        Self {
            forward: LayerKey::new(&keys.forward),
            backward: LayerKey::new(&keys.backward),
            forward_counter: 0,
            backward_counter: 0,
        }
    }

    /// Relay, forward: verify and remove our layer. On success `body[..491]` holds the
    /// plaintext (the next hop's cell body, or our message if we are the last hop) and
    /// `body[491..]` the zero filler that keeps the cell at 507 bytes.
    pub fn relay_open_forward(&mut self, body: &mut [u8; LAYER_LEN]) -> Result<(), CryptoError> {
        let ctr = next(&mut self.forward_counter)?;
        self.forward
            .open_forward(nonce(DOMAIN_FORWARD_AEAD, ctr), body)?;
        body[LAYER_PLAINTEXT_LEN..].fill(0);
        Ok(())
    }

    /// Relay, backward, as the last hop: seal the plaintext in `body[..491]` into `ct || tag`.
    pub fn relay_seal_backward(&mut self, body: &mut [u8; LAYER_LEN]) -> Result<(), CryptoError> {
        let ctr = next(&mut self.backward_counter)?;
        self.backward
            .seal_backward(nonce(DOMAIN_BACKWARD_AEAD, ctr), body)
    }

    /// Backward mask of an intermediate hop (relay adds it, client removes it: XOR): the
    /// AES-256-CTR keystream GCM encrypts with (counter block `nonce || 2`), over all 507
    /// bytes.
    pub fn mask_backward(&mut self, body: &mut [u8; LAYER_LEN]) -> Result<(), CryptoError> {
        let ctr = next(&mut self.backward_counter)?;
        let ks = self
            .backward
            .keystream(nonce(DOMAIN_BACKWARD_MASK, ctr), LAYER_LEN)?;
        xor_into(body, &ks);
        Ok(())
    }

    /// Client, backward, at the hop that sealed the cell: verify and decrypt; the plaintext is
    /// `body[..491]` afterwards.
    pub fn client_open_backward(&mut self, body: &mut [u8; LAYER_LEN]) -> Result<(), CryptoError> {
        let ctr = next(&mut self.backward_counter)?;
        self.backward
            .open_backward(nonce(DOMAIN_BACKWARD_AEAD, ctr), body)
    }

    /// XORs the forward keystream of cell `ctr`, from plaintext offset `offset`, into `buf`
    /// (the client's fillers): the keystream this hop applies to the cell.
    fn xor_forward_keystream(
        &self,
        ctr: u64,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), CryptoError> {
        let ks = self
            .forward
            .keystream(nonce(DOMAIN_FORWARD_AEAD, ctr), offset + buf.len())?;
        xor_into(buf, ks.get(offset..).unwrap_or_default());
        Ok(())
    }
}

/// Message capacity of a forward cell for a circuit of `hops` hops: 491 − 16 × (hops − 1).
pub const fn forward_capacity(hops: usize) -> usize {
    LAYER_PLAINTEXT_LEN.saturating_sub(TAG_LEN * hops.saturating_sub(1))
}

/// Client, forward: wrap `msg` for the last of `hops` (one layer per hop, outermost first in
/// `hops[0]`). Every hop removes its tag, shifts the rest left by 16 bytes and appends 16 zero
/// bytes; the client precomputes those fillers so each hop's tag covers exactly the bytes that
/// hop will see. Unused space after `msg` is filled from `padding`, so the last hop cannot tell
/// its depth from where the message ends.
pub fn client_wrap_forward(
    hops: &mut [HopCrypto],
    msg: &[u8],
    padding: &mut PaddingStream,
) -> Result<[u8; LAYER_LEN], CryptoError> {
    let k = hops.len();
    if k == 0 {
        return Err(CryptoError::NoHops);
    }
    if k > MAX_LAYERS {
        return Err(CryptoError::TooManyHops {
            hops: k,
            max: MAX_LAYERS,
        });
    }
    let capacity = forward_capacity(k);
    if msg.len() > capacity {
        return Err(CryptoError::TooLong {
            len: msg.len(),
            capacity,
        });
    }
    if hops.iter().any(|h| h.forward_counter == u64::MAX) {
        return Err(CryptoError::CounterExhausted);
    }
    // The fillers end the plaintext: T_0 is empty and T_{j+1} = (T_j ⊕ ks_j[tail]) || 0^16 are
    // the bytes hop j+1 sees at the end of its body. They are built in place at
    // body[tail_start..491]; the appended zeros are already there. (T_1 = 0^16 needs no
    // keystream, so hop 0 is skipped.)
    let mut body = [0u8; LAYER_LEN];
    let tail_start = LAYER_PLAINTEXT_LEN - TAG_LEN * (k - 1);
    for (j, h) in hops.iter().enumerate().take(k - 1).skip(1) {
        let tail = &mut body[tail_start..tail_start + TAG_LEN * j];
        h.xor_forward_keystream(h.forward_counter, LAYER_PLAINTEXT_LEN - tail.len(), tail)?;
    }
    body[..msg.len()].copy_from_slice(msg);
    padding.fill(&mut body[msg.len()..tail_start]);
    if let (Some(last), true) = (hops.last(), k > 1) {
        let tail = &mut body[tail_start..LAYER_PLAINTEXT_LEN];
        last.xor_forward_keystream(last.forward_counter, tail_start, tail)?;
    }
    for h in hops.iter_mut().rev() {
        let ctr = next(&mut h.forward_counter)?;
        h.forward
            .seal_forward(nonce(DOMAIN_FORWARD_AEAD, ctr), &mut body)?;
    }
    Ok(body)
}

/// Client, backward: remove the masks of `hops[..last]` and open the seal of `hops[last]`.
/// Returns the 491-byte plaintext slice.
pub fn client_unwrap_backward<'a>(
    hops: &mut [HopCrypto],
    body: &'a mut [u8; LAYER_LEN],
) -> Result<&'a [u8], CryptoError> {
    let (last, inner) = hops.split_last_mut().ok_or(CryptoError::NoHops)?;
    for h in inner {
        h.mask_backward(body)?;
    }
    last.client_open_backward(body)?;
    Ok(&body[..LAYER_PLAINTEXT_LEN])
}

/// A client-local pseudo-random stream for cell padding (ChaCha20 under a secret seed).
pub struct PaddingStream {
    key: [u8; 32],
    cipher: ChaCha20,
}

impl PaddingStream {
    /// Seeds the stream; the seed must be secret to the client.
    pub fn new(seed: [u8; 32]) -> Self {
        let cipher = ChaCha20::new((&seed).into(), (&[0u8; 12]).into());
        Self { key: seed, cipher }
    }

    /// Overwrites `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(0);
        if self.cipher.try_apply_keystream(buf).is_err() {
            // 256 GiB used: ratchet the key and continue.
            let (prk, _) = Hkdf::<Sha256>::extract(Some(b"psp-padding-ratchet"), &self.key);
            self.key.copy_from_slice(&prk);
            self.cipher = ChaCha20::new((&self.key).into(), (&[0u8; 12]).into());
            self.cipher.apply_keystream(buf);
        }
    }
}

impl Drop for PaddingStream {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// A raw ring AEAD seal with a prepared key (no key schedule per call): the benchmarks'
/// baseline for one layer.
pub struct RawAead(LessSafeKey);

impl RawAead {
    /// AES-256-GCM, the layers' cipher.
    pub fn aes_256_gcm(key: &[u8; 32]) -> Self {
        Self(prepared(&AES_256_GCM, key))
    }

    /// ChaCha20-Poly1305 (RFC 8439).
    pub fn chacha20_poly1305(key: &[u8; 32]) -> Self {
        Self(prepared(&CHACHA20_POLY1305, key))
    }

    /// Seals `buf` in place under nonce `counter`, returning the tag.
    pub fn seal(&self, counter: u64, buf: &mut [u8]) -> [u8; TAG_LEN] {
        let mut out = [0u8; TAG_LEN];
        if let Ok(tag) = self
            .0
            .seal_in_place_separate_tag(nonce(0, counter), Aad::empty(), buf)
        {
            out.copy_from_slice(tag.as_ref());
        }
        out
    }
}

mod sign;
pub use sign::{
    blake2_256, blake2_256_parts, sr25519_verify, Sr25519Keypair, Sr25519Signature, SIGNATURE_LEN,
};

#[cfg(test)]
mod tests;

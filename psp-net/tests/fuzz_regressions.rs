//! Fuzz regressions, on stable in `cargo test`: every decoder a peer can reach, run on stored
//! inputs (`tests/fuzz_corpus/<target>/`: crash inputs, if a fuzzer ever finds one, and a
//! handful of minimized corpus entries per target) and on truncated and oversized encodings
//! of valid values. Refusals must be errors, never panics.
//!
//! The checks of the `dht_record`, `directory`, `cert`, `relay_state`, `stream_wire`,
//! `media_wire` and `usage_wire` fuzz targets are the very modules the fuzz targets run
//! (`fuzz/checks/*.rs`, included below), so a stored input is checked here exactly as the
//! fuzzer checked it. The `cell`, `relay_msg` and `handshake`
//! targets are three lines each and are repeated here.
//!
//! To add a crash: copy the artifact (`psp-net/fuzz/artifacts/<target>/crash-*`) into
//! `tests/fuzz_corpus/<target>/` under a name saying what it was.

use std::path::PathBuf;

use psp_net::bytes::Reader;
use psp_net::cell::{
    read_ntor_client, read_ntor_server, Cell, ChanMsg, CircId, DestroyReason, RelayMsg, StreamId,
    CELL_LEN,
};
use psp_net::cert::{CertRequest, CertificateAuthority, CERTIFICATE_LEN, REQUEST_LEN};
use psp_net::crypto::{ntor_server, NodeId, OnionSecret, Sr25519Keypair};
use psp_net::dht::{RecordContent, RecordError, RecordKind, SignedRecord};
use psp_net::directory::{
    Directory, DirectoryEntry, DirectoryError, DirectorySignature, SignedDirectory, SignedStatus,
    SignedVote, StatusReport, Vote,
};
use psp_net::registry::{IdentityKind, StaticRegistry};

#[path = "../fuzz/checks/cert.rs"]
mod cert;
#[path = "../fuzz/checks/dht_record.rs"]
mod dht_record;
#[path = "../fuzz/checks/directory.rs"]
mod directory;
#[path = "../fuzz/checks/media_wire.rs"]
mod media_wire;
#[path = "../fuzz/checks/relay_state.rs"]
mod relay_state;
#[path = "../fuzz/checks/stream_wire.rs"]
mod stream_wire;
#[path = "../fuzz/checks/usage_wire.rs"]
mod usage_wire;

/// The stored inputs of `target`, sorted by name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fuzz_corpus", target]
        .iter()
        .collect();
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("directory entry").path();
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            (name, std::fs::read(&path).expect("readable input"))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no stored inputs for {target}");
    out
}

/// Runs `check` on every stored input of `target`, naming the input that fails.
fn run_stored<R>(target: &str, check: impl Fn(&[u8]) -> R) {
    for (name, data) in inputs(target) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(result.is_ok(), "{target}: input {name} panics");
    }
}

/// Every strict prefix of `bytes`, and `bytes` with one byte more, are refused by `decode`
/// (and `check` does not panic on them).
fn refuses_truncated_and_oversized<T, E, R>(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, E>,
    check: impl Fn(&[u8]) -> R,
) {
    assert!(decode(bytes).is_ok(), "the untouched value decodes");
    for n in 0..bytes.len() {
        assert!(decode(&bytes[..n]).is_err(), "a {n}-byte prefix decodes");
        check(&bytes[..n]);
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode(&longer).is_err(), "a trailing byte is accepted");
    check(&longer);
}

// --- the cell, relay_msg and handshake targets, as in fuzz/fuzz_targets/

fn cell_check(data: &[u8]) {
    if let Ok(cell) = Cell::decode(data) {
        let bytes = cell.encode();
        assert_eq!(bytes.len(), CELL_LEN);
        assert_eq!(Cell::decode(&bytes).ok(), Some(cell));
    }
}

fn relay_msg_check(data: &[u8]) {
    if let Ok(msg) = RelayMsg::decode(data) {
        let mut buf = vec![0u8; data.len().max(8)];
        let n = msg
            .encode_into(&mut buf)
            .expect("a decoded message fits where it came from");
        assert_eq!(RelayMsg::decode(&buf[..n]).ok(), Some(msg));
    }
}

fn handshake_check(data: &[u8]) {
    let _ = read_ntor_server(&mut Reader::new(data));
    if let Ok(mut m) = read_ntor_client(&mut Reader::new(data)) {
        let id = NodeId([1; 32]);
        let b = OnionSecret::from_bytes([2; 32]);
        let _ = ntor_server(&id, &b, &m, [3; 32]);
        m.node_id = id;
        m.onion_key = b.public();
        let _ = ntor_server(&id, &b, &m, [3; 32]);
    }
}

#[test]
fn cell_stored_inputs() {
    run_stored("cell", cell_check);
}

#[test]
fn cell_truncated_and_oversized() {
    let cell = Cell {
        circ_id: CircId::new(7).expect("nonzero"),
        msg: ChanMsg::Destroy(DestroyReason::Protocol),
    };
    refuses_truncated_and_oversized(&cell.encode(), Cell::decode, cell_check);
    assert!(Cell::decode(&[]).is_err());
}

#[test]
fn relay_msg_stored_inputs() {
    run_stored("relay_msg", relay_msg_check);
}

#[test]
fn relay_msg_truncated_and_oversized() {
    let msg = RelayMsg::Data {
        stream: StreamId::new(3).expect("nonzero"),
        data: b"some stream bytes".to_vec(),
    };
    let mut buf = [0u8; 64];
    let n = msg.encode_into(&mut buf).expect("fits");
    for k in 0..n {
        assert!(RelayMsg::decode(&buf[..k]).is_err(), "{k}-byte prefix");
        relay_msg_check(&buf[..k]);
    }
    // Bytes after the declared length are padding, not part of the message.
    assert_eq!(RelayMsg::decode(&buf).as_ref(), Ok(&msg));
    // A length field beyond the bytes is refused.
    buf[3] = 0xff;
    assert!(RelayMsg::decode(&buf[..n]).is_err());
    relay_msg_check(&buf);
}

#[test]
fn handshake_stored_inputs() {
    run_stored("handshake", handshake_check);
}

// --- dht_record

fn signed_record(value_len: usize) -> SignedRecord {
    let owner = Sr25519Keypair::from_seed(&[1; 32]);
    let publisher = Sr25519Keypair::from_seed(&[2; 32]);
    RecordContent {
        kind: RecordKind::Presence,
        owner: owner.public(),
        topic: [0x80; 32],
        publisher: publisher.public(),
        seq: 1,
        issued_at: 1_000_000,
        expires_at: 1_000_600,
        value: vec![0x61; value_len],
    }
    .sign(&owner, &publisher)
}

#[test]
fn dht_record_stored_inputs() {
    run_stored("dht_record", dht_record::check);
}

#[test]
fn dht_record_stored_inputs_reach_the_signature_checks() {
    // Some stored input, re-signed by the check, validates: the positive path runs.
    assert!(inputs("dht_record")
        .iter()
        .any(|(_, data)| dht_record::check(data)));
}

#[test]
fn dht_record_truncated_and_oversized() {
    let bytes = signed_record(18).encode();
    dht_record::check(&bytes);
    refuses_truncated_and_oversized(&bytes, SignedRecord::decode, dht_record::check);
    // A value length over the hard limit is refused before anything is read.
    let mut big = signed_record(0).encode();
    big[122..124].copy_from_slice(&4_097u16.to_be_bytes());
    big.resize(big.len() + 4_097, 0);
    assert_eq!(
        SignedRecord::decode(&big).err(),
        Some(RecordError::Oversized {
            len: 4_097,
            max: 4_096
        })
    );
    dht_record::check(&big);
    // The largest value decodes; the default limits refuse it as oversized.
    let largest = signed_record(4_096).encode();
    dht_record::check(&largest);
    assert!(SignedRecord::decode(&largest).is_ok());
}

// --- directory

fn entry(n: u8, addresses: &[&str]) -> DirectoryEntry {
    DirectoryEntry {
        node: NodeId([n; 32]),
        flags: 3,
        addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn directory_values() -> Vec<Vec<u8>> {
    let kp = Sr25519Keypair::from_seed(&[5; 32]);
    let me = NodeId(kp.public());
    let status = SignedStatus::sign(
        StatusReport {
            node: me,
            period: 3,
            flags: 1,
            addresses: vec!["/ip4/10.0.0.1/tcp/30444".into()],
            issued_at: 10_800,
        },
        &kp,
    )
    .expect("valid report");
    let entries = vec![entry(1, &["/ip4/10.0.0.1/tcp/1"]), entry(2, &[])];
    let vote = SignedVote::sign(
        Vote {
            period: 3,
            voter: me,
            entries: entries.clone(),
        },
        &kp,
    )
    .expect("valid vote");
    let d = Directory {
        period: 3,
        valid_after: 10_800,
        valid_until: 18_000,
        entries,
    };
    let mut sd = SignedDirectory::new(d.clone());
    let sig = sd.sign(&kp, &[0x47; 32]);
    vec![
        status.encode(),
        vote.encode(),
        d.encode(),
        sd.encode(),
        sig.encode(),
    ]
}

#[test]
fn directory_stored_inputs() {
    run_stored("directory", directory::check);
}

#[test]
fn directory_stored_inputs_reach_the_signature_checks() {
    assert!(inputs("directory")
        .iter()
        .any(|(_, data)| directory::check(data)));
}

#[test]
fn directory_truncated_and_oversized() {
    let values = directory_values();
    let decoders: [fn(&[u8]) -> bool; 5] = [
        |b| SignedStatus::decode(b).is_ok(),
        |b| SignedVote::decode(b).is_ok(),
        |b| Directory::decode(b).is_ok(),
        |b| SignedDirectory::decode(b).is_ok(),
        |b| DirectorySignature::decode(b).is_ok(),
    ];
    for (bytes, decode) in values.iter().zip(decoders) {
        directory::check(bytes);
        refuses_truncated_and_oversized(
            bytes,
            |b| if decode(b) { Ok(()) } else { Err(()) },
            directory::check,
        );
    }
    // Huge counts are refused before allocating.
    let mut vote = values[1].clone();
    vote[40..44].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        SignedVote::decode(&vote),
        Err(DirectoryError::TooMany { .. })
    ));
    let mut sd = values[3].clone();
    let count_at = values[2].len();
    sd[count_at..count_at + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(
        SignedDirectory::decode(&sd),
        Err(DirectoryError::TooMany { .. })
    ));
    directory::check(&vote);
    directory::check(&sd);
}

// --- cert

#[test]
fn cert_stored_inputs() {
    run_stored("cert", cert::check);
}

#[test]
fn cert_stored_inputs_reach_the_signature_checks() {
    assert!(inputs("cert").iter().any(|(_, data)| cert::check(data)));
}

#[test]
fn cert_truncated_and_oversized() {
    let identity = Sr25519Keypair::from_seed(&[6; 32]);
    let authority = Sr25519Keypair::from_seed(&[7; 32]);
    let request = CertRequest::new(&identity, [8; 32], authority.public(), 5_000);
    let bytes = request.encode();
    assert_eq!(bytes.len(), REQUEST_LEN);
    cert::check(&bytes);
    refuses_truncated_and_oversized(&bytes, CertRequest::decode, cert::check);

    let mut registry = StaticRegistry::default();
    registry.insert(identity.public(), IdentityKind::Client);
    let mut ca = CertificateAuthority::new(authority, [0x47; 32], 3_600, 1);
    let cert = ca.issue(&bytes, 5_000, &registry).expect("issued");
    let bytes = cert.encode();
    assert_eq!(bytes.len(), CERTIFICATE_LEN);
    cert::check(&bytes);
    refuses_truncated_and_oversized(&bytes, psp_net::cert::Certificate::decode, cert::check);
}

// --- relay_state

#[test]
fn relay_state_stored_inputs() {
    run_stored("relay_state", relay_state::check);
}

#[test]
fn relay_state_reaches_relay_cells_both_ways() {
    // The empty input only builds the first circuit (the check asserts it is built).
    assert_eq!(relay_state::check(&[]).max_hops, 1);
    // The stored inputs between them get past CREATE: relay messages answered by A, a second
    // hop, cells forwarded to it and back.
    let mut best = relay_state::Reached::default();
    for (_, data) in inputs("relay_state") {
        let r = relay_state::check(&data);
        best.from_a = best.from_a.max(r.from_a);
        best.at_b = best.at_b.max(r.at_b);
        best.from_b = best.from_b.max(r.from_b);
        best.max_hops = best.max_hops.max(r.max_hops);
    }
    assert!(best.from_a > 0, "{best:?}");
    assert!(best.at_b > 0, "{best:?}");
    assert!(best.from_b > 0, "{best:?}");
    assert_eq!(best.max_hops, 2, "{best:?}");
}

#[test]
fn rendezvous_wire_stored_inputs() {
    run_stored("rendezvous_wire", psp_net::rendezvous::fuzz_decode_all);
}

// --- stream_wire

fn stream_record_bytes() -> Vec<u8> {
    use psp_stream::record::{StreamId, StreamRecord};
    StreamRecord::sign(
        &Sr25519Keypair::from_seed(&[0x52; 32]),
        StreamId([1; 32]),
        psp_stream::wire::FormatFlags::webrtc(),
        1_000_000,
        1_000_600,
        vec![[2; 32], [3; 32]],
    )
    .encode()
}

/// Frames (length prefix and body) of every oracle and landing message.
fn stream_frames() -> Vec<Vec<u8>> {
    use psp_net::receipts::{BitrateClass, KeyId, Receipt, SpendId, StreamParams};
    use psp_stream::record::StreamId;
    use psp_stream::wire::{
        BoundedBytes, FormatFlags, LandingMsg, LandingRefusal, OracleMsg, OracleRefusal,
    };
    let receipt = Receipt {
        key_id: KeyId([4; 32]),
        epoch: 9,
        params: StreamParams {
            lifetime_secs: 3_600,
            bitrate: BitrateClass::Standard,
            distribution_nodes: 2,
        },
        landing: [5; 32],
        spend_id: SpendId([6; 32]),
        prefix: [7; 32],
        signature: vec![8; 256],
    }
    .encode();
    assert!(Receipt::decode(&receipt).is_ok());
    fn bounded<const N: usize>(bytes: Vec<u8>) -> BoundedBytes<N> {
        BoundedBytes::new("test", bytes).expect("within bounds")
    }
    vec![
        OracleMsg::ReceiptRequest {
            certificate: bounded(vec![0x0c; 186]),
            tier: KeyId([4; 32]),
            blinded: bounded(vec![0x0b; 256]),
            signature: [0x0d; 64],
        }
        .encode(),
        OracleMsg::ReceiptIssued {
            blind_signature: bounded(vec![0x0e; 256]),
        }
        .encode(),
        OracleMsg::Refused(OracleRefusal::Exhausted).encode(),
        LandingMsg::CreateStream {
            receipt: bounded(receipt),
            distribution_nodes: vec![[2; 32], [3; 32]],
            format: FormatFlags::webrtc(),
        }
        .encode(),
        LandingMsg::StreamCreated {
            stream_id: StreamId([1; 32]),
            record: bounded(stream_record_bytes()),
        }
        .encode(),
        LandingMsg::Refused(LandingRefusal::Busy).encode(),
    ]
}

#[test]
fn stream_wire_stored_inputs() {
    run_stored("stream_wire", stream_wire::check);
}

#[test]
fn stream_wire_stored_inputs_reach_the_signature_checks() {
    assert!(inputs("stream_wire")
        .iter()
        .any(|(_, data)| stream_wire::check(data)));
}

#[test]
fn stream_wire_truncated_and_oversized() {
    use psp_stream::record::StreamRecord;
    use psp_stream::wire::{LandingMsg, OracleMsg};
    let frames = stream_frames();
    for frame in &frames {
        stream_wire::check(frame);
        let body = &frame[2..];
        if OracleMsg::decode(body).is_ok() {
            refuses_truncated_and_oversized(body, OracleMsg::decode, stream_wire::check);
        } else {
            refuses_truncated_and_oversized(body, LandingMsg::decode, stream_wire::check);
        }
    }
    let record = stream_record_bytes();
    assert!(stream_wire::check(&record));
    refuses_truncated_and_oversized(&record, StreamRecord::decode, stream_wire::check);
    // Every frame at once through the deframer; the StreamCreated record verifies re-signed.
    assert!(stream_wire::check(&frames.concat()));
}

// --- media_wire

fn load_report() -> psp_media::load::SignedLoadReport {
    let key = Sr25519Keypair::from_seed(&[0x6e; 32]);
    psp_media::load::LoadReport {
        node: NodeId(key.public()),
        stream_id: psp_media::StreamId([1; 32]),
        subscribers: 3,
        bytes_per_sec_out: 250_000,
        capacity_bytes_per_sec: 1_000_000,
        at: 1_800_000_000_000,
    }
    .sign(&key)
}

/// Every media-link message, encoded (length prefix, type, body).
fn media_frames() -> Vec<Vec<u8>> {
    use psp_media::sframe::{Context, KeyUsage};
    use psp_media::wire::{ErrorCode, MediaMsg};
    let mut sender = Context::new();
    sender
        .add_key(1, &[0x5d; 16], KeyUsage::Encrypt)
        .expect("key");
    let frame = sender
        .encrypt(1, 5, b"", b"a media frame")
        .expect("encrypts");
    vec![
        MediaMsg::Publish {
            stream_id: psp_media::StreamId([1; 32]),
            token: [2; 32],
        }
        .encode(),
        MediaMsg::Frame(frame).encode(),
        MediaMsg::Load(load_report()).encode(),
        MediaMsg::NeedNodes { count: 2 }.encode(),
        MediaMsg::AddNodes {
            nodes: vec![NodeId([3; 32]), NodeId([4; 32])],
        }
        .encode(),
        MediaMsg::Error {
            code: ErrorCode::Full,
            reason: "full".into(),
        }
        .encode(),
    ]
}

#[test]
fn media_wire_stored_inputs() {
    run_stored("media_wire", media_wire::check);
}

#[test]
fn media_wire_stored_inputs_reach_the_signature_checks() {
    assert!(inputs("media_wire")
        .iter()
        .any(|(_, data)| media_wire::check(data)));
}

#[test]
fn media_wire_truncated_and_oversized() {
    use psp_media::load::SignedLoadReport;
    use psp_media::wire::{Deframer, MediaMsg, MAX_BODY_LEN};
    let frames = media_frames();
    for (i, frame) in frames.iter().enumerate() {
        media_wire::check(frame);
        let body = &frame[4..];
        media_wire::check(body);
        // A Frame is opaque and an Error reason free text: a trailing byte is theirs.
        if i != 1 && i != 5 {
            refuses_truncated_and_oversized(body, MediaMsg::decode, media_wire::check);
        }
    }
    let report = load_report().encode();
    assert!(media_wire::check(&report));
    refuses_truncated_and_oversized(&report, SignedLoadReport::decode, media_wire::check);
    // All at once through the deframer, which yields them all.
    let stream = frames.concat();
    assert!(media_wire::check(&stream));
    assert_eq!(
        Deframer::new().feed(&stream).map(|m| m.len()).ok(),
        Some(frames.len())
    );
    // A length above the bound is refused as soon as its 4 bytes arrive.
    let mut d = Deframer::new();
    let too_long = u32::try_from(MAX_BODY_LEN + 2).expect("fits");
    assert!(d.feed(&too_long.to_be_bytes()).is_err());
    media_wire::check(&too_long.to_be_bytes());
    // A body above the bound is refused by the decoder.
    let mut big = vec![2u8];
    big.resize(MAX_BODY_LEN + 2, 0);
    assert!(MediaMsg::decode(&big).is_err());
}

// --- usage_wire

/// The keys and chain of psp-usage's own tests, as `fuzz/checks/usage_wire.rs` uses them.
const USAGE_GENESIS: [u8; 32] = [0x9e; 32];
const USAGE_STREAM: [u8; 32] = [0x5d; 32];
const USAGE_CHALLENGE: [u8; 32] = [0xc4; 32];
const USAGE_EPOCH: u32 = 7;
const USAGE_NOW: u64 = 1_800_000_000;

fn usage_key(tag: u8, i: u8) -> Sr25519Keypair {
    let mut seed = [tag; 32];
    seed[31] = i;
    Sr25519Keypair::from_seed(&seed)
}

/// A solution, a ticket, an admission, a consumer token, a relay half and a client half, all
/// made by psp-usage's own code.
fn usage_values() -> Vec<Vec<u8>> {
    use psp_usage::puzzle::{self, Challenge, Solution};
    use psp_usage::report::{ClientMeter, Half, RelayMeter};
    use psp_usage::ticket::{Admission, GateConfig, SessionTicket, TicketGate};
    use psp_usage::token::ConsumerToken;
    let oracle = usage_key(0x0a, 0);
    let relay = usage_key(0x7e, 1);
    let session_key = usage_key(0x5e, 2);
    let challenge = Challenge {
        genesis: USAGE_GENESIS,
        block: [0xb1; 32],
        oracle: NodeId(oracle.public()),
        session_key: session_key.public(),
    };
    let nonce = puzzle::solve(&challenge, 4, 0, 1 << 16)
        .expect("difficulty")
        .expect("a nonce");
    let solution = Solution {
        block: challenge.block,
        session_key: session_key.public(),
        nonce,
    };
    let session = challenge.session();
    let ticket = SessionTicket {
        genesis: USAGE_GENESIS,
        session,
        oracle: NodeId(oracle.public()),
        valid_from: USAGE_NOW,
        valid_until: USAGE_NOW + 3_600,
    }
    .sign(&oracle);
    let relay_id = NodeId(relay.public());
    let admission = Admission::new(
        ticket,
        &session_key,
        &relay_id,
        &USAGE_STREAM,
        &USAGE_CHALLENGE,
    );
    let mut gate = TicketGate::new(USAGE_GENESIS, relay_id, GateConfig::default());
    gate.set_elected(&[NodeId(oracle.public())])
        .expect("elected");
    let admitted = gate
        .admit(USAGE_NOW, &USAGE_STREAM, &USAGE_CHALLENGE, &admission)
        .expect("admitted");
    let mut meter = RelayMeter::new(USAGE_GENESIS, relay.clone(), 4);
    meter.admit(&admitted).expect("metered");
    meter
        .record(&session, 40_000, USAGE_NOW * 1_000)
        .expect("record");
    meter
        .record(&session, 2_000, USAGE_NOW * 1_000 + 9_000)
        .expect("record");
    let relay_half = meter.end_epoch(USAGE_EPOCH).pop().expect("one half");
    let token = ConsumerToken {
        key_id: psp_net::receipts::KeyId([9; 32]),
        epoch: u64::from(USAGE_EPOCH),
        session,
        prefix: [1; 32],
        signature: vec![2; 256],
    };
    let mut client = ClientMeter::new(USAGE_GENESIS, session_key, relay_id);
    client.record(41_000, USAGE_NOW * 1_000);
    client.record(1_000, USAGE_NOW * 1_000 + 9_500);
    let client_half = client
        .end_epoch(USAGE_EPOCH, token.clone())
        .expect("token for the session")
        .expect("traffic");
    vec![
        solution.encode(),
        ticket.encode().to_vec(),
        admission.encode(),
        token.encode(),
        Half::Relay(relay_half).encode(),
        Half::Client(client_half).encode(),
    ]
}

#[test]
fn usage_wire_stored_inputs() {
    run_stored("usage_wire", usage_wire::check);
}

#[test]
fn usage_wire_stored_inputs_reach_the_signature_checks() {
    assert!(inputs("usage_wire")
        .iter()
        .any(|(_, data)| usage_wire::check(data)));
}

#[test]
fn usage_wire_truncated_and_oversized() {
    use psp_usage::report::{Half, MAX_HALF_LEN};
    use psp_usage::ticket::{Admission, SignedTicket};
    use psp_usage::token::ConsumerToken;
    use psp_usage::Solution;
    let values = usage_values();
    let decoders: [fn(&[u8]) -> bool; 6] = [
        |b| Solution::decode(b).is_ok(),
        |b| SignedTicket::decode(b).is_ok(),
        |b| Admission::decode(b).is_ok(),
        |b| ConsumerToken::decode(b).is_ok(),
        |b| Half::decode(b).is_ok(),
        |b| Half::decode(b).is_ok(),
    ];
    for (bytes, decode) in values.iter().zip(decoders) {
        usage_wire::check(bytes);
        refuses_truncated_and_oversized(
            bytes,
            |b| if decode(b) { Ok(()) } else { Err(()) },
            usage_wire::check,
        );
    }
    // The admission and the relay half go through the gate and the collector.
    assert!(usage_wire::check(&values[2]));
    assert!(usage_wire::check(&values[4]));
    // A half above the longest is refused before anything is read.
    let mut big = values[5].clone();
    big.resize(MAX_HALF_LEN + 1, 0);
    assert!(Half::decode(&big).is_err());
    usage_wire::check(&big);
    // A token length beyond the longest token is refused.
    let mut client = values[5].clone();
    let at = 6 + 32 + 32 + 24 + 64;
    client[at..at + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(Half::decode(&client).is_err());
    usage_wire::check(&client);
}

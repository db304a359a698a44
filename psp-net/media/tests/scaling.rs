//! Load reports and the landing node's scaling machine.

use psp_media::load::{
    Action, ConsumerId, LoadReport, Scaling, ScalingConfig, SignedLoadReport,
    SIGNED_LOAD_REPORT_LEN,
};
use psp_media::{MediaError, StreamId};
use psp_onion::crypto::{NodeId, Sr25519Keypair};

const S: StreamId = StreamId([5; 32]);

fn key(i: u8) -> Sr25519Keypair {
    Sr25519Keypair::from_seed(&[i; 32])
}

fn node(i: u8) -> NodeId {
    NodeId(key(i).public())
}

fn report(i: u8, out: u64, cap: u64, at: u64) -> SignedLoadReport {
    LoadReport {
        node: node(i),
        stream_id: S,
        subscribers: 1,
        bytes_per_sec_out: out,
        capacity_bytes_per_sec: cap,
        at,
    }
    .sign(&key(i))
}

fn config() -> ScalingConfig {
    ScalingConfig {
        stale_after_ms: 10_000,
        high_load_permille: 800,
        per_consumer_bytes_per_sec: 100,
        assumed_capacity_bytes_per_sec: 1_000,
        need_retry_ms: 5_000,
        max_future_skew_ms: 1_000,
    }
}

fn drain(s: &mut Scaling) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

#[test]
fn reports_round_trip_and_verify() {
    let signed = report(1, 500, 1_000, 42);
    let bytes = signed.encode();
    assert_eq!(bytes.len(), SIGNED_LOAD_REPORT_LEN);
    let decoded = SignedLoadReport::decode(&bytes).unwrap();
    assert_eq!(decoded, signed);
    assert_eq!(decoded.verify().unwrap().load_permille(), 500);
    // Any flipped byte breaks the signature (or names another node).
    for i in 0..bytes.len() {
        let mut bad = bytes;
        bad[i] ^= 1;
        assert!(
            SignedLoadReport::decode(&bad).unwrap().verify().is_err(),
            "byte {i}"
        );
    }
    assert!(matches!(
        SignedLoadReport::decode(&bytes[..155]),
        Err(MediaError::Truncated { .. })
    ));
    let mut long = bytes.to_vec();
    long.push(0);
    assert!(matches!(
        SignedLoadReport::decode(&long),
        Err(MediaError::TrailingBytes { .. })
    ));
}

#[test]
fn reports_are_checked() {
    let mut s = Scaling::new(S, &[node(1), node(2)], 4, config(), 0).unwrap();
    s.on_report(100, &report(1, 100, 1_000, 100)).unwrap();
    // Not newer, from the future, forged, other stream, not an access point.
    assert!(matches!(
        s.on_report(200, &report(1, 100, 1_000, 100)),
        Err(MediaError::ReportOutOfOrder { .. })
    ));
    assert!(matches!(
        s.on_report(200, &report(1, 100, 1_000, 1_201)),
        Err(MediaError::ReportOutOfOrder { .. })
    ));
    let forged = LoadReport {
        node: node(2),
        ..*report(1, 0, 1_000, 300).unverified()
    }
    .sign(&key(1));
    assert!(matches!(
        s.on_report(300, &forged),
        Err(MediaError::ReportSignature { .. })
    ));
    let other = LoadReport {
        stream_id: StreamId([6; 32]),
        ..*report(2, 0, 1_000, 300).unverified()
    }
    .sign(&key(2));
    assert!(matches!(
        s.on_report(300, &other),
        Err(MediaError::WrongStream { .. })
    ));
    assert!(matches!(
        s.on_report(300, &report(3, 0, 1_000, 300)),
        Err(MediaError::NotAnAccessPoint { .. })
    ));
}

#[test]
fn consumers_go_to_the_least_loaded_access_point() {
    let mut s = Scaling::new(S, &[node(1), node(2), node(3)], 4, config(), 0).unwrap();
    s.on_report(0, &report(1, 600, 1_000, 0)).unwrap();
    s.on_report(0, &report(2, 200, 1_000, 0)).unwrap();
    s.on_report(0, &report(3, 400, 1_000, 0)).unwrap();
    // Each consumer adds 100 B/s = 100 ‰: node 2 (200 ‰) takes consumers until it reaches
    // node 3 (400 ‰); ties go to the first listed; node 1 (600 ‰) gets none.
    let picks: Vec<NodeId> = (0..6)
        .map(|c| s.assign(10, ConsumerId(c)).unwrap())
        .collect();
    assert_eq!(
        picks,
        vec![node(2), node(2), node(2), node(3), node(2), node(3)]
    );
    let actions = drain(&mut s);
    assert_eq!(
        actions[0],
        Action::Assign {
            consumer: ConsumerId(0),
            node: node(2)
        }
    );
    // Loads now: 1 at 600, 2 at 600, 3 at 600, all below 800: no need yet.
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::NeedNodes { .. })));
}

#[test]
fn all_hot_asks_for_one_more_node_and_full_refuses() {
    let mut s = Scaling::new(S, &[node(1), node(2)], 3, config(), 0).unwrap();
    s.on_report(0, &report(1, 850, 1_000, 0)).unwrap();
    assert_eq!(drain(&mut s), vec![]);
    s.on_report(0, &report(2, 950, 1_000, 0)).unwrap();
    assert_eq!(drain(&mut s), vec![Action::NeedNodes { count: 1 }]);
    // Not repeated before the retry time, repeated after.
    s.handle_timeout(4_999);
    assert_eq!(drain(&mut s), vec![]);
    s.on_report(5_000, &report(1, 950, 1_000, 5_000)).unwrap();
    assert_eq!(drain(&mut s), vec![Action::NeedNodes { count: 1 }]);
    // A consumer adds 100 ‰: on either node that would exceed capacity.
    assert_eq!(
        s.assign(5_001, ConsumerId(1)),
        Err(MediaError::NoAccessPoint { access_points: 2 })
    );
    // The producer adds a node: the set changes, the need is met.
    s.add_nodes(5_002, &[node(3)]).unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Action::AccessPointsChanged {
            nodes: vec![node(1), node(2), node(3)]
        }]
    );
    assert_eq!(s.assign(5_003, ConsumerId(1)), Ok(node(3)));
}

#[test]
fn silent_nodes_are_replaced_within_the_allowance() {
    let mut s = Scaling::new(S, &[node(1), node(2), node(3)], 4, config(), 0).unwrap();
    s.on_report(1_000, &report(1, 100, 1_000, 1_000)).unwrap();
    s.on_report(1_000, &report(2, 100, 1_000, 1_000)).unwrap();
    assert_eq!(s.poll_timeout(1_000), Some(10_000));
    // Node 3 never reports: silent at 10 s.
    s.handle_timeout(10_000);
    assert_eq!(drain(&mut s), vec![Action::NeedNodes { count: 1 }]);
    assert_eq!(s.nodes_needed(10_000), 1);
    // Above the allowance (2 live + 3 new > 4) or a duplicate: refused, nothing changed.
    assert_eq!(
        s.add_nodes(10_001, &[node(4), node(5), node(6)]),
        Err(MediaError::TooManyNodes { got: 5, allowed: 4 })
    );
    assert!(matches!(
        s.add_nodes(10_001, &[node(1)]),
        Err(MediaError::DuplicateNode { .. })
    ));
    assert!(matches!(
        s.add_nodes(10_001, &[node(4), node(4)]),
        Err(MediaError::DuplicateNode { .. })
    ));
    assert_eq!(s.access_points().len(), 3);
    // Two new nodes replace the silent one.
    s.add_nodes(10_001, &[node(4), node(5)]).unwrap();
    assert_eq!(s.access_points(), vec![node(1), node(2), node(4), node(5)]);
    assert_eq!(s.nodes_needed(10_001), 0);
    // Nodes 1 and 2 fall silent at 11 s: two to replace. All four silent: four (the
    // allowance), not five.
    assert_eq!(s.nodes_needed(11_000), 2);
    assert_eq!(s.nodes_needed(20_001), 4);
}

#[test]
fn the_allowance_caps_the_set() {
    assert!(matches!(
        Scaling::new(S, &[node(1), node(2), node(3)], 2, config(), 0),
        Err(MediaError::TooManyNodes { got: 3, allowed: 2 })
    ));
    assert!(matches!(
        Scaling::new(S, &[node(1), node(1)], 2, config(), 0),
        Err(MediaError::DuplicateNode { .. })
    ));
    // At the allowance with every node hot: no NeedNodes (no room).
    let mut s = Scaling::new(S, &[node(1)], 1, config(), 0).unwrap();
    s.on_report(0, &report(1, 990, 1_000, 0)).unwrap();
    assert_eq!(s.nodes_needed(0), 0);
    assert_eq!(drain(&mut s), vec![]);
    assert_eq!(s.max_nodes(), 1);
}

#[test]
fn unreported_nodes_take_consumers_against_the_assumed_capacity() {
    let mut s = Scaling::new(S, &[node(1)], 2, config(), 0).unwrap();
    // 1 000 B/s assumed, 100 each: 10 consumers fit (the 8th makes it hot), not 11.
    for c in 0..10 {
        assert_eq!(s.assign(1, ConsumerId(c)), Ok(node(1)));
    }
    assert!(s.assign(1, ConsumerId(10)).is_err());
    let actions = drain(&mut s);
    assert_eq!(
        actions
            .iter()
            .filter(|a| matches!(a, Action::NeedNodes { .. }))
            .count(),
        1
    );
    let loads = s.loads(1);
    assert_eq!(
        (loads[0].load_permille, loads[0].assigned_since_report),
        (1_000, 10)
    );
}

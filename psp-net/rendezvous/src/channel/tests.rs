//! The channel alone, on fixed keys: framing, reassembly, and refusal of altered, reordered,
//! replayed and oversized frames.

use super::*;
use zeroize::Zeroizing;

fn pair(config: ChannelConfig) -> (Channel, Channel) {
    let (a2b, b2a) = ([1u8; 32], [2u8; 32]);
    let alice = Channel::new(
        [0xbb; 32],
        Direction {
            send: Zeroizing::new(a2b),
            receive: Zeroizing::new(b2a),
        },
        config,
    );
    let bob = Channel::new(
        [0xaa; 32],
        Direction {
            send: Zeroizing::new(b2a),
            receive: Zeroizing::new(a2b),
        },
        config,
    );
    (alice, bob)
}

fn deliver(to: &mut Channel, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter_map(|f| to.open_frame(f).unwrap())
        .collect()
}

#[test]
fn messages_of_every_size_cross_byte_exact_in_frames_that_fit_a_cell() {
    let config = ChannelConfig::default();
    assert_eq!(config.max_frame_len(), 450);
    let (mut alice, mut bob) = pair(config);
    let chunk_first = 450 - 16 - 5;
    let chunk_rest = 450 - 16 - 1;
    let sizes = [
        0,
        1,
        chunk_first - 1,
        chunk_first,
        chunk_first + 1,
        chunk_first + chunk_rest,
        chunk_first + chunk_rest + 1,
        65_536,
        100_003,
    ];
    for (i, &len) in sizes.iter().enumerate() {
        let message: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
        let frames = alice.seal_message(&message).unwrap();
        assert_eq!(frames.len(), config.frames_for(len), "len {len}");
        assert!(frames.iter().all(|f| f.len() <= 450));
        assert_eq!(deliver(&mut bob, &frames), vec![message.clone()]);
        assert_eq!(bob.reassembly_bytes(), 0);
        // And back.
        let frames = bob.seal_message(&message).unwrap();
        assert_eq!(deliver(&mut alice, &frames), vec![message]);
    }
}

#[test]
fn tampered_reordered_replayed_and_dropped_frames_break_the_channel() {
    let message = vec![5u8; 2_000];
    type Mangle = fn(Vec<Vec<u8>>) -> Vec<Vec<u8>>;
    let cases: [(&str, Mangle); 4] = [
        ("tampered", |mut f| {
            f[1][3] ^= 1;
            f
        }),
        ("reordered", |mut f| {
            f.swap(0, 1);
            f
        }),
        ("replayed", |mut f| {
            let again = f[0].clone();
            f.insert(1, again);
            f
        }),
        ("dropped", |mut f| {
            f.remove(1);
            f
        }),
    ];
    for (name, mangle) in cases {
        let (mut alice, mut bob) = pair(ChannelConfig::default());
        let frames = mangle(alice.seal_message(&message).unwrap());
        let results: Vec<_> = frames.iter().map(|f| bob.open_frame(f)).collect();
        assert!(
            results.contains(&Err(ChannelError::Integrity)),
            "{name}: {results:?}"
        );
        assert!(bob.is_broken(), "{name}");
        assert_eq!(bob.reassembly_bytes(), 0, "{name}");
        assert_eq!(bob.open_frame(&frames[0]), Err(ChannelError::Broken));
        assert_eq!(bob.seal_message(b"x"), Err(ChannelError::Broken));
    }
}

#[test]
fn a_frame_from_the_wrong_direction_does_not_open() {
    let (mut alice, _bob) = pair(ChannelConfig::default());
    let (mut alice2, _) = pair(ChannelConfig::default());
    let own = alice.seal_message(b"hello").unwrap();
    assert_eq!(alice2.open_frame(&own[0]), Err(ChannelError::Integrity));
}

#[test]
fn bounds_hold_on_both_sides() {
    let config = ChannelConfig::new(64, 1_000).unwrap();
    let (mut alice, mut bob) = pair(config);
    assert_eq!(
        alice.seal_message(&[0; 1_001]),
        Err(ChannelError::MessageTooLong {
            len: 1_001,
            max: 1_000
        })
    );
    assert!(matches!(
        bob.open_frame(&[0; 65]),
        Err(ChannelError::FrameTooLong { len: 65, max: 64 })
    ));
    // A well-authenticated frame announcing more than the bound is refused before any
    // byte is buffered.
    let (_, mut bob) = pair(config);
    let mut plaintext = vec![FLAG_FIRST];
    plaintext.extend_from_slice(&u32::MAX.to_be_bytes());
    let frame = crypto::seal(&[1; 32], 0, &[], &plaintext);
    assert!(matches!(
        bob.open_frame(&frame),
        Err(ChannelError::AnnouncedTooLong { .. })
    ));
    assert!(ChannelConfig::new(MIN_FRAME_LEN - 1, 10).is_err());
    assert!(ChannelConfig::for_cell_data(3).is_err());
    assert_eq!(
        ChannelConfig::for_cell_data(486).unwrap().max_frame_len(),
        482
    );
}

#[test]
fn framing_violations_inside_authentic_frames_are_refused() {
    let seal = |counter: u64, plaintext: &[u8]| crypto::seal(&[1; 32], counter, &[], plaintext);
    let violations: [(&str, Vec<Vec<u8>>); 5] = [
        ("continuation first", vec![seal(0, &[FLAG_LAST, 1])]),
        ("empty", vec![seal(0, &[])]),
        ("unknown flags", vec![seal(0, &[0x80])]),
        (
            "overrun",
            vec![seal(0, &[FLAG_FIRST | FLAG_LAST, 0, 0, 0, 1, 7, 7])],
        ),
        (
            "short last",
            vec![
                seal(0, &[FLAG_FIRST, 0, 0, 0, 9, 1]),
                seal(1, &[FLAG_LAST, 2]),
            ],
        ),
    ];
    for (name, frames) in violations {
        let (_, mut bob) = pair(ChannelConfig::default());
        let last = frames
            .iter()
            .map(|f| bob.open_frame(f))
            .find(Result::is_err);
        assert!(
            matches!(last, Some(Err(ChannelError::Framing(_)))),
            "{name}: {last:?}"
        );
    }
}

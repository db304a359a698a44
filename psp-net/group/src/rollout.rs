//! Key rollouts: who leads one, and the sealing and opening of the new group key.
//!
//! The leader of the rollout to epoch `e` is the member minimising
//! `BLAKE2b-256("psp/group/leader/v1" ‖ group ‖ e ‖ seed ‖ member)` over the members the
//! rollout keeps, where `seed` is the transcript hash of epoch `e − 1` (the hash of the
//! rollout packet that opened it, or of the group's genesis). Every member of epoch `e − 1`
//! holds the same seed, so every member computes the same ranking, and no member can choose
//! its rank without choosing its identity after the previous rollout was sent.
//!
//! Views of the member list can differ for a while (a heartbeat lost on one link), so two
//! members may each lead a rollout to the same epoch. They settle on the one with the lowest
//! [`Rank`] (leader hash, then rollout hash). The leader over a larger member list ranks no
//! higher than the leader over a subset of it, so the rollout keeping more members wins.

use psp_onion::crypto::Sr25519Keypair;

use crate::crypto::{self, AgreementSecret, GroupKey};
use crate::error::Error;
use crate::ids::{AgreementKey, GroupId, KeyEpoch, MemberId};
use crate::wire::{encode_signed, Body, Rollout, SealedKey, SEALED_KEY_LEN};

/// How a rollout ranks against a competing one for the same epoch: lower wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    /// The leader's hash for the epoch.
    pub leader_hash: [u8; 32],
    /// The rollout's transcript hash (breaks the tie of one leader sending two rollouts).
    pub transcript: [u8; 32],
}

/// A member's hash in the leader draw for the rollout to `epoch`.
pub fn leader_hash(
    group: GroupId,
    epoch: KeyEpoch,
    seed: &[u8; 32],
    member: &MemberId,
) -> [u8; 32] {
    crypto::hash(&[
        b"psp/group/leader/v1",
        &group.0.to_be_bytes(),
        &epoch.0.to_be_bytes(),
        seed,
        &member.0,
    ])
}

/// The leader of the rollout to `epoch` among `members`; `None` if there are none.
pub fn leader<'a>(
    group: GroupId,
    epoch: KeyEpoch,
    seed: &[u8; 32],
    members: impl IntoIterator<Item = &'a MemberId>,
) -> Option<MemberId> {
    members
        .into_iter()
        .min_by_key(|m| (leader_hash(group, epoch, seed, m), **m))
        .copied()
}

/// The transcript hash of an epoch opened by the packet `bytes` (a rollout).
pub fn transcript(bytes: &[u8]) -> [u8; 32] {
    crypto::hash(&[b"psp/group/transcript/v1", bytes])
}

/// The transcript hash of epoch 0.
pub fn genesis_transcript(group: GroupId, creator: &MemberId) -> [u8; 32] {
    crypto::hash(&[b"psp/group/genesis/v1", &group.0.to_be_bytes(), &creator.0])
}

/// What binds one sealed key to its rollout.
fn seal_context(
    group: GroupId,
    epoch: KeyEpoch,
    leader: &MemberId,
    recipient: &MemberId,
) -> Vec<u8> {
    [
        &b"psp/group/rollout-key/v1"[..],
        &group.0.to_be_bytes(),
        &epoch.0.to_be_bytes(),
        &leader.0,
        &recipient.0,
    ]
    .concat()
}

/// Builds and signs the rollout to `epoch`: `key` sealed to every member of `keep` (the
/// leader included), `removed` listed. [`crate::Group`] calls it when it leads; it is public
/// for tools and tests (a rollout from a member that does not lead is refused by the others).
pub fn build(
    group: GroupId,
    leader_keys: &Sr25519Keypair,
    epoch: KeyEpoch,
    removed: Vec<MemberId>,
    keep: &[(MemberId, AgreementKey)],
    key: &GroupKey,
    rng: &mut dyn rand_core::CryptoRngCore,
) -> Result<Vec<u8>, Error> {
    let leader = MemberId(leader_keys.public());
    let mut keys = Vec::with_capacity(keep.len());
    for (member, agreement_key) in keep {
        let context = seal_context(group, epoch, &leader, member);
        let sealed = crypto::seal_to(agreement_key, &context, key.bytes(), rng)
            .map_err(|_| Error::BadAgreementKey { member: *member })?;
        let sealed: [u8; SEALED_KEY_LEN] = sealed
            .try_into()
            .map_err(|_| Error::BadRollout("sealed key length"))?;
        keys.push(SealedKey {
            member: *member,
            sealed,
        });
    }
    let body = Body::Rollout(Rollout {
        epoch,
        removed,
        keys,
    });
    Ok(encode_signed(group, leader_keys, &body))
}

/// Opens our copy of a rollout's key.
pub(crate) fn open_key(
    group: GroupId,
    leader: &MemberId,
    rollout: &Rollout,
    me: &MemberId,
    secret: &AgreementSecret,
) -> Result<GroupKey, Error> {
    let sealed = rollout
        .keys
        .iter()
        .find(|k| k.member == *me)
        .ok_or(Error::BadRollout("no key for this member"))?;
    let context = seal_context(group, rollout.epoch, leader, me);
    let plain =
        crypto::open_sealed(secret, &context, &sealed.sealed).map_err(|_| Error::DoesNotOpen {
            what: "rollout key",
        })?;
    let key: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| Error::BadRollout("key length"))?;
    Ok(GroupKey::from_bytes(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_of_a_superset_ranks_no_higher_than_of_a_subset() {
        let seed = [9; 32];
        let members: Vec<MemberId> = (0u8..8).map(|i| MemberId([i; 32])).collect();
        let all = leader(GroupId(1), KeyEpoch(2), &seed, &members).expect("leader");
        let sub = leader(GroupId(1), KeyEpoch(2), &seed, &members[..4]).expect("leader");
        assert!(
            leader_hash(GroupId(1), KeyEpoch(2), &seed, &all)
                <= leader_hash(GroupId(1), KeyEpoch(2), &seed, &sub)
        );
        // Every member computes the same leader whatever the order of its table.
        let mut reversed = members.clone();
        reversed.reverse();
        assert_eq!(leader(GroupId(1), KeyEpoch(2), &seed, &reversed), Some(all));
        // Another seed or epoch redraws.
        let draws: std::collections::BTreeSet<MemberId> = (0u64..32)
            .filter_map(|e| leader(GroupId(1), KeyEpoch(e), &seed, &members))
            .collect();
        assert!(draws.len() > 1);
    }
}

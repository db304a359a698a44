//! End to end: the identity life cycle against a real `psp-node --dev`, driven through
//! `psp_client`: register, look up by key and by id, rotate, revoke, and the refusals
//! (already registered, bad proof, not owner, revoked) with their balance effects; and a
//! device's check of an update signed by the identity (`psp device check-update`): accepted
//! while the publisher is live, refused once it is revoked.

use anyhow::{bail, ensure, Context, Result};
use psp_client::devices::update;
use psp_client::{
    chain::{keypair_from_suri, parse_ss58, registration_proof, AccountBalance, Chain, Progress},
    hex0x,
    keystore::Keys,
    subxt::rpcs::rpc_params,
    Error, IdentityError,
};
use psp_e2e_tests::{client_registration, run_psp, PspNode, PspRun, PSP_TIMEOUT};
use psp_primitives::{rpc::IdentityView, IdString, IdentityKind, IdentityStatus};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

/// The runtime's identity deposit: 1 UNIT = 10^12.
const DEPOSIT: u128 = 1_000_000_000_000;
/// The whole scenario must finish well within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Records every progress report, so the test can check the sequence.
fn recorder() -> (Arc<Mutex<Vec<Progress>>>, impl FnMut(Progress) + Send) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (seen, move |p: Progress| {
        eprintln!("  {p}");
        if let Ok(mut v) = sink.lock() {
            v.push(p);
        }
    })
}

fn print(p: Progress) {
    eprintln!("  {p}");
}

/// Expects `result` to be a failed dispatch with the given identity error, and returns the
/// block it failed in and the fee paid.
fn expect_identity_error<T: std::fmt::Debug>(
    result: psp_client::Result<T>,
    want: IdentityError,
) -> Result<([u8; 32], u128)> {
    match result {
        Err(Error::Dispatch(failure)) if failure.identity_error == Some(want) => {
            ensure!(
                failure.hint == want.hint(),
                "hint for {want}: {}",
                failure.hint
            );
            ensure!(failure.pallet == "PspIdentity", "pallet {}", failure.pallet);
            let fee = failure
                .fee_paid
                .context("the block's events did not report the fee")?;
            ensure!(fee > 0, "a failed transaction still pays a fee");
            Ok((failure.block_hash, fee))
        }
        Err(e) => bail!("expected {want}, got error: {e}"),
        Ok(v) => bail!("expected {want}, got success: {v:?}"),
    }
}

/// Balance of `who` at `block`.
async fn balance_at(chain: &Chain, who: &[u8; 32], block: [u8; 32]) -> Result<AccountBalance> {
    Ok(chain.balance(who, Some(block)).await?)
}

/// Asserts that between `before` and the failed transaction's block, `who` lost exactly the fee.
async fn only_fee_paid(
    chain: &Chain,
    who: &[u8; 32],
    before: AccountBalance,
    (block, fee): ([u8; 32], u128),
) -> Result<[u8; 32]> {
    let after = balance_at(chain, who, block).await?;
    ensure!(
        after.reserved == before.reserved,
        "reserved changed: {before:?} -> {after:?}"
    );
    ensure!(
        before.free - after.free == fee,
        "free fell by {} but the fee was {fee}",
        before.free - after.free
    );
    Ok(block)
}

fn check_view(view: &IdentityView, keys: &Keys, owner: &[u8; 32]) -> Result<()> {
    let id = IdString::new(
        "peerstream",
        IdentityKind::Client,
        "account",
        keys.identity_public(),
    )?;
    ensure!(view.id == id.to_string(), "id {} != {id}", view.id);
    ensure!(parse_ss58(&view.owner)? == *owner, "owner {}", view.owner);
    ensure!(view.kind == IdentityKind::Client, "kind {:?}", view.kind);
    ensure!(
        view.namespace == "peerstream",
        "namespace {}",
        view.namespace
    );
    ensure!(
        view.app_namespace == "account",
        "app namespace {}",
        view.app_namespace
    );
    ensure!(
        view.key == hex0x(&keys.identity_public()),
        "key {}",
        view.key
    );
    ensure!(
        view.x25519 == hex0x(&keys.x25519_public()),
        "x25519 {}",
        view.x25519
    );
    ensure!(view.node.is_none(), "node {:?}", view.node);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_life_cycle_and_refusals() -> Result<()> {
    let node = PspNode::start().await?;
    eprintln!(
        "psp-node up at {} (log {})",
        node.url(),
        node.log_path().display()
    );
    match tokio::time::timeout(TEST_TIMEOUT, scenario(&node.url())).await {
        Ok(result) => result.map_err(|e| {
            anyhow::anyhow!("{e:#}\n--- psp-node log tail ---\n{}", node.log_tail(40))
        }),
        Err(_) => bail!(
            "scenario did not finish within {} s\n--- psp-node log tail ---\n{}",
            TEST_TIMEOUT.as_secs(),
            node.log_tail(40)
        ),
    }
}

/// `psp device check-update` at `url` of version 3 of `thermo-fw`, signed by `keys`, on a
/// device running version 2 that trusts `keys`' identity.
async fn check_update(url: &str, keys: &Keys, dir: &std::path::Path) -> Result<PspRun> {
    let payload = b"firmware v3".to_vec();
    let manifest = update::sign(keys, "thermo-fw", 3, &payload)?;
    let (m, p) = (dir.join("manifest.json"), dir.join("payload.bin"));
    std::fs::write(&m, serde_json::to_vec(&manifest)?)?;
    std::fs::write(&p, &payload)?;
    let (m, p) = (m.display().to_string(), p.display().to_string());
    let publisher = hex0x(&keys.identity_public());
    let args = [
        "device",
        "check-update",
        "--manifest",
        &m,
        "--payload",
        &p,
        "--publisher",
        &publisher,
        "--target",
        "thermo-fw",
        "--installed",
        "2",
        "--url",
        url,
    ];
    run_psp(&args, PSP_TIMEOUT).await
}

async fn scenario(url: &str) -> Result<()> {
    let chain = Chain::connect(url)
        .await?
        .with_tx_timeout(Duration::from_secs(120));
    let alice = keypair_from_suri("//Alice", "--payer")?;
    let bob = keypair_from_suri("//Bob", "--payer")?;
    let alice_id = alice.public_key().0;
    let keys = Keys::generate()?;
    let key = keys.identity_public();

    // --- register, paid by Alice
    let start_block = {
        let at = chain.client().at_current_block().await?;
        at.block_hash().0
    };
    let initial = balance_at(&chain, &alice_id, start_block).await?;
    let (seen, progress) = recorder();
    let outcome = chain
        .register(
            &alice,
            keys.identity_keypair(),
            client_registration(&keys),
            progress,
        )
        .await?;
    {
        let seen = seen
            .lock()
            .map_err(|_| anyhow::anyhow!("progress lock poisoned"))?;
        ensure!(
            matches!(seen.first(), Some(Progress::Submitted { .. })),
            "progress {seen:?}"
        );
        ensure!(
            seen.contains(&Progress::Validated),
            "no Validated: {seen:?}"
        );
        ensure!(
            seen.iter().any(|p| matches!(p, Progress::InBlock { .. })),
            "no InBlock: {seen:?}"
        );
        ensure!(
            seen.last()
                == Some(&Progress::Finalized {
                    block_hash: outcome.block_hash
                }),
            "progress {seen:?}"
        );
    }
    ensure!(
        outcome
            .events
            .iter()
            .any(|e| e == "PspIdentity.IdentityRegistered"),
        "events {:?}",
        outcome.events
    );
    let registered = balance_at(&chain, &alice_id, outcome.block_hash).await?;
    ensure!(
        registered.reserved == initial.reserved + DEPOSIT,
        "reserved {} -> {}: expected +{DEPOSIT}",
        initial.reserved,
        registered.reserved
    );
    let fee = outcome.fee_paid.context("no fee reported for register")?;
    ensure!(
        initial.free - registered.free == DEPOSIT + fee,
        "free fell by deposit + fee only"
    );

    // --- read it back by key and by id
    let view = chain
        .identity_by_key(&key, Some(outcome.block_hash))
        .await?
        .context("psp_identityByKey found nothing after register")?;
    check_view(&view, &keys, &alice_id)?;
    ensure!(
        view.deposit == DEPOSIT.to_string(),
        "deposit {}",
        view.deposit
    );
    ensure!(view.rotations == 0, "rotations {}", view.rotations);
    ensure!(
        view.status == IdentityStatus::Active,
        "status {:?}",
        view.status
    );
    ensure!(
        view.registered_at >= 1,
        "registered_at {}",
        view.registered_at
    );
    let by_id = chain
        .identity_by_id(&view.id, Some(outcome.block_hash))
        .await?;
    ensure!(
        by_id.as_ref() == Some(&view),
        "by id {by_id:?} != by key {view:?}"
    );
    // Best-block look-ups (no `at`) see it too.
    ensure!(
        chain.identity_by_key(&key, None).await?.is_some(),
        "best-block lookup"
    );
    // An id under another namespace names nothing; a key never registered is null.
    let other_id = IdString::new("peerstream", IdentityKind::Client, "other", key)?.to_string();
    ensure!(
        chain.identity_by_id(&other_id, None).await?.is_none(),
        "wrong-namespace id found"
    );
    ensure!(
        chain.identity_by_key(&[7; 32], None).await?.is_none(),
        "unknown key found"
    );
    // Malformed key hex is refused with invalid params (-32602).
    let raw: std::result::Result<Option<IdentityView>, _> = chain
        .rpc()
        .request("psp_identityByKey", rpc_params!["0x1234"])
        .await;
    match raw {
        Err(psp_client::subxt::rpcs::Error::User(e)) if e.code == -32602 => {}
        other => bail!("expected JSON-RPC error -32602 for a short key, got {other:?}"),
    }

    // --- the same key again: AlreadyRegistered, only the fee paid
    let failed = expect_identity_error(
        chain
            .register(
                &alice,
                keys.identity_keypair(),
                client_registration(&keys),
                print,
            )
            .await,
        IdentityError::AlreadyRegistered,
    )?;
    let mut state = only_fee_paid(&chain, &alice_id, registered, failed).await?;

    // --- a proof by the wrong key: BadProof, only the fee paid
    let fresh = Keys::generate()?;
    let wrong_proof = registration_proof(
        &chain.genesis_hash(),
        &alice_id,
        keys.identity_keypair(),
        &client_registration(&fresh),
    );
    let before = balance_at(&chain, &alice_id, state).await?;
    let failed = expect_identity_error(
        chain
            .register_with_proof(&alice, client_registration(&fresh), wrong_proof, print)
            .await,
        IdentityError::BadProof,
    )?;
    state = only_fee_paid(&chain, &alice_id, before, failed).await?;
    ensure!(chain
        .identity_by_key(&fresh.identity_public(), Some(state))
        .await?
        .is_none());

    // --- a proof made for another payer (Bob) but submitted by Alice: BadProof too
    let for_bob = registration_proof(
        &chain.genesis_hash(),
        &bob.public_key().0,
        fresh.identity_keypair(),
        &client_registration(&fresh),
    );
    let before = balance_at(&chain, &alice_id, state).await?;
    let failed = expect_identity_error(
        chain
            .register_with_proof(&alice, client_registration(&fresh), for_bob, print)
            .await,
        IdentityError::BadProof,
    )?;
    state = only_fee_paid(&chain, &alice_id, before, failed).await?;

    // --- Bob may not rotate Alice's identity: NotOwner, Bob pays only the fee
    let bob_id = bob.public_key().0;
    let rotated = keys.with_new_x25519();
    let bob_before = balance_at(&chain, &bob_id, state).await?;
    let failed = expect_identity_error(
        chain
            .rotate(
                &bob,
                keys.identity_keypair(),
                rotated.x25519_public(),
                None,
                print,
            )
            .await,
        IdentityError::NotOwner,
    )?;
    state = only_fee_paid(&chain, &bob_id, bob_before, failed).await?;

    // --- rotate the X25519 key
    let before = balance_at(&chain, &alice_id, state).await?;
    let outcome = chain
        .rotate(
            &alice,
            keys.identity_keypair(),
            rotated.x25519_public(),
            None,
            print,
        )
        .await?;
    ensure!(
        outcome
            .events
            .iter()
            .any(|e| e == "PspIdentity.KeysRotated"),
        "{:?}",
        outcome.events
    );
    let view = chain
        .identity_by_key(&key, Some(outcome.block_hash))
        .await?
        .context("identity vanished after rotate")?;
    check_view(&view, &rotated, &alice_id)?;
    ensure!(
        view.x25519 != hex0x(&keys.x25519_public()),
        "x25519 did not change"
    );
    ensure!(view.rotations == 1, "rotations {}", view.rotations);
    ensure!(
        view.deposit == DEPOSIT.to_string(),
        "deposit {}",
        view.deposit
    );
    let after_rotate = balance_at(&chain, &alice_id, outcome.block_hash).await?;
    ensure!(
        after_rotate.reserved == initial.reserved + DEPOSIT,
        "rotation moved the deposit"
    );
    let fee = outcome.fee_paid.context("no fee reported for rotate")?;
    ensure!(
        before.free - after_rotate.free == fee,
        "rotation cost more than its fee"
    );

    // --- a device checks an update signed by this identity, live on chain: accepted
    let updates = tempfile::tempdir()?;
    let run = check_update(url, &keys, updates.path()).await?;
    let answer: serde_json::Value =
        serde_json::from_str(&run.stdout).with_context(|| format!("check-update: {run:?}"))?;
    ensure!(
        run.code == Some(0) && answer["accepted"] == true,
        "a live publisher's update refused: {run:?}"
    );

    // --- revoke: status revoked, deposit back
    let outcome = chain.revoke(&alice, key, print).await?;
    ensure!(
        outcome
            .events
            .iter()
            .any(|e| e == "PspIdentity.IdentityRevoked"),
        "{:?}",
        outcome.events
    );
    let view = chain
        .identity_by_key(&key, Some(outcome.block_hash))
        .await?
        .context("a revoked identity stays as a tombstone")?;
    ensure!(
        matches!(view.status, IdentityStatus::Revoked { forced: false, at } if at >= view.registered_at),
        "status {:?}",
        view.status
    );
    ensure!(view.deposit == "0", "deposit after revoke {}", view.deposit);
    let revoked = balance_at(&chain, &alice_id, outcome.block_hash).await?;
    ensure!(
        revoked.reserved == initial.reserved,
        "reserved {} after revoke, {} before register",
        revoked.reserved,
        initial.reserved
    );
    let mut state = outcome.block_hash;

    // --- the same update, its publisher revoked: refused, saying so
    let run = check_update(url, &keys, updates.path()).await?;
    ensure!(
        run.code != Some(0) && run.stderr.contains("revoked"),
        "a revoked publisher's update: {run:?}"
    );

    // --- the revoked identity is dead: register, rotate, revoke all say IdentityRevoked
    let before = balance_at(&chain, &alice_id, state).await?;
    let failed = expect_identity_error(
        chain
            .register(
                &alice,
                keys.identity_keypair(),
                client_registration(&rotated),
                print,
            )
            .await,
        IdentityError::IdentityRevoked,
    )?;
    state = only_fee_paid(&chain, &alice_id, before, failed).await?;

    let before = balance_at(&chain, &alice_id, state).await?;
    let again = rotated.with_new_x25519();
    let failed = expect_identity_error(
        chain
            .rotate(
                &alice,
                keys.identity_keypair(),
                again.x25519_public(),
                None,
                print,
            )
            .await,
        IdentityError::IdentityRevoked,
    )?;
    state = only_fee_paid(&chain, &alice_id, before, failed).await?;

    let before = balance_at(&chain, &alice_id, state).await?;
    let failed = expect_identity_error(
        chain.revoke(&alice, key, print).await,
        IdentityError::IdentityRevoked,
    )?;
    state = only_fee_paid(&chain, &alice_id, before, failed).await?;

    let last = balance_at(&chain, &alice_id, state).await?;
    ensure!(
        last.reserved == initial.reserved,
        "reserved drifted: {last:?} vs {initial:?}"
    );
    Ok(())
}

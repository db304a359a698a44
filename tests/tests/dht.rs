//! End to end: the chain-checked DHT on `--chain local`.
//!
//! Alice, Bob and Charlie run the overlay; their node identities are registered on chain, so
//! each node's Kademlia routing table fills with the other two (from the chain's node list).
//! A client identity (registered by //Alice's account) then:
//! - publishes a presence record through Alice with `psp dht put` (Alice co-signs it as the
//!   publisher and replicates it); Charlie finds it with `psp dht get`;
//! - renews it (a higher sequence number, a new value); Bob's lookup returns the new one;
//! - survives a restart of Charlie: same chain database (no finalized block lost) and overlay
//!   identity, and the current record is found through him again;
//! - has records refused with their reason, put through Bob as raw signed records: a forged
//!   one (value changed after signing), an expired one, an oversized one and one whose owner
//!   is not registered;
//! - is revoked on chain: a new record is refused ("revoked"), and the stored one stops being
//!   served (lookups refuse it, stores purge it).
//!
//! Device data (issue 16, point 5): a device identity (kind device) publishes readings through
//! Alice (`psp device publish`, records of kind reading); a server's `psp device watch`
//! through Charlie prints each new reading that validates at the client, in order; the client
//! identity cannot publish a reading (readings belong to devices).

use anyhow::{bail, ensure, Result};
use psp_client::{
    chain::{keypair_from_suri, Chain, Progress},
    hex0x,
    keystore::{self, KdfParams, Keys},
    overlay::{self, NodeRpc},
};
use psp_e2e_tests::{
    client_registration, finalized_head, psp_json, psp_refused, psp_refuses_now, run_psp,
    run_scenario, start_local_network, wait_finalized, wait_for, wait_for_node_list,
    OverlayOptions, PspNode, PSP_TIMEOUT,
};
use psp_net::crypto::Sr25519Keypair;
use psp_net::dht::{RecordContent, RecordKind, SignedRecord};
use psp_net::driver::unix_now;
use std::collections::BTreeSet;
use std::time::Duration;

const TEST_TIMEOUT: Duration = Duration::from_secs(600);
const FINALITY_TIMEOUT: Duration = Duration::from_secs(240);
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(120);
/// The client identity's seed: the test signs raw records with it too.
const CLIENT_SEED: [u8; 32] = [0x5a; 32];

fn print(p: Progress) {
    eprintln!("  {p}");
}

/// `psp dht put` of `value` under the topic `e2e`, signed with the keystore, through `url`.
fn put_args<'a>(store: &'a str, pass: &'a str, value: &'a str, url: &'a str) -> [&'a str; 14] {
    [
        "dht",
        "put",
        "--keystore",
        store,
        "--passphrase-file",
        pass,
        "--topic",
        "e2e",
        "--value",
        value,
        "--ttl",
        "300",
        "--url",
        url,
    ]
}

/// A record owned by `owner`, published by `publisher`, with the publisher's signature left
/// for the publishing node to add; `edit` changes the content after the owner signed.
fn raw_record(
    owner: &Sr25519Keypair,
    publisher: [u8; 32],
    issued_at: u64,
    expires_at: u64,
    value: Vec<u8>,
    edit: impl FnOnce(&mut RecordContent),
) -> String {
    let mut content = RecordContent {
        kind: RecordKind::Presence,
        owner: owner.public(),
        topic: psp_client::dht::topic("e2e"),
        publisher,
        seq: 1,
        issued_at,
        expires_at,
        value,
    };
    let owner_sig = owner.sign(&content.owner_message());
    edit(&mut content);
    hex0x(
        &SignedRecord {
            content,
            owner_sig,
            publisher_sig: [0; 64],
        }
        .encode(),
    )
}

async fn scenario(nodes: &[PspNode], dir: &std::path::Path) -> Result<()> {
    let [alice, bob, charlie] = nodes else {
        bail!("expected three nodes");
    };
    let chain = Chain::connect(&alice.url()).await?;
    wait_finalized(&chain, 1, FINALITY_TIMEOUT).await?;

    // The three overlay identities on chain.
    let payer = keypair_from_suri("//Alice", "--payer")?;
    let mut node_ids = Vec::new();
    for node in nodes {
        let rpc = NodeRpc::connect(&node.url()).await?;
        let registered =
            overlay::register_node(&chain, &rpc, &payer, "peerstream", "relay", print).await?;
        node_ids.push(registered.key);
    }
    let want: BTreeSet<String> = node_ids.iter().map(|k| hex0x(k)).collect();
    for node in nodes {
        let c = Chain::connect(&node.url()).await?;
        wait_for_node_list(&c, &want, "registrations finalized", PROPAGATION_TIMEOUT).await?;
    }

    // A client identity, in a keystore for the CLI.
    let keys = Keys::from_secrets(CLIENT_SEED, [0x6b; 32])?;
    let registration = client_registration(&keys);
    chain
        .register(&payer, keys.identity_keypair(), registration, print)
        .await?;
    let store = dir.join("client.json");
    let pass = dir.join("pass");
    std::fs::write(&pass, "e2e passphrase")?;
    keystore::save(
        &store,
        &keys,
        "e2e passphrase",
        KdfParams::INSECURE_TEST,
        false,
    )?;
    let (store, pass) = (store.display().to_string(), pass.display().to_string());
    let owner = hex0x(&keys.identity_public());

    // Publish through Alice until the record reaches another node (routing tables fill
    // from the chain's node list every few seconds).
    let put = |value: &'static str| {
        let (store, pass, url) = (store.clone(), pass.clone(), alice.url());
        async move { psp_json(&put_args(&store, &pass, value, &url)).await }
    };
    let first = wait_for("a put replicated", PROPAGATION_TIMEOUT, || async {
        let v = put("hello-1").await.map_err(|e| e.to_string())?;
        Ok((v["replicas"].as_u64() >= Some(1)).then_some(v))
    })
    .await?;
    eprintln!("published through alice: {first}");
    let get = |url: String| {
        let owner = owner.clone();
        async move {
            psp_json(&[
                "dht", "get", "--owner", &owner, "--topic", "e2e", "--url", &url,
            ])
            .await
        }
    };
    let found = get(charlie.url()).await?;
    ensure!(
        found["value"] == hex0x(b"hello-1") && found["publisher"] == hex0x(&node_ids[0]),
        "charlie's lookup: {found:#}"
    );

    // Renewed: the higher sequence number wins everywhere.
    put("hello-2").await?;
    let renewed = wait_for("bob sees the renewal", PROPAGATION_TIMEOUT, || async {
        let v = get(bob.url()).await.map_err(|e| e.to_string())?;
        Ok((v["value"] == hex0x(b"hello-2")).then_some(v))
    })
    .await?;
    ensure!(
        renewed["seq"].as_u64() > found["seq"].as_u64(),
        "renewal seq {renewed:#}"
    );

    // A fault: Charlie restarts. His chain database and overlay identity persist (same node
    // id, no block lost), his routing table refills from the chain, and the current record is
    // served through him again.
    let charlie_rpc = NodeRpc::connect(&charlie.url()).await?;
    let id_before = charlie_rpc.overlay_info().await?.node_id;
    let (height_before, _) = finalized_head(&Chain::connect(&charlie.url()).await?).await?;
    charlie.restart().await?;
    let charlie_chain = Chain::connect(&charlie.url()).await?;
    let (height_after, _) = finalized_head(&charlie_chain).await?;
    ensure!(
        height_after >= height_before,
        "charlie restarted at finalized #{height_after}, had #{height_before}"
    );
    let id_after = NodeRpc::connect(&charlie.url())
        .await?
        .overlay_info()
        .await?
        .node_id;
    ensure!(
        id_after == id_before,
        "overlay id {id_before} became {id_after}"
    );
    let served = wait_for(
        "the record served through restarted charlie",
        PROPAGATION_TIMEOUT,
        || async {
            let v = get(charlie.url()).await.map_err(|e| e.to_string())?;
            Ok((v["value"] == hex0x(b"hello-2")).then_some(v))
        },
    )
    .await?;
    eprintln!(
        "charlie restarted (finalized #{height_before} -> #{height_after}, same overlay id) \
         and serves seq {} again",
        served["seq"]
    );

    // Refusals, put through Bob as raw records (Bob co-signs what names him as publisher).
    let signer = Sr25519Keypair::from_seed(&CLIENT_SEED);
    let bob_id = node_ids[1];
    let t = unix_now();
    let bob_url = bob.url();
    let refuse = |record: String, reason: &'static str| {
        let url = bob_url.clone();
        async move { psp_refused(&["dht", "put", "--record", &record, "--url", &url], reason).await }
    };
    refuse(
        raw_record(&signer, bob_id, t, t + 60, b"ok".to_vec(), |c| {
            c.value = b"forged".to_vec()
        }),
        "bad owner signature",
    )
    .await?;
    refuse(
        raw_record(&signer, bob_id, t - 100, t - 10, b"old".to_vec(), |_| {}),
        "expired",
    )
    .await?;
    refuse(
        raw_record(&signer, bob_id, t, t + 60, vec![7; 2_000], |_| {}),
        "exceeds the limit",
    )
    .await?;
    refuse(
        raw_record(&signer, bob_id, t, t + 86_400, b"x".to_vec(), |_| {}),
        "beyond the maximum lifetime",
    )
    .await?;
    let stranger = Sr25519Keypair::from_seed(&[0x77; 32]);
    refuse(
        raw_record(&stranger, bob_id, t, t + 60, b"x".to_vec(), |_| {}),
        "not registered",
    )
    .await?;

    // Device data: readings published by a device, watched by a server through another node.
    let device_keys = Keys::from_secrets([0x5d; 32], [0x6d; 32])?;
    let prepared = psp_client::identity::registration(
        &device_keys,
        psp_primitives::IdentityKind::Device,
        "peerstream",
        "sensors",
        None,
        &[],
    )?;
    chain
        .register(
            &payer,
            device_keys.identity_keypair(),
            prepared.registration,
            print,
        )
        .await?;
    let device_store = dir.join("device.json");
    keystore::save(
        &device_store,
        &device_keys,
        "e2e passphrase",
        KdfParams::INSECURE_TEST,
        false,
    )?;
    let device_store = device_store.display().to_string();
    let device = hex0x(&device_keys.identity_public());
    let (alice_url, charlie_url) = (alice.url(), charlie.url());
    let publish = |keystore: String, value: &'static str| {
        let (pass, url) = (pass.clone(), alice_url.clone());
        async move {
            psp_json(&[
                "device",
                "publish",
                "--keystore",
                &keystore,
                "--passphrase-file",
                &pass,
                "--topic",
                "temperature",
                "--value",
                value,
                "--url",
                &url,
            ])
            .await
        }
    };
    wait_for("a reading published", PROPAGATION_TIMEOUT, || async {
        let v = publish(device_store.clone(), "21.1 C")
            .await
            .map_err(|e| e.to_string())?;
        Ok((v["replicas"].as_u64() >= Some(1)).then_some(v))
    })
    .await?;
    let watch_args = [
        "device",
        "watch",
        &device,
        "--topic",
        "temperature",
        "--every",
        "1",
        "--count",
        "2",
        "--timeout",
        "90",
        "--url",
        &charlie_url,
    ]
    .map(String::from);
    let watching = tokio::spawn(async move {
        let args: Vec<&str> = watch_args.iter().map(String::as_str).collect();
        run_psp(&args, PSP_TIMEOUT).await
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    publish(device_store.clone(), "21.4 C").await?;
    let watched = watching.await??;
    ensure!(watched.code == Some(0), "device watch: {watched:?}");
    let readings: Vec<serde_json::Value> = watched
        .stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    ensure!(
        readings.len() == 2
            && readings[0]["text"] == "21.1 C"
            && readings[1]["text"] == "21.4 C"
            && readings.iter().all(|r| r["device"] == device.as_str())
            && readings[0]["seq"].as_u64() < readings[1]["seq"].as_u64(),
        "the server's readings: {readings:?}"
    );
    eprintln!(
        "the server watched {} readings through charlie",
        readings.len()
    );
    psp_refused(
        &[
            "device",
            "publish",
            "--keystore",
            &store,
            "--passphrase-file",
            &pass,
            "--topic",
            "temperature",
            "--value",
            "x",
            "--url",
            &alice_url,
        ],
        "of the wrong kind",
    )
    .await?;

    // Revoked on chain: refused from the next finalized block, and no longer served.
    chain.revoke(&payer, keys.identity_public(), print).await?;
    let put_again = put_args(&store, &pass, "hello-3", &bob_url);
    wait_for("a put refused as revoked", PROPAGATION_TIMEOUT, || {
        psp_refuses_now(&put_again, "revoked")
    })
    .await?;
    let charlie_url = charlie.url();
    let get_again = [
        "dht",
        "get",
        "--owner",
        &owner,
        "--topic",
        "e2e",
        "--url",
        &charlie_url,
    ];
    wait_for(
        "the revoked owner's record gone",
        PROPAGATION_TIMEOUT,
        || psp_refuses_now(&get_again, "no valid record"),
    )
    .await?;
    eprintln!("revoked owner's record refused and no longer served");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_chain_checked_replicated_renewed_and_refused() -> Result<()> {
    let nodes = start_local_network(
        &["alice", "bob", "charlie"],
        Some(OverlayOptions::default()),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    run_scenario(&nodes, TEST_TIMEOUT, scenario(&nodes, dir.path())).await
}

//! End to end: who may call the node's signing RPC, and the budget of network look-ups.
//!
//! Two `--dev` nodes with the overlay start side by side:
//! - `public` runs with `--rpc-methods safe`, as a node whose RPC faces the internet does
//!   (`--rpc-external` has the same effect on the methods). Every connection to it is
//!   untrusted in Substrate's sense, so the methods that sign with the node's
//!   keys are refused: `psp_overlayRegistration` (which would let the caller register the node's
//!   overlay identity under their own account) and `psp_dhtPut` of a record left for the node to
//!   co-sign. Safe methods still answer, and a flood of `psp_dhtGet` on one connection is cut
//!   off by the per-connection budget while a fresh connection is served.
//! - `operator` runs with the default RPC (loopback only, `--rpc-methods auto`): the operator
//!   on the same machine gets the signed registration, as `psp identity register-node`
//!   needs; its overlay identity comes from the secret file under its base path and is the
//!   same after a restart.

use anyhow::{bail, ensure, Context, Result};
use psp_client::{hex0x, overlay::NodeRpc, parse_hex};
use psp_e2e_tests::{run_scenario, wait_for, NodeOptions, OverlayOptions, PspNode};
use psp_net::crypto::Sr25519Keypair;
use psp_net::dht::{RecordContent, RecordKind, SignedRecord};
use psp_net::driver::unix_now;
use std::time::Duration;

const TEST_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a log line may take to reach the node's log file.
const LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// More concurrent look-ups than the per-connection burst (20).
const FLOOD: usize = 40;

fn dev_node(name: &str, extra_args: &[&str]) -> NodeOptions {
    let mut options = NodeOptions::dev();
    options.name = name.into();
    options.overlay = Some(OverlayOptions {
        seed: Some(format!("psp-e2e-{name}")),
        ..OverlayOptions::default()
    });
    options.wait_finalized = false;
    options.extra_args = extra_args.iter().map(|a| a.to_string()).collect();
    options
}

/// `Err` text of a call that must have been refused, checked for `needle`.
fn expect_refused<T: std::fmt::Debug>(
    what: &str,
    result: psp_client::Result<T>,
    needle: &str,
) -> Result<()> {
    match result {
        Ok(v) => bail!("{what} was served to a remote caller: {v:?}"),
        Err(e) => {
            let text = e.to_string();
            ensure!(
                text.contains(needle),
                "{what} refused, but not as {needle:?}: {text}"
            );
            Ok(())
        }
    }
}

/// A record owned by a fresh key, naming `publisher` and left for it to co-sign.
fn record_for_cosigning(publisher: [u8; 32]) -> String {
    let owner = Sr25519Keypair::from_seed(&[0x42; 32]);
    let now = unix_now();
    let content = RecordContent {
        kind: RecordKind::Presence,
        owner: owner.public(),
        topic: psp_client::dht::topic("rpc-policy"),
        publisher,
        seq: 1,
        issued_at: now,
        expires_at: now + 300,
        value: b"claim this node".to_vec(),
    };
    let owner_sig = owner.sign(&content.owner_message());
    hex0x(
        &SignedRecord {
            content,
            owner_sig,
            publisher_sig: [0; 64],
        }
        .encode(),
    )
}

async fn scenario(public: &PspNode, operator: &PspNode) -> Result<()> {
    let owner = [0x11_u8; 32];

    // The public node: signing methods refused, safe ones served.
    let remote = NodeRpc::connect(&public.url()).await?;
    let info = remote
        .overlay_info()
        .await
        .context("psp_overlayInfo is safe")?;
    expect_refused(
        "psp_overlayRegistration",
        remote
            .overlay_registration(&owner, "peerstream", "relay")
            .await,
        "unsafe",
    )?;
    let node_id: [u8; 32] = parse_hex(&info.node_id, "node id")?;
    expect_refused(
        "psp_dhtPut for co-signing",
        remote.dht_put_raw(&record_for_cosigning(node_id)).await,
        "unsafe",
    )?;
    wait_for("the refusal in the node's log", LOG_TIMEOUT, || async {
        let lines = public.log_lines_with(&["psp-rpc", "refused psp_overlayRegistration"]);
        Ok(lines.first().cloned())
    })
    .await?;

    // A flood of look-ups on one connection: the burst is served (found or not), the rest
    // is refused as rate limited; a new connection still gets its own budget.
    let key = [0x77_u8; 32];
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..FLOOD {
        let rpc = remote.clone();
        flood.spawn(async move { rpc.dht_get(&key).await.map(|_| ()) });
    }
    let mut limited = 0;
    while let Some(result) = flood.join_next().await {
        if matches!(result?, Err(e) if e.to_string().contains("rate limited")) {
            limited += 1;
        }
    }
    ensure!(
        (FLOOD - 25..FLOOD).contains(&limited),
        "{limited} of {FLOOD} look-ups were rate limited; expected all but the burst (20, \
         plus what refilled meanwhile)"
    );
    let fresh = NodeRpc::connect(&public.url()).await?;
    if let Err(e) = fresh.dht_get(&key).await {
        ensure!(
            !e.to_string().contains("rate limited"),
            "a new connection was rate limited: {e}"
        );
    }

    // The operator on the node's own machine gets the signed registration.
    let local = NodeRpc::connect(&operator.url()).await?;
    let signed = local
        .overlay_registration(&owner, "peerstream", "relay")
        .await
        .context("psp_overlayRegistration on the local RPC")?;
    let operator_info = local.overlay_info().await?;
    ensure!(
        hex0x(&signed.registration.key) == operator_info.node_id,
        "the registration is not for the node's own identity"
    );

    // The operator's node has no --overlay-seed: its identity comes from the secret file
    // under its base path, created on first start. Restarted, it has the same identity.
    operator.restart().await?;
    let after = NodeRpc::connect(&operator.url())
        .await?
        .overlay_info()
        .await?;
    ensure!(
        after.node_id == operator_info.node_id && after.onion_key == operator_info.onion_key,
        "overlay identity changed across a restart: {} -> {}",
        operator_info.node_id,
        after.node_id
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_rpc_is_refused_to_remote_callers_and_lookups_are_rate_limited() -> Result<()> {
    // `--rpc-methods safe` rather than `--rpc-external`: both make the RPC server mark every
    // connection as untrusted (`DenyUnsafe::Yes`), but `--rpc-external` binds 0.0.0.0 and
    // [::], where the harness's free port can be taken by another test's loopback socket and
    // the server then silently moves to a random port.
    let public = PspNode::spawn(dev_node("public", &["--rpc-methods", "safe"]))?;
    let mut operator = dev_node("operator", &[]);
    if let Some(overlay) = operator.overlay.as_mut() {
        overlay.seed = None;
    }
    let operator = PspNode::spawn(operator)?;
    public.wait_ready(false).await?;
    operator.wait_ready(false).await?;
    let nodes = [public, operator];
    run_scenario(&nodes, TEST_TIMEOUT, scenario(&nodes[0], &nodes[1])).await
}

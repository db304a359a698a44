//! End to end: the discovery directory on `--chain local`, with 8-second directory periods.
//!
//! Six nodes run the overlay. Alice, Bob, Charlie, Dave and Eve each register their node
//! identity, bond 5,000 PSP and stand as discovery nodes (each with its own account, through
//! the `psp` CLI); Ferdie's node stays a plain relay. Once the five are elected:
//! - the directory forms: `psp directory show` (which checks the signatures itself against
//!   the discovery set elected on chain) shows all five signatures on a directory listing the
//!   six nodes, through a discovery node and through Ferdie, who only proxies it;
//! - with Dave and Eve stopped, later directories still form, with the three live signatures
//!   (the threshold of five); Dave restarted mid-period signs the next ones again (four);
//! - a conflicting directory signed with Alice's node key for the same period, handed to Bob,
//!   makes Bob report Alice's equivocation; Bob's node submits the evidence to the chain by
//!   itself (an unsigned transaction signed with its node key), which slashes Alice's bond by
//!   10% and removes her from the role; `psp stake report-equivocation` of the same evidence
//!   is then refused as already reported.

use anyhow::{bail, ensure, Context, Result};
use psp_client::{chain::Chain, hex0x, overlay::NodeRpc, psp_primitives::staking::Role};
use psp_e2e_tests::{
    browser::dump_dom, dev_account, free_port, overlay_key_seed, run_psp, start_local_network_with,
    wait_finalized, wait_for, OverlayOptions, PspNode, PSP_TIMEOUT,
};
use psp_net::crypto::Sr25519Keypair;
use psp_net::directory::SignedDirectory;
use std::time::Duration;

const TEST_TIMEOUT: Duration = Duration::from_secs(900);
const FINALITY_TIMEOUT: Duration = Duration::from_secs(240);
/// Election at the next epoch boundary (30 s epochs), with room.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(150);
/// A few 8-second directory periods.
const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(120);
const DISCOVERY: [&str; 5] = ["alice", "bob", "charlie", "dave", "eve"];

async fn psp_ok(args: Vec<String>) -> Result<String> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    psp_e2e_tests::psp_ok(&refs).await
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Registers the node at `node_url`, bonds 5,000 and stands for discovery, as `payer`.
async fn stand_for_discovery(node_url: String, chain_url: String, payer: String) -> Result<()> {
    let common = ["--payer", payer.as_str(), "--url", chain_url.as_str()];
    psp_ok(args(
        &[
            &["identity", "register-node", "--node-url", &node_url][..],
            &common,
        ]
        .concat(),
    ))
    .await?;
    psp_ok(args(
        &[&["stake", "bond", "--amount", "5000"][..], &common].concat(),
    ))
    .await?;
    psp_ok(args(
        &[
            &[
                "stake",
                "candidate",
                "--role",
                "discovery",
                "--node-url",
                &node_url,
            ][..],
            &common,
        ]
        .concat(),
    ))
    .await?;
    eprintln!("{payer} stands for discovery with {node_url}");
    Ok(())
}

/// `psp directory show` through `url`, parsed; `None` while no directory is held.
async fn show(url: &str) -> Result<Option<serde_json::Value>, String> {
    let run = run_psp(&["directory", "show", "--url", url], PSP_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if run.code != Some(0) {
        return Err(run.stderr);
    }
    serde_json::from_str(&run.stdout)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The text of the element with `id` in a dumped DOM (`None` if absent).
fn element_text<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let open = start + dom[start..].find('>')? + 1;
    let close = open + dom[open..].find('<')?;
    Some(&dom[open..close])
}

/// Alice's status page in headless Chromium shows what the chain and the overlay say: her
/// node, elected for discovery, Alice's bond of 5,000 PSP, and the directory with its six
/// nodes and five signatures; no errors; the chart has its two series. With
/// `PSP_STATUS_SCREENSHOT=<file.png>` it also saves a screenshot (the README's).
async fn status_page_shows_the_node(alice: &PspNode, status_port: u16) -> Result<()> {
    let url = format!("http://127.0.0.1:{status_port}/");
    let node = NodeRpc::connect(&alice.url())
        .await?
        .overlay_info()
        .await?
        .node_id;
    let mut extra = vec!["--window-size=1200,900".to_string()];
    if let Some(file) = std::env::var_os("PSP_STATUS_SCREENSHOT") {
        extra.push(format!("--screenshot={}", file.to_string_lossy()));
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    // Chromium under load may hand back an empty or half-filled DOM: load the page again until
    // its script has filled in the node (each load is a fresh browser).
    let dom = wait_for(
        "alice's status page filled in",
        DIRECTORY_TIMEOUT,
        || async {
            let dom = dump_dom(&url, Duration::from_secs(12), &extra)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let filled = element_text(&dom, "node-id").is_some_and(|n| n.starts_with("0x"));
            if filled {
                Ok(Some(dom))
            } else {
                Err(format!(
                    "page not filled in yet ({} bytes of DOM)",
                    dom.len()
                ))
            }
        },
    )
    .await?;
    let field = |id: &str| element_text(&dom, id).unwrap_or("<missing>").to_string();
    ensure!(
        field("node-id") == node,
        "node {} in\n{dom}",
        field("node-id")
    );
    ensure!(
        field("roles").contains("discovery"),
        "roles {}",
        field("roles")
    );
    ensure!(
        field("owner") == "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
        "owner {}",
        field("owner")
    );
    ensure!(field("stake") == "5,000 PSP", "stake {}", field("stake"));
    ensure!(
        field("directory-period").parse::<u64>().is_ok(),
        "period {}",
        field("directory-period")
    );
    ensure!(
        field("directory-signatures") == "5 of 5 (threshold 3)",
        "signatures {}",
        field("directory-signatures")
    );
    ensure!(
        dom.matches("class=\"directory-entry\"").count() == 6,
        "entries in\n{dom}"
    );
    ensure!(
        field("error").is_empty(),
        "the page shows errors: {}",
        field("error")
    );
    ensure!(
        dom.contains("data-series=\"circuits\"") && dom.contains("data-series=\"refusals\""),
        "no chart in\n{dom}"
    );
    eprintln!("alice's status page shows her node, role, bond and the signed directory");
    Ok(())
}

async fn scenario(nodes: &mut [PspNode], status_port: u16) -> Result<()> {
    ensure!(nodes.len() == 6, "expected six nodes");
    let url = nodes[0].url();
    let chain = Chain::connect(&url).await?;
    wait_finalized(&chain, 1, FINALITY_TIMEOUT).await?;

    // Five discovery candidates, in parallel (each its own account).
    let mut stands = tokio::task::JoinSet::new();
    for (name, node) in DISCOVERY.iter().zip(nodes.iter()) {
        stands.spawn(stand_for_discovery(
            node.url(),
            url.clone(),
            dev_account(name),
        ));
    }
    while let Some(done) = stands.join_next().await {
        done.context("stand task")??;
    }
    // Ferdie's node registered too (a plain relay in the directory).
    psp_ok(args(&[
        "identity",
        "register-node",
        "--node-url",
        &nodes[5].url(),
        "--payer",
        "//Ferdie",
        "--url",
        &url,
    ]))
    .await?;

    let elected = wait_for("five discovery nodes elected", ELECTION_TIMEOUT, || async {
        let set = chain
            .staking_elected(Role::Discovery, None)
            .await
            .map_err(|e| e.to_string())?;
        Ok((set.len() == 5).then_some(set))
    })
    .await?;
    eprintln!("discovery set elected: {} nodes", elected.len());

    // The directory forms with all five signatures and lists all six nodes.
    let full = wait_for(
        "a directory signed by all five",
        DIRECTORY_TIMEOUT,
        || async {
            let d = show(&url).await?;
            Ok(d.filter(|d| {
                d["verifiedSignatures"] == 5 && d["entries"].as_array().map(Vec::len) == Some(6)
            }))
        },
    )
    .await?;
    let period = full["period"].as_u64().context("period")?;
    ensure!(
        full["requiredSignatures"] == 3 && full["trustedSet"] == "chain",
        "{full:#}"
    );
    let discovery_entries = full["entries"]
        .as_array()
        .context("entries")?
        .iter()
        .filter(|e| {
            e["flags"]
                .as_array()
                .is_some_and(|f| f.contains(&"discovery".into()))
        })
        .count();
    ensure!(discovery_entries == 5, "flags in {full:#}");
    eprintln!("directory of period {period}: 6 nodes, 5 signatures");
    status_page_shows_the_node(&nodes[0], status_port).await?;
    // Ferdie is no discovery node: he proxies a directory he fetched and checked.
    let proxied = wait_for(
        "ferdie proxying the directory",
        DIRECTORY_TIMEOUT,
        || async {
            Ok(show(&nodes[5].url())
                .await?
                .filter(|d| d["period"].as_u64() >= Some(period)))
        },
    )
    .await?;
    ensure!(
        proxied["verifiedSignatures"].as_u64() >= Some(3),
        "{proxied:#}"
    );

    // Two of five down: later directories still form, with the three live signatures.
    nodes[3].stop();
    nodes[4].stop();
    let later = wait_for(
        "a directory after two discovery nodes stopped",
        DIRECTORY_TIMEOUT,
        || async {
            Ok(show(&url)
                .await?
                .filter(|d| d["period"].as_u64() > Some(period + 1)))
        },
    )
    .await?;
    ensure!(later["verifiedSignatures"] == 3, "{later:#}");
    eprintln!(
        "with dave and eve down: directory of period {} signed by 3 of 5",
        later["period"]
    );

    // Dave restarts in the middle of a period: directories keep forming, and once his node is
    // back (same base path, same overlay identity) it signs them again.
    let later_period = later["period"].as_u64().context("period")?;
    nodes[3].restart().await?;
    let rejoined = wait_for(
        "a directory signed by dave again after his restart",
        DIRECTORY_TIMEOUT,
        || async {
            Ok(show(&url).await?.filter(|d| {
                d["period"].as_u64() > Some(later_period) && d["verifiedSignatures"] == 4
            }))
        },
    )
    .await?;
    eprintln!(
        "dave restarted: directory of period {} signed by 4 of 5",
        rejoined["period"]
    );

    // Alice signs a second, different directory for the same period; Bob notices.
    let alice_key = Sr25519Keypair::from_seed(&overlay_key_seed("psp-e2e-alice"));
    let alice_id = NodeRpc::connect(&url).await?.overlay_info().await?.node_id;
    ensure!(
        hex0x(&alice_key.public()) == alice_id,
        "harness derives another key"
    );
    let bob = NodeRpc::connect(&nodes[1].url()).await?;
    let held = bob.directory().await?.context("bob's directory")?;
    let genuine =
        SignedDirectory::decode(&psp_client::parse_hex_vec(&held.directory, "directory")?)?;
    let mut conflicting = SignedDirectory::new({
        let mut d = genuine.directory.clone();
        d.entries.retain(|e| hex0x(&e.node.0) != alice_id);
        d
    });
    conflicting.sign(&alice_key, &chain.genesis_hash());
    // One signature is below the threshold: refused as a directory, but the signature counts.
    let submitted = bob.directory_submit(&hex0x(&conflicting.encode())).await;
    ensure!(
        submitted.is_err(),
        "a one-signature directory must be refused"
    );
    let equivocations = wait_for(
        "bob reporting alice's equivocation",
        DIRECTORY_TIMEOUT,
        || async {
            let list = bob
                .directory_equivocations()
                .await
                .map_err(|e| e.to_string())?;
            Ok((!list.is_empty()).then_some(list))
        },
    )
    .await?;
    ensure!(equivocations[0].offender == alice_id, "{equivocations:?}");

    // Bob's node reports it to the chain by itself (an unsigned transaction signed with its
    // node key): Alice's bond is slashed by 10% with no person acting.
    let alice_account = psp_client::chain::keypair_from_suri("//Alice", "account")?
        .public_key()
        .0;
    let ledger = wait_for("alice's bond slashed", DIRECTORY_TIMEOUT, || async {
        let ledger = chain
            .staking_ledger(&alice_account)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("alice's ledger is gone")?;
        Ok((ledger.active == "4500000000000000").then_some(ledger))
    })
    .await?;
    ensure!(
        !ledger.roles.contains(&Role::Discovery),
        "after the report: {ledger:?}"
    );
    // A person reporting the same evidence now is refused: it was punished already.
    let refused = run_psp(
        &[
            "stake",
            "report-equivocation",
            "--evidence",
            &equivocations[0].evidence,
            "--payer",
            "//Ferdie",
            "--url",
            &url,
        ],
        PSP_TIMEOUT,
    )
    .await?;
    ensure!(
        refused.code != Some(0) && refused.stderr.contains("AlreadyReported"),
        "a second report must be refused as already reported: {}",
        refused.stderr
    );
    eprintln!(
        "alice's equivocation reported: bond slashed to 4,500 PSP, out of the discovery role"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_forms_survives_two_down_and_equivocation_is_slashed() -> Result<()> {
    let overlay = OverlayOptions {
        directory_timing: Some((8, 3)),
        ..OverlayOptions::default()
    };
    let status_port = free_port()?;
    let mut nodes = start_local_network_with(
        &["alice", "bob", "charlie", "dave", "eve", "ferdie"],
        Some(overlay),
        |options| {
            if options.name == "alice" {
                options
                    .extra_args
                    .extend(["--status-port".to_string(), status_port.to_string()]);
            }
        },
    )
    .await?;
    let outcome = tokio::time::timeout(TEST_TIMEOUT, scenario(&mut nodes, status_port)).await;
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => bail!("{e:#}\n{}", tails(&nodes)),
        Err(_) => bail!("scenario timed out\n{}", tails(&nodes)),
    }
}

fn tails(nodes: &[PspNode]) -> String {
    nodes
        .iter()
        .map(|n| format!("--- {} log tail ---\n{}", n.name(), n.log_tail(30)))
        .collect::<Vec<_>>()
        .join("\n")
}

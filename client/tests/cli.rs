//! The `psp` binary as a user meets it: outputs, exit codes, and error messages that say what
//! to do. Nothing here needs a node; unreachable URLs stand in for one.

use std::{path::Path, process::Command};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn psp(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_psp"));
    cmd.args(args)
        .env_remove("PSP_PASSPHRASE")
        .env_remove("PSP_PAYER")
        .env_remove("PSP_URL")
        .env_remove("PSP_MESSAGING_SOCKET")
        .env("PSP_KEYSTORE_TEST_KDF", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run psp");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn generate_prints_keys_and_id_then_show_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("id.json");
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "hunter2\n").unwrap();

    let gen = psp(
        &[
            "key",
            "generate",
            "--out",
            path(&ks),
            "--passphrase-file",
            path(&pass),
        ],
        &[],
    );
    assert_eq!(gen.code, Some(0), "stderr: {}", gen.stderr);
    assert!(
        gen.stdout.contains("sr25519 public key: 0x"),
        "{}",
        gen.stdout
    );
    assert!(
        gen.stdout.contains("x25519 public key:  0x"),
        "{}",
        gen.stdout
    );
    let id_line = gen
        .stdout
        .lines()
        .find(|l| l.starts_with("id:"))
        .expect("id line");
    assert!(id_line.contains("peerstream.client.account."), "{id_line}");

    // Without a passphrase: public data only, same output.
    let show = psp(&["key", "show", "--keystore", path(&ks)], &[]);
    assert_eq!(show.code, Some(0), "stderr: {}", show.stderr);
    assert_eq!(show.stdout, gen.stdout);

    // With the right passphrase from the environment: verified.
    let show = psp(
        &["key", "show", "--keystore", path(&ks)],
        &[("PSP_PASSPHRASE", "hunter2")],
    );
    assert_eq!(show.code, Some(0), "stderr: {}", show.stderr);
    assert!(show.stderr.contains("verified"), "{}", show.stderr);

    // Another id kind and namespace for the same key.
    let show = psp(
        &[
            "key",
            "show",
            "--keystore",
            path(&ks),
            "--kind",
            "device",
            "--app",
            "chat",
        ],
        &[],
    );
    assert!(
        show.stdout
            .contains("id:                 peerstream.device.chat."),
        "{}",
        show.stdout
    );
}

#[test]
fn errors_exit_1_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("id.json");
    let ks_s = path(&ks);

    let no_pass = psp(&["key", "generate", "--out", ks_s], &[]);
    assert_eq!(no_pass.code, Some(1));
    assert!(
        no_pass
            .stderr
            .contains("--passphrase-file FILE or set PSP_PASSPHRASE"),
        "{}",
        no_pass.stderr
    );
    assert!(!ks.exists(), "nothing written without a passphrase");

    let env = [("PSP_PASSPHRASE", "right")];
    assert_eq!(psp(&["key", "generate", "--out", ks_s], &env).code, Some(0));

    let again = psp(&["key", "generate", "--out", ks_s], &env);
    assert_eq!(again.code, Some(1));
    assert!(
        again.stderr.contains("already exists: pass --force"),
        "{}",
        again.stderr
    );
    let forced = psp(&["key", "generate", "--out", ks_s, "--force"], &env);
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);

    let wrong = psp(
        &["key", "show", "--keystore", ks_s],
        &[("PSP_PASSPHRASE", "wrong")],
    );
    assert_eq!(wrong.code, Some(1));
    assert!(
        wrong.stderr.contains("wrong passphrase for keystore"),
        "{}",
        wrong.stderr
    );

    let bad_ns = psp(
        &[
            "identity",
            "register",
            "--keystore",
            ks_s,
            "--kind",
            "client",
            "--namespace",
            "Bad!",
            "--app",
            "a",
        ],
        &env,
    );
    assert_eq!(bad_ns.code, Some(1));
    assert!(
        bad_ns.stderr.contains("namespaces are 1-32 characters"),
        "{}",
        bad_ns.stderr
    );

    let bad_key = psp(
        &[
            "identity",
            "show",
            "--key",
            "0x12",
            "--url",
            "ws://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(bad_key.code, Some(1));
    let unreachable = psp(
        &[
            "identity",
            "show",
            "--keystore",
            ks_s,
            "--url",
            "ws://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(unreachable.code, Some(1));
    assert!(
        unreachable.stderr.contains("Is psp-node running"),
        "{}",
        unreachable.stderr
    );

    let usage = psp(&["identity", "show", "--url", "ws://127.0.0.1:1"], &[]);
    assert_eq!(usage.code, Some(1), "usage errors exit 1 too");
    assert!(usage.stderr.contains("--keystore"), "{}", usage.stderr);
    assert_eq!(psp(&["--help"], &[]).code, Some(0));

    let bad_payer = psp(
        &[
            "identity",
            "revoke",
            "--keystore",
            ks_s,
            "--payer",
            "not a uri at all",
            "--url",
            "ws://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(bad_payer.code, Some(1));
    assert!(
        bad_payer.stderr.contains("invalid secret URI for --payer"),
        "{}",
        bad_payer.stderr
    );
}

#[test]
fn circuit_and_register_node_errors_say_what_to_do() {
    // Bad input is refused before any connection.
    let bad_via = psp(
        &[
            "circuit",
            "build",
            "--via",
            "alice",
            "--url",
            "ws://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(bad_via.code, Some(1));
    assert!(
        bad_via.stderr.contains("invalid --via") && bad_via.stderr.contains("node key"),
        "{}",
        bad_via.stderr
    );
    let zero_rate = psp(
        &[
            "circuit",
            "echo",
            "--rate",
            "0",
            "--bytes",
            "10",
            "--url",
            "ws://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(zero_rate.code, Some(1));
    assert!(zero_rate.stderr.contains("--rate"), "{}", zero_rate.stderr);

    // An unreachable chain is named.
    let unreachable = psp(&["circuit", "build", "--url", "ws://127.0.0.1:1"], &[]);
    assert_eq!(unreachable.code, Some(1));
    assert!(
        unreachable.stderr.contains("Is psp-node running"),
        "{}",
        unreachable.stderr
    );

    // register-node needs a payer and a node URL; a bad payer is caught before connecting.
    let no_payer = psp(
        &[
            "identity",
            "register-node",
            "--node-url",
            "ws://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(no_payer.code, Some(1));
    assert!(no_payer.stderr.contains("--payer"), "{}", no_payer.stderr);
    let bad_payer = psp(
        &[
            "identity",
            "register-node",
            "--node-url",
            "ws://127.0.0.1:1",
            "--payer",
            "not a uri at all",
            "--url",
            "ws://127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(bad_payer.code, Some(1));
    assert!(
        bad_payer.stderr.contains("invalid secret URI for --payer"),
        "{}",
        bad_payer.stderr
    );

    let help = psp(&["circuit", "echo", "--help"], &[]);
    assert_eq!(help.code, Some(0));
    for flag in ["--hops", "--via", "--bytes", "--rate", "--url"] {
        assert!(
            help.stdout.contains(flag),
            "{flag} missing: {}",
            help.stdout
        );
    }
}

#[test]
fn messaging_commands_explain_a_missing_agent() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let send = psp(
        &[
            "messaging",
            "send",
            "peerstream.client.account.x",
            "--text",
            "hi",
            "--socket",
            path(&socket),
        ],
        &[],
    );
    assert_eq!(send.code, Some(1));
    assert!(
        send.stderr.contains("is `psp messaging agent` running"),
        "{}",
        send.stderr
    );
    let inbox = psp(&["messaging", "inbox"], &[]);
    assert_eq!(inbox.code, Some(1));
    assert!(
        inbox.stderr.contains("give the agent's --socket"),
        "{}",
        inbox.stderr
    );
    let both = psp(
        &["messaging", "send", "x", "--text", "a", "--file", "f"],
        &[],
    );
    assert_eq!(both.code, Some(1), "--text and --file conflict");
    let agent = psp(
        &[
            "messaging",
            "agent",
            "--keystore",
            path(&dir.path().join("missing.json")),
            "--url",
            "ws://127.0.0.1:1",
        ],
        &[("PSP_PASSPHRASE", "x")],
    );
    assert_eq!(agent.code, Some(1));
    assert!(
        agent.stderr.contains("opening the keystore"),
        "{}",
        agent.stderr
    );
}

#[test]
fn contact_offers_are_printed_and_bad_ones_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("id.json");
    let pass = dir.path().join("pass");
    let book = dir.path().join("book.json");
    std::fs::write(&pass, "hunter2\n").unwrap();
    let gen = psp(
        &[
            "key",
            "generate",
            "--out",
            path(&ks),
            "--passphrase-file",
            path(&pass),
        ],
        &[],
    );
    assert_eq!(gen.code, Some(0), "stderr: {}", gen.stderr);

    let offer = psp(
        &[
            "contact",
            "offer",
            "--keystore",
            path(&ks),
            "--passphrase-file",
            path(&pass),
            "--presence-hint",
            &format!("0x{}", "ab".repeat(32)),
        ],
        &[],
    );
    assert_eq!(offer.code, Some(0), "stderr: {}", offer.stderr);
    let text = offer.stdout;
    assert!(
        text.starts_with("-----BEGIN PSP CONTACT OFFER-----\n"),
        "{text}"
    );
    assert!(
        text.ends_with("-----END PSP CONTACT OFFER-----\n"),
        "{text}"
    );
    assert!(text
        .lines()
        .all(|l| l.len() <= 64 || l.starts_with("-----")));

    let add = |file: &Path| {
        psp(
            &[
                "contact",
                "add",
                "--book",
                path(&book),
                "--name",
                "me",
                "--url",
                "ws://127.0.0.1:1",
                path(file),
            ],
            &[],
        )
    };
    let write = |name: &str, body: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, body).unwrap();
        file
    };
    let lines: Vec<&str> = text.lines().collect();
    // One base64 character changed in the middle of the body: forged or malformed.
    let mut forged: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let c = if forged[2].starts_with('A') { "B" } else { "A" };
    forged[2].replace_range(0..1, c);
    let cases = [
        (write("forged", &(forged.join("\n") + "\n")), "offer"),
        (write("truncated", &lines[..2].join("\n")), "truncated"),
        (
            write("pgp", &text.replace("PSP CONTACT OFFER", "PGP MESSAGE")),
            "not a PSP contact offer",
        ),
    ];
    for (file, words) in &cases {
        let run = add(file);
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        assert!(run.stderr.contains(words), "{words}: {}", run.stderr);
        assert!(!book.exists(), "nothing is stored");
    }
    // A good offer still needs the chain: unreachable node, nothing stored.
    let run = add(&write("good", &text));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
    assert!(!book.exists());

    let list = psp(&["contact", "list", "--book", path(&book)], &[]);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    assert_eq!(list.stdout.trim(), "[]");
    let fp = psp(&["contact", "fingerprint", "--keystore", path(&ks)], &[]);
    assert_eq!(fp.code, Some(0), "{}", fp.stderr);
    assert_eq!(fp.stdout.trim().split(' ').count(), 6, "{}", fp.stdout);
    let missing = psp(&["contact", "remove", "--book", path(&book), "nobody"], &[]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("no contact named"),
        "{}",
        missing.stderr
    );
}

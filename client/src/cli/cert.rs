//! `psp cert`: access certificates. `request` proves possession of the keystore's identity
//! key to an elected authority node and gets a short-lived certificate; `show` has a node
//! verify a certificate against the elected authorities and the chain.

use std::path::PathBuf;

use clap::Subcommand;
use psp_client::{Error, Result};

use super::common::{print_json, NodeArgs, PassArgs};

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Prove possession of the keystore's identity key to an elected authority node and get a
    /// short-lived certificate (JSON on stdout; the `certificate` field is what you present).
    Request {
        /// The keystore holding the identity key.
        #[arg(long)]
        keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// Also write the certificate (hex) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The authority node's WebSocket RPC endpoint.
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Verify a certificate against the elected authorities and the chain as the node at
    /// `--url` sees them now (JSON on stdout; exit code 1 with the reason if it is refused).
    Show {
        /// The certificate as hex, or `@FILE` to read it from a file.
        certificate: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// Runs a `psp cert` command.
pub async fn run(cmd: CertCommand) -> Result<()> {
    match cmd {
        CertCommand::Request {
            keystore,
            pass,
            out,
            node,
        } => {
            let keys = pass.open(&keystore)?;
            let view = node.rpc().await?.request_certificate(&keys).await?;
            if let Some(out) = out {
                std::fs::write(&out, &view.certificate).map_err(|source| Error::Io {
                    path: out.clone(),
                    source,
                })?;
                eprintln!("wrote certificate {}", out.display());
            }
            print_json(&view)
        }
        CertCommand::Show { certificate, node } => {
            let text = certificate_text(certificate)?;
            print_json(&node.rpc().await?.verify_certificate(&text).await?)
        }
    }
}

/// The certificate argument: hex as given, or the contents of the file named by `@FILE`.
fn certificate_text(arg: String) -> Result<String> {
    match arg.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file).map_err(|source| Error::Io {
            path: file.into(),
            source,
        }),
        None => Ok(arg),
    }
}

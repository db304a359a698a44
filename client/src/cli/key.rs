//! `psp key`: create keystores and read them. `generate` writes a fresh identity key and
//! X25519 key into a new passphrase-encrypted file; `show` prints a keystore's public keys
//! and id string, verifying the file when a passphrase is given. Neither touches the network.

use std::{fmt::Display, path::PathBuf};

use clap::{Args, Subcommand};
use psp_client::{
    chain::ss58,
    hex0x,
    keystore::{self, KdfParams, Keys, PublicKeys},
    Result,
};
use psp_primitives::IdString;

use super::common::{Kind, PassArgs};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a fresh identity key and X25519 key into a new keystore file.
    Generate {
        /// The keystore file to create (mode 0600).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// Overwrite an existing keystore (its keys are lost).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        id: IdArgs,
        /// Cheap key derivation for throwaway test keystores (also: PSP_KEYSTORE_TEST_KDF=1).
        #[arg(long, hide = true)]
        insecure_test_kdf: bool,
    },
    /// Print a keystore's public keys and id string (the passphrase, if given, verifies them).
    Show {
        /// The keystore file.
        #[arg(long)]
        keystore: PathBuf,
        /// A file holding the passphrase; with it (or PSP_PASSPHRASE) the file is also decrypted
        /// and checked.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        id: IdArgs,
    },
}

// The id string to print next to the keys.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// Network namespace of the printed id string.
    #[arg(long, default_value = "peerstream")]
    namespace: String,
    /// Application namespace of the printed id string.
    #[arg(long, default_value = "account")]
    app: String,
    /// Kind of the printed id string.
    #[arg(long, value_enum, default_value_t = Kind::Client)]
    kind: Kind,
}

impl IdArgs {
    /// The id string `public` has under these namespaces and kind (checks the namespaces).
    fn id_string(&self, public: &PublicKeys) -> Result<IdString> {
        public.id_string(&self.namespace, self.kind.into(), &self.app)
    }
}

/// Runs a `psp key` command.
pub fn run(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Generate {
            out,
            pass,
            force,
            id,
            insecure_test_kdf,
        } => {
            let passphrase = pass.passphrase()?;
            let params = if insecure_test_kdf {
                KdfParams::INSECURE_TEST
            } else {
                KdfParams::from_env()
            };
            // Validate the printed id's namespaces before writing anything.
            let keys = Keys::generate()?;
            let public = keys.public();
            let id_string = id.id_string(&public)?;
            keystore::save(&out, &keys, &passphrase, params, force)?;
            eprintln!("wrote keystore {}", out.display());
            print_public(&public, &id_string);
            Ok(())
        }
        KeyCommand::Show {
            keystore: path,
            passphrase_file,
            id,
        } => {
            let public = keystore::load_public(&path)?;
            match keystore::read_passphrase_if_given(passphrase_file.as_deref())? {
                Some(passphrase) => {
                    keystore::load(&path, &passphrase)?;
                    eprintln!("keystore {} opened and verified", path.display());
                }
                None => eprintln!(
                    "public keys read without decrypting (give a passphrase to verify the file)"
                ),
            }
            print_public(&public, &id.id_string(&public)?);
            Ok(())
        }
    }
}

fn print_public(public: &PublicKeys, id: &impl Display) {
    println!("sr25519 public key: {}", hex0x(&public.sr25519));
    println!("sr25519 account:    {}", ss58(&public.sr25519));
    println!("x25519 public key:  {}", hex0x(&public.x25519));
    println!("id:                 {id}");
}

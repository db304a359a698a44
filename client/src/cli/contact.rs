//! `psp contact`: contact offers and the contact book. `offer` prints a signed
//! `PSP CONTACT OFFER` block for one's identity; `add` checks an offer (signature, expiry,
//! the identity live on chain with the same announcement key) and stores it under a name;
//! `list`, `remove` and `fingerprint` read and edit the book. The work is done by
//! `psp_client::contacts`.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use psp_client::contacts::{
    book::Book,
    fingerprint::{key_fingerprint, safety_number},
    offer::{self, OfferBody, UncheckedOffer, MAX_ARMORED_LEN},
    unix_now, ContactError,
};
use psp_client::{keystore, parse_hex, Error, Result};
use psp_primitives::IdentityKind;

use super::common::{print_json, NodeArgs, PassArgs};

/// Seven days, the default validity of an offer.
const DEFAULT_EXPIRES_IN: u64 = 7 * 24 * 3600;

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Print a signed contact offer for the keystore's identity (give it to the other side
    /// by any channel; it holds only public keys).
    Offer {
        /// The keystore of the identity to offer.
        #[arg(long)]
        keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// Seconds the offer stays valid (at most a year).
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_EXPIRES_IN)]
        expires_in: u64,
        /// A public presence node where the identity can be found, as its node key (0x hex).
        #[arg(long, value_name = "NODE_KEY")]
        presence_hint: Option<String>,
        /// Network namespace of the offered id string.
        #[arg(long, default_value = "peerstream")]
        namespace: String,
        /// Application namespace of the offered id string.
        #[arg(long, default_value = "account")]
        app: String,
    },
    /// Check an offer and add it to the contact book under a name.
    Add {
        /// The contact book (a JSON file, created 0600 if missing).
        #[arg(long)]
        book: PathBuf,
        /// The name to give the contact.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        node: NodeArgs,
        /// The file holding the offer, or - for stdin.
        offer: PathBuf,
    },
    /// Print the contact book as JSON.
    List {
        /// The contact book.
        #[arg(long)]
        book: PathBuf,
    },
    /// Remove a contact by name.
    Remove {
        /// The contact book.
        #[arg(long)]
        book: PathBuf,
        /// The contact's name.
        name: String,
    },
    /// Print a fingerprint to compare out of band: with --keystore and a NAME, the 60-digit
    /// safety number of both identities (both sides see the same); with NAME only, the
    /// contact's 30-digit key fingerprint; with --keystore only, one's own.
    Fingerprint {
        /// The contact book (needed with NAME).
        #[arg(long)]
        book: Option<PathBuf>,
        /// One's own keystore (its public keys are read; no passphrase needed).
        #[arg(long)]
        keystore: Option<PathBuf>,
        /// The contact's name.
        name: Option<String>,
    },
}

/// Runs a `psp contact` command.
pub async fn run(cmd: ContactCommand) -> Result<()> {
    match cmd {
        ContactCommand::Offer {
            keystore: path,
            pass,
            expires_in,
            presence_hint,
            namespace,
            app,
        } => {
            let presence_hint = presence_hint
                .map(|h| parse_hex::<32>(&h, "--presence-hint"))
                .transpose()?;
            let keys = pass.open(&path)?;
            let public = keys.public();
            let id = public.id_string(&namespace, IdentityKind::Client, &app)?;
            let created_at = unix_now();
            let body = OfferBody {
                id: id.to_string(),
                identity_key: public.sr25519,
                announcement_key: public.x25519,
                presence_hint,
                created_at,
                expires_at: created_at.saturating_add(expires_in),
            };
            if expires_in == 0 || expires_in > offer::MAX_LIFETIME_SECS {
                return Err(Error::InvalidInput {
                    what: "--expires-in",
                    reason: format!("{expires_in} s; give 1 to {}", offer::MAX_LIFETIME_SECS),
                });
            }
            print!("{}", offer::create(keys.identity_keypair(), body)?);
            Ok(())
        }
        ContactCommand::Add {
            book: book_path,
            name,
            node,
            offer,
        } => {
            let text = read_offer(&offer)?;
            let now = unix_now();
            let checked = UncheckedOffer::from_armored(&text)?.check(now)?;
            let mut book = Book::load(&book_path)?;
            // Refuse duplicates before asking the chain (a clone keeps the book unchanged).
            book.clone().add(&name, &checked, now)?;
            let chain = node.chain().await?;
            let view = chain
                .identity_by_key(&checked.body().identity_key, None)
                .await?;
            checked.check_on_chain(view.as_ref())?;
            let contact = book.add(&name, &checked, now)?.clone();
            book.save(&book_path)?;
            eprintln!("added {name} to {}", book_path.display());
            print_json(&contact)
        }
        ContactCommand::List { book } => print_json(&Book::load(&book)?.contacts),
        ContactCommand::Remove { book: path, name } => {
            let mut book = Book::load(&path)?;
            let removed = book.remove(&name)?;
            book.save(&path)?;
            eprintln!("removed {} from {}", removed.name, path.display());
            Ok(())
        }
        ContactCommand::Fingerprint {
            book,
            keystore: own,
            name,
        } => {
            let own = own.map(|p| keystore::load_public(&p)).transpose()?;
            let theirs = match (&book, &name) {
                (Some(book), Some(name)) => {
                    let contact = Book::load(book)?.get(name)?.clone();
                    Some(parse_hex::<32>(&contact.identity_key, "identity key")?)
                }
                (None, Some(_)) => {
                    return Err(Error::InvalidInput {
                        what: "--book",
                        reason: "a contact NAME needs --book FILE".into(),
                    })
                }
                _ => None,
            };
            let number = match (own, theirs) {
                (Some(own), Some(theirs)) => safety_number(&own.sr25519, &theirs),
                (None, Some(key)) => key_fingerprint(&key),
                (Some(own), None) => key_fingerprint(&own.sr25519),
                (None, None) => {
                    return Err(Error::InvalidInput {
                        what: "fingerprint",
                        reason: "give --keystore K, --book FILE NAME, or both".into(),
                    })
                }
            };
            println!("{number}");
            Ok(())
        }
    }
}

/// The offer text from `path` or stdin (`-`), bounded.
fn read_offer(path: &Path) -> Result<String> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    let limit = MAX_ARMORED_LEN as u64 + 1;
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    } else {
        std::fs::File::open(path)
            .map_err(io)?
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    }
    String::from_utf8(bytes).map_err(|_| ContactError::Armor("the text is not UTF-8".into()).into())
}

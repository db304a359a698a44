//! # Contacts
//!
//! People one has chosen to talk to, exchanged offline as signed **contact offers** (the
//! Streembit white paper's `--- BEGIN ... CONTACT OFFER ---` blocks, on PSP's on-chain
//! identities).
//!
//! ## Overview
//! - [`offer`]: the offer (id string, identity key, announcement key, optional public presence
//!   hint, creation and expiry time), signed by the identity key under a domain tag, encoded
//!   in a strict, bounded binary form and armored as `-----BEGIN PSP CONTACT OFFER-----`.
//!   Decoding yields an [`UncheckedOffer`](offer::UncheckedOffer); only
//!   [`check`](offer::UncheckedOffer::check) (signature, times) yields a
//!   [`ContactOffer`](offer::ContactOffer), and only
//!   [`check_on_chain`](offer::ContactOffer::check_on_chain) (live identity, same
//!   announcement key) yields something the book stores.
//! - [`book`]: the contact book, one JSON file written atomically (temp file + rename, 0600).
//! - [`fingerprint`]: Signal-safety-number-like fingerprints to compare out of band.
//!
//! ## What it does not do
//! The book is local and unsigned: whoever can write the file can add contacts. An offer
//! proves that the identity key signed it, not who handed it over: compare the fingerprint.

pub mod book;
pub mod fingerprint;
pub mod offer;

use std::path::PathBuf;

/// Why an offer or the contact book was refused. Nothing is stored when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContactError {
    /// The text is not one armored offer block.
    #[error("not a PSP contact offer: {0}; paste the whole block from -----BEGIN PSP CONTACT OFFER----- to -----END PSP CONTACT OFFER-----")]
    Armor(String),
    /// The block's bytes are not a well-formed offer (truncated, wrong version, bad lengths).
    #[error("malformed contact offer: {0}; ask the sender for a fresh `psp contact offer`")]
    Malformed(String),
    /// The signature does not verify against the offer's identity key.
    #[error(
        "the contact offer's signature does not verify: it was forged or altered; do not add it"
    )]
    BadSignature,
    /// The offer has expired (or its times are inconsistent).
    #[error("the contact offer {0}; ask the sender for a fresh `psp contact offer`")]
    Expired(String),
    /// The identity is not registered, revoked, or its keys differ from the offer's.
    #[error("the offered identity {id} {reason}")]
    NotLive {
        /// The id string of the offer.
        id: String,
        /// What the chain says.
        reason: String,
    },
    /// The name or key is already in the book.
    #[error("{0}; remove the existing contact first or choose another --name")]
    Duplicate(String),
    /// No contact has that name.
    #[error("no contact named {0:?} in the book; see `psp contact list`")]
    UnknownName(String),
    /// A contact name is empty, too long or has control characters.
    #[error("invalid contact name {0:?}: use 1 to 64 printable characters")]
    BadName(String),
    /// The contact book file could not be read or written.
    #[error("contact book {path}: {source}")]
    BookIo {
        /// The book file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The contact book file is not a valid book.
    #[error("contact book {path} is not valid ({reason}); fix or restore the file")]
    BookFormat {
        /// The book file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Now in unix seconds: psp-net's clock, re-exported for the contact commands.
pub use psp_net::driver::unix_now;

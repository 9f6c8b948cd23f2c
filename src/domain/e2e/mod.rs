//! End-to-end encryption support: the server's part of Signal-style E2E (X3DH/PQXDH and
//! the Double Ratchet, as libsignal clients implement them).
//!
//! - A key directory ([`directory`]): each device publishes its public identity key, a
//!   signed prekey, optionally a signed Kyber prekey, and a batch of one-time prekeys;
//!   anyone registered fetches a user's bundles, each one-time prekey handed out once;
//!   a device running low hears `prekeys_low`.
//! - Encrypted messages ([`envelopes`]): one opaque ciphertext per recipient device,
//!   stored and relayed without being read. Their `content` stays empty, so the list
//!   preview and search never see anything of them.
//!
//! The server never sees a private key and never decodes a ciphertext.
pub mod directory;
pub mod envelopes;
pub mod keys;

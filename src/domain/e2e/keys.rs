//! The public keys a device publishes, parsed: sizes and type bytes as libsignal
//! serialises them. The server keeps them as the base64 text it was given (checked to be
//! canonical standard base64); it never holds or needs a private key, and it does not
//! verify signatures: the fetching client does (libsignal's `processPreKeyBundle`
//! refuses a bundle whose signed prekeys are not signed by its identity key).
use base64::{Engine, engine::general_purpose::STANDARD};

use crate::domain::{DomainError, DomainResult};

/// Device ids as Signal clients use them: 1 (the primary) to 127.
pub const MAX_DEVICE_ID: i64 = 127;
/// Prekey ids are 24-bit in Signal clients (`Medium.MAX_VALUE`).
pub const MAX_KEY_ID: i64 = 0xFF_FFFF;
/// Registration ids are 14-bit, never 0 (libsignal's `generateRegistrationId`).
pub const MAX_REGISTRATION_ID: i64 = 0x3FFF;
/// Most one-time prekeys one request may carry.
pub const MAX_PREKEYS_PER_REQUEST: usize = 100;
/// Most one-time prekeys a device may hold unclaimed.
pub const MAX_PREKEYS_HELD: u64 = 1_000;

/// A Curve25519 public key: the type byte 0x05 and 32 bytes (33 bytes, 44 base64 chars).
const EC_KEY_BYTES: usize = 33;
const EC_KEY_TYPE: u8 = 0x05;
/// A Kyber1024 public key: the type byte 0x08 and 1568 bytes.
const KYBER_KEY_BYTES: usize = 1569;
const KYBER_KEY_TYPE: u8 = 0x08;
/// An XEdDSA signature.
const SIGNATURE_BYTES: usize = 64;

/// A device of a user: 1..=[`MAX_DEVICE_ID`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(i64);

impl DeviceId {
    pub fn parse(raw: i64) -> DomainResult<DeviceId> {
        if (1..=MAX_DEVICE_ID).contains(&raw) {
            Ok(DeviceId(raw))
        } else {
            Err(DomainError::InvalidInput(format!(
                "device_id must be an integer from 1 to {MAX_DEVICE_ID}"
            )))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A prekey id: 1..=[`MAX_KEY_ID`].
fn key_id(raw: i64, what: &str) -> DomainResult<i64> {
    if (1..=MAX_KEY_ID).contains(&raw) {
        Ok(raw)
    } else {
        Err(DomainError::InvalidInput(format!(
            "{what}.key_id must be an integer from 1 to {MAX_KEY_ID}"
        )))
    }
}

/// `raw` if it is canonical standard base64 of `len` bytes starting with `type_byte`
/// (None: any first byte).
fn base64_of(raw: &str, len: usize, type_byte: Option<u8>, what: &str) -> DomainResult<String> {
    let shape = match type_byte {
        Some(t) => format!("{what} must be base64 of {len} bytes starting with 0x{t:02x}"),
        None => format!("{what} must be base64 of {len} bytes"),
    };
    // The length check first: nothing long is decoded.
    if raw.len() != len.div_ceil(3) * 4 {
        return Err(DomainError::InvalidInput(shape));
    }
    match STANDARD.decode(raw) {
        Ok(bytes) if bytes.len() == len && type_byte.is_none_or(|t| bytes[0] == t) => Ok(raw.to_owned()),
        _ => Err(DomainError::InvalidInput(shape)),
    }
}

/// An identity key or prekey: a Curve25519 public key as libsignal serialises it.
pub fn ec_public_key(raw: &str, what: &str) -> DomainResult<String> {
    base64_of(raw, EC_KEY_BYTES, Some(EC_KEY_TYPE), what)
}

/// A signed prekey as published: its id, its public key and the identity key's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPrekey {
    pub key_id: i64,
    pub public_key: String,
    pub signature: String,
}

/// A one-time prekey as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prekey {
    pub key_id: i64,
    pub public_key: String,
}

/// What a client sent for a signed prekey, unchecked.
pub struct SignedPrekeyInput {
    pub key_id: i64,
    pub public_key: String,
    pub signature: String,
}

/// What a client sent for a one-time prekey, unchecked.
pub struct PrekeyInput {
    pub key_id: i64,
    pub public_key: String,
}

impl SignedPrekey {
    /// The signed (Curve25519) prekey.
    pub fn parse_ec(raw: SignedPrekeyInput) -> DomainResult<SignedPrekey> {
        Ok(SignedPrekey {
            key_id: key_id(raw.key_id, "signed_prekey")?,
            public_key: ec_public_key(&raw.public_key, "signed_prekey.public_key")?,
            signature: base64_of(&raw.signature, SIGNATURE_BYTES, None, "signed_prekey.signature")?,
        })
    }

    /// The signed last-resort Kyber prekey of PQXDH.
    pub fn parse_kyber(raw: SignedPrekeyInput) -> DomainResult<SignedPrekey> {
        Ok(SignedPrekey {
            key_id: key_id(raw.key_id, "kyber_prekey")?,
            public_key: base64_of(
                &raw.public_key,
                KYBER_KEY_BYTES,
                Some(KYBER_KEY_TYPE),
                "kyber_prekey.public_key",
            )?,
            signature: base64_of(&raw.signature, SIGNATURE_BYTES, None, "kyber_prekey.signature")?,
        })
    }
}

/// A batch of one-time prekeys: at most [`MAX_PREKEYS_PER_REQUEST`], each well-formed.
/// A key id repeated in the batch counts once (its first occurrence).
pub fn prekeys(raw: Vec<PrekeyInput>, at_least_one: bool) -> DomainResult<Vec<Prekey>> {
    if raw.len() > MAX_PREKEYS_PER_REQUEST {
        return Err(DomainError::InvalidInput(format!(
            "one_time_prekeys holds at most {MAX_PREKEYS_PER_REQUEST} keys per request"
        )));
    }
    if at_least_one && raw.is_empty() {
        return Err(DomainError::InvalidInput(
            "one_time_prekeys must hold at least one key".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut keys = Vec::with_capacity(raw.len());
    for p in raw {
        let key = Prekey {
            key_id: key_id(p.key_id, "one_time_prekeys[]")?,
            public_key: ec_public_key(&p.public_key, "one_time_prekeys[].public_key")?,
        };
        if seen.insert(key.key_id) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// A device's published keys, all checked.
#[derive(Debug, Clone)]
pub struct DeviceKeys {
    pub registration_id: i64,
    pub identity_key: String,
    pub signed_prekey: SignedPrekey,
    pub kyber_prekey: Option<SignedPrekey>,
    pub one_time_prekeys: Vec<Prekey>,
}

impl DeviceKeys {
    pub fn parse(
        registration_id: i64,
        identity_key: &str,
        signed_prekey: SignedPrekeyInput,
        kyber_prekey: Option<SignedPrekeyInput>,
        one_time_prekeys: Vec<PrekeyInput>,
    ) -> DomainResult<DeviceKeys> {
        if !(1..=MAX_REGISTRATION_ID).contains(&registration_id) {
            return Err(DomainError::InvalidInput(format!(
                "registration_id must be an integer from 1 to {MAX_REGISTRATION_ID}"
            )));
        }
        Ok(DeviceKeys {
            registration_id,
            identity_key: ec_public_key(identity_key, "identity_key")?,
            signed_prekey: SignedPrekey::parse_ec(signed_prekey)?,
            kyber_prekey: kyber_prekey.map(SignedPrekey::parse_kyber).transpose()?,
            one_time_prekeys: prekeys(one_time_prekeys, false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    fn ec() -> String {
        let mut k = vec![0x05];
        k.extend([7u8; 32]);
        b64(&k)
    }

    fn signed(public_key: String) -> SignedPrekeyInput {
        SignedPrekeyInput {
            key_id: 1,
            public_key,
            signature: b64(&[1u8; 64]),
        }
    }

    #[test]
    fn device_ids_are_those_signal_uses() {
        assert!(DeviceId::parse(1).is_ok());
        assert!(DeviceId::parse(127).is_ok());
        assert!(DeviceId::parse(0).is_err());
        assert!(DeviceId::parse(128).is_err());
        assert!(DeviceId::parse(-1).is_err());
    }

    #[test]
    fn an_ec_key_is_33_bytes_of_type_5() {
        assert_eq!(ec().len(), 44);
        assert!(ec_public_key(&ec(), "k").is_ok());
        assert!(ec_public_key(&b64(&[5u8; 32]), "k").is_err(), "no type byte");
        assert!(ec_public_key(&b64(&[6u8; 33]), "k").is_err(), "wrong type byte");
        let mut url_safe = ec();
        url_safe.replace_range(43..44, "_");
        assert!(ec_public_key(&url_safe, "k").is_err(), "URL-safe alphabet");
        assert!(ec_public_key("", "k").is_err());
    }

    #[test]
    fn a_signature_is_64_bytes_in_canonical_base64() {
        let good = b64(&[1u8; 64]);
        assert!(base64_of(&good, 64, None, "s").is_ok());
        // Non-zero trailing bits decode to the same bytes elsewhere; here they are refused.
        let mut loose = good.clone();
        loose.replace_range(85..86, "B");
        assert!(base64_of(&loose, 64, None, "s").is_err());
        assert!(base64_of(&b64(&[1u8; 63]), 64, None, "s").is_err());
    }

    #[test]
    fn a_kyber_key_is_1569_bytes_of_type_8() {
        let mut k = vec![0x08];
        k.extend(vec![3u8; 1568]);
        assert!(SignedPrekey::parse_kyber(signed(b64(&k))).is_ok());
        assert!(SignedPrekey::parse_kyber(signed(ec())).is_err());
    }

    #[test]
    fn a_device_publishes_a_registration_id_and_keys() {
        let ok = |reg| DeviceKeys::parse(reg, &ec(), signed(ec()), None, vec![]);
        assert!(ok(1).is_ok());
        assert!(ok(MAX_REGISTRATION_ID).is_ok());
        assert!(ok(0).is_err());
        assert!(ok(MAX_REGISTRATION_ID + 1).is_err());
        let bad_key_id = SignedPrekeyInput {
            key_id: MAX_KEY_ID + 1,
            ..signed(ec())
        };
        assert!(DeviceKeys::parse(1, &ec(), bad_key_id, None, vec![]).is_err());
    }

    #[test]
    fn a_prekey_batch_is_bounded_and_counts_each_id_once() {
        let p = |key_id| PrekeyInput {
            key_id,
            public_key: ec(),
        };
        assert_eq!(prekeys(vec![p(1), p(2), p(1)], true).unwrap().len(), 2);
        assert!(prekeys(vec![], true).is_err());
        assert!(prekeys(vec![], false).unwrap().is_empty());
        assert!(prekeys((1..=101).map(p).collect(), true).is_err());
        assert!(prekeys(vec![p(0)], true).is_err());
    }
}

//! The end-to-end encryption key directory: `/api/keys/devices/{device_id}` (the
//! caller's own devices: publish, read, withdraw), `/api/keys/devices/{device_id}/prekeys`
//! (more one-time prekeys) and `/api/users/{user_id}/keys` (a user's bundles, each with
//! one one-time prekey claimed). The rules live in `domain::e2e::directory`.
use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    auth::Done,
    error::ApiResult,
    extract::{AuthUser, JsonBody, path_id},
};
use crate::{
    domain::e2e::{
        directory::{self, Bundle, DeviceStatus},
        keys::{self, DeviceId, DeviceKeys, Prekey, PrekeyInput, SignedPrekey, SignedPrekeyInput},
    },
    state::AppState,
    wire::iso,
};

/// A signed prekey: its id, public key and the identity key's signature over it.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedPrekeyBody {
    #[schema(minimum = 1, maximum = 16777215)]
    key_id: i64,
    /// Curve25519 public key, 33 bytes (0x05 then 32), standard base64.
    #[schema(pattern = r"^B[Q-Za-f][A-Za-z0-9+/]{42}$", min_length = 44, max_length = 44)]
    public_key: String,
    /// XEdDSA signature by the identity key, 64 bytes, standard base64.
    #[schema(pattern = r"^[A-Za-z0-9+/]{85}[AQgw]==$", min_length = 88, max_length = 88)]
    signature: String,
}

/// A signed Kyber (PQXDH) prekey: libsignal 0.40+ needs one to start a session.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KyberPrekeyBody {
    #[schema(minimum = 1, maximum = 16777215)]
    key_id: i64,
    /// Kyber1024 public key, 1569 bytes (0x08 then 1568), standard base64.
    #[schema(
        pattern = r"^C[A-P][A-Za-z0-9+/]{2090}$",
        min_length = 2092,
        max_length = 2092
    )]
    public_key: String,
    /// XEdDSA signature by the identity key, 64 bytes, standard base64.
    #[schema(pattern = r"^[A-Za-z0-9+/]{85}[AQgw]==$", min_length = 88, max_length = 88)]
    signature: String,
}

/// A one-time prekey.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrekeyBody {
    #[schema(minimum = 1, maximum = 16777215)]
    key_id: i64,
    /// Curve25519 public key, 33 bytes (0x05 then 32), standard base64.
    #[schema(pattern = r"^B[Q-Za-f][A-Za-z0-9+/]{42}$", min_length = 44, max_length = 44)]
    public_key: String,
}

/// A device's public keys. The user is the caller: nobody publishes for someone else.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    #[schema(minimum = 1, maximum = 16383)]
    registration_id: i64,
    /// Curve25519 identity public key, 33 bytes (0x05 then 32), standard base64.
    #[schema(pattern = r"^B[Q-Za-f][A-Za-z0-9+/]{42}$", min_length = 44, max_length = 44)]
    identity_key: String,
    signed_prekey: SignedPrekeyBody,
    kyber_prekey: Option<KyberPrekeyBody>,
    /// Replaces the device's unclaimed one-time prekeys (at most 100; a key id repeated
    /// counts once).
    #[schema(max_items = 100)]
    one_time_prekeys: Vec<PrekeyBody>,
}

/// More one-time prekeys for a published device.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrekeysBody {
    /// 1 to 100 keys; a key id the device already holds (or repeated here) counts once.
    #[schema(min_items = 1, max_items = 100)]
    one_time_prekeys: Vec<PrekeyBody>,
}

/// One of the caller's devices as published.
#[derive(Serialize, ToSchema)]
pub struct DeviceStatusBody {
    device_id: i64,
    registration_id: i64,
    signed_prekey_id: i64,
    kyber_prekey_id: Option<i64>,
    /// Unclaimed one-time prekeys.
    one_time_prekeys: i64,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// One device's prekey bundle.
#[derive(Serialize, ToSchema)]
pub struct BundleBody {
    device_id: i64,
    registration_id: i64,
    identity_key: String,
    signed_prekey: SignedPrekeyBody,
    kyber_prekey: Option<KyberPrekeyBody>,
    /// Handed out to this fetch alone; null when the device has none left.
    one_time_prekey: Option<PrekeyBody>,
}

/// A user's bundles, one per published device (none: the user published no keys).
#[derive(Serialize, ToSchema)]
pub struct KeyBundles {
    user_id: i64,
    devices: Vec<BundleBody>,
}

/// One recipient device's ciphertext of an end-to-end encrypted message, as history and
/// `changes` carry it (see `send_message` in docs/PROTOCOL.md).
#[derive(Serialize, ToSchema)]
pub struct Envelope {
    user_id: i64,
    device_id: i64,
    /// The Signal message type (libsignal: 2 SignalMessage, 3 PreKeySignalMessage).
    #[serde(rename = "type")]
    kind: i64,
    /// The ciphertext, base64; never read by the server.
    body: String,
}

impl From<DeviceStatus> for DeviceStatusBody {
    fn from(d: DeviceStatus) -> Self {
        DeviceStatusBody {
            device_id: d.device_id,
            registration_id: d.registration_id,
            signed_prekey_id: d.signed_prekey_id,
            kyber_prekey_id: d.kyber_prekey_id,
            one_time_prekeys: d.one_time_prekeys,
            updated_at: iso(d.updated_at),
        }
    }
}

fn signed(k: SignedPrekey) -> SignedPrekeyBody {
    SignedPrekeyBody {
        key_id: k.key_id,
        public_key: k.public_key,
        signature: k.signature,
    }
}

impl From<Bundle> for BundleBody {
    fn from(b: Bundle) -> Self {
        BundleBody {
            device_id: b.device_id,
            registration_id: b.registration_id,
            identity_key: b.identity_key,
            signed_prekey: signed(b.signed_prekey),
            kyber_prekey: b.kyber_prekey.map(|k| KyberPrekeyBody {
                key_id: k.key_id,
                public_key: k.public_key,
                signature: k.signature,
            }),
            one_time_prekey: b.one_time_prekey.map(|p: Prekey| PrekeyBody {
                key_id: p.key_id,
                public_key: p.public_key,
            }),
        }
    }
}

fn prekey_inputs(keys: Vec<PrekeyBody>) -> Vec<PrekeyInput> {
    keys.into_iter()
        .map(|p| PrekeyInput {
            key_id: p.key_id,
            public_key: p.public_key,
        })
        .collect()
}

fn device_id(raw: &str) -> ApiResult<DeviceId> {
    let id = raw.parse::<i64>().map_err(|_| {
        crate::domain::DomainError::InvalidInput("device_id must be an integer from 1 to 127".into())
    })?;
    Ok(DeviceId::parse(id)?)
}

/// `PUT /api/keys/devices/{device_id}`
#[utoipa::path(
    put,
    path = "/api/keys/devices/{device_id}",
    tag = "keys",
    params(("device_id" = i64, Path, description = "the caller's device", minimum = 1, maximum = 127)),
    request_body = PublishBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "published (replacing the device's earlier keys and unclaimed one-time prekeys)", body = DeviceStatusBody),
        crate::http::openapi::BadBody,
        crate::http::openapi::Unauthenticated,
    )
)]
pub async fn publish(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(device): Path<String>,
    JsonBody(body): JsonBody<PublishBody>,
) -> ApiResult<Json<DeviceStatusBody>> {
    let device = device_id(&device)?;
    let signed = body.signed_prekey;
    let keys = DeviceKeys::parse(
        body.registration_id,
        &body.identity_key,
        SignedPrekeyInput {
            key_id: signed.key_id,
            public_key: signed.public_key,
            signature: signed.signature,
        },
        body.kyber_prekey.map(|k| SignedPrekeyInput {
            key_id: k.key_id,
            public_key: k.public_key,
            signature: k.signature,
        }),
        prekey_inputs(body.one_time_prekeys),
    )?;
    Ok(Json(
        directory::publish(&state.db, me, device, keys).await?.into(),
    ))
}

/// `GET /api/keys/devices/{device_id}`
#[utoipa::path(
    get,
    path = "/api/keys/devices/{device_id}",
    tag = "keys",
    params(("device_id" = i64, Path, description = "the caller's device", minimum = 1, maximum = 127)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the device's keys as published, with its unclaimed one-time prekey count", body = DeviceStatusBody),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::NotFound,
    )
)]
pub async fn status(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(device): Path<String>,
) -> ApiResult<Json<DeviceStatusBody>> {
    let device = device_id(&device)?;
    Ok(Json(directory::status(&state.db, me, device).await?.into()))
}

/// `DELETE /api/keys/devices/{device_id}`
#[utoipa::path(
    delete,
    path = "/api/keys/devices/{device_id}",
    tag = "keys",
    params(("device_id" = i64, Path, description = "the caller's device", minimum = 1, maximum = 127)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{ success: true }`: the device's keys and unclaimed prekeys are gone", body = crate::http::auth::Done),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        crate::http::openapi::NotFound,
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(device): Path<String>,
) -> ApiResult<Json<Done>> {
    let device = device_id(&device)?;
    directory::remove(&state.db, me, device).await?;
    Ok(Json(Done::yes()))
}

/// `POST /api/keys/devices/{device_id}/prekeys`
#[utoipa::path(
    post,
    path = "/api/keys/devices/{device_id}/prekeys",
    tag = "keys",
    params(("device_id" = i64, Path, description = "the caller's device", minimum = 1, maximum = 127)),
    request_body = PrekeysBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "added; the device's keys with its new count", body = DeviceStatusBody),
        crate::http::openapi::BadBody,
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "the device has published no keys", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "the device would hold more than 1000 unclaimed one-time prekeys", body = crate::http::openapi::ErrorBody),
    )
)]
pub async fn add_prekeys(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(device): Path<String>,
    JsonBody(body): JsonBody<PrekeysBody>,
) -> ApiResult<Json<DeviceStatusBody>> {
    let device = device_id(&device)?;
    let keys = keys::prekeys(prekey_inputs(body.one_time_prekeys), true)?;
    Ok(Json(
        directory::add_prekeys(&state.db, me, device, keys).await?.into(),
    ))
}

/// `GET /api/users/{user_id}/keys`
#[utoipa::path(
    get,
    path = "/api/users/{user_id}/keys",
    tag = "keys",
    params(("user_id" = i64, Path, description = "whose bundles (any registered user, the caller included)", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "one bundle per published device, each with one one-time prekey claimed for this fetch (none once they run out)", body = KeyBundles),
        crate::http::openapi::BadParameter,
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "a block stands between the caller and the user", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::NotFound,
        crate::http::openapi::RateLimited,
    )
)]
pub async fn bundles(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(user): Path<String>,
) -> ApiResult<Json<KeyBundles>> {
    // Each fetch claims one-time prekeys: unlimited, one client could drain everyone's.
    state.limits.lookups.check(me)?;
    let user = path_id(&user, "user")?;
    let devices = directory::bundles(
        &state.db,
        &state.messaging,
        state.config.prekey_low_watermark,
        me,
        user,
    )
    .await?;
    Ok(Json(KeyBundles {
        user_id: user,
        devices: devices.into_iter().map(Into::into).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use utoipa::OpenApi;

    use crate::domain::e2e::keys::{SignedPrekey, SignedPrekeyInput, ec_public_key};

    /// The pattern the served document gives `schema.property`.
    fn pattern(schema: &str, property: &str) -> regex::Regex {
        let doc = serde_json::to_value(crate::http::openapi::ApiDoc::openapi()).unwrap();
        let p = doc["components"]["schemas"][schema]["properties"][property]["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{schema}.{property} has no pattern"));
        regex::Regex::new(p).unwrap()
    }

    fn signed(public_key: String, signature: String) -> SignedPrekeyInput {
        SignedPrekeyInput {
            key_id: 1,
            public_key,
            signature,
        }
    }

    /// What the document allows the server accepts, and what it refuses the server refuses
    /// (schemathesis holds the server to both).
    #[test]
    fn the_documented_patterns_match_the_parsers() {
        let ec = pattern("PrekeyBody", "public_key");
        let sig = pattern("SignedPrekeyBody", "signature");
        let kyber = pattern("KyberPrekeyBody", "public_key");
        let good_sig = STANDARD.encode([9u8; 64]);
        let mut ec_key = vec![0x05];
        ec_key.extend([1u8; 32]);
        let ec_key = STANDARD.encode(&ec_key);
        for first in 0u8..=255 {
            let mut k = vec![first];
            k.extend([0xa5u8; 32]);
            let text = STANDARD.encode(&k);
            assert_eq!(
                ec.is_match(&text),
                ec_public_key(&text, "k").is_ok(),
                "type byte {first}"
            );
        }
        let mut accepted = 0;
        for last in 0u8..=255 {
            let mut s = vec![9u8; 63];
            s.push(last);
            let text = STANDARD.encode(&s);
            assert!(sig.is_match(&text), "signature ending {last}: {text}");
            assert!(SignedPrekey::parse_ec(signed(ec_key.clone(), text.clone())).is_ok());
            // The same text with each possible last data character: with stray trailing
            // bits or not, the document and the parser must agree.
            for c in ('A'..='Z').chain('a'..='z').chain('0'..='9').chain(['+', '/']) {
                let mut variant = text.clone();
                variant.replace_range(85..86, &c.to_string());
                let parsed = SignedPrekey::parse_ec(signed(ec_key.clone(), variant.clone())).is_ok();
                assert_eq!(sig.is_match(&variant), parsed, "{variant}");
                accepted += usize::from(parsed);
            }
        }
        // 4 of the 64 last characters leave no stray bits, for each of the 256 texts.
        assert_eq!(accepted, 256 * 4);
        assert!(ec.is_match(&ec_key), "a good key matches");
        let mut k = vec![0x08];
        k.extend(vec![0xffu8; 1568]);
        let text = STANDARD.encode(&k);
        assert!(kyber.is_match(&text));
        assert!(SignedPrekey::parse_kyber(signed(text, good_sig.clone())).is_ok());
        k[0] = 0x07;
        let text = STANDARD.encode(&k);
        assert!(!kyber.is_match(&text));
        assert!(SignedPrekey::parse_kyber(signed(text, good_sig)).is_err());
    }
}

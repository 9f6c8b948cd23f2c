//! HS256 tokens. The user id travels in `sub`; the seed's numeric `user_id` claim is
//! accepted too so tokens minted for the old server keep working.
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a token was refused; the text is shown to the client as is.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    #[error("authentication token missing")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("invalid token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("unsupported token algorithm")]
    Algorithm,
    #[error("token has no user id")]
    NoUserId,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issuer or audience not accepted")]
    WrongParty,
    #[error("token revoked")]
    Revoked,
}

#[derive(Serialize)]
struct OutClaims<'a> {
    sub: String,
    user_id: i64,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    /// This token's id, so that it alone can be revoked (logout).
    jti: String,
    /// The user's token version when issued; bumping it ends every older token.
    ver: i64,
}

#[derive(Deserialize)]
struct InClaims {
    sub: Option<serde_json::Value>,
    user_id: Option<serde_json::Value>,
    exp: i64,
    iat: Option<i64>,
    jti: Option<String>,
    ver: Option<i64>,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user_id: i64,
    /// `exp`, in seconds since the epoch: a socket authenticated by it ends then.
    pub expires_at: i64,
    /// `jti`, if the token has one (the seed's tokens do not).
    pub jti: Option<String>,
    /// `ver`: the user's token version at issue (0 when absent).
    pub version: i64,
}

/// Tolerated clock difference between issuer and server, in seconds.
const LEEWAY: u64 = 5;

/// Signs and verifies session tokens with one shared secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_hours: i64,
    issuer: Option<String>,
    audience: Option<String>,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_hours: i64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_hours,
            issuer: None,
            audience: None,
        }
    }

    /// Issued tokens carry `iss` / `aud`, and only tokens carrying them are accepted.
    pub fn with_parties(mut self, issuer: Option<String>, audience: Option<String>) -> Self {
        self.issuer = issuer;
        self.audience = audience;
        self
    }

    /// A token for `user_id` at the user's current token `version`, valid for the
    /// configured lifetime.
    pub fn issue(&self, user_id: i64, version: i64) -> String {
        let now = Utc::now().timestamp();
        let claims = OutClaims {
            sub: user_id.to_string(),
            user_id,
            iat: now,
            exp: now + self.ttl_hours * 3600,
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
            jti: new_jti(),
            ver: version,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    /// The user id a valid token names.
    pub fn verify(&self, token: &str) -> Result<i64, TokenError> {
        self.verify_claims(token).map(|v| v.user_id)
    }

    /// The user id and expiry of a valid token. Checks (RFC 8725): HS256 only, `exp`
    /// required, `nbf` and `iat` not in the future, `iss` / `aud` when configured.
    pub fn verify_claims(&self, token: &str) -> Result<Verified, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        // Read the header's `alg` ourselves: jsonwebtoken cannot even parse `alg: none`,
        // and such a token must read as "unsupported", not as garbage.
        if header_alg(token).ok_or(TokenError::Malformed)? != "HS256" {
            return Err(TokenError::Algorithm);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let data =
            jsonwebtoken::decode::<InClaims>(token, &self.decoding, &validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                    ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenError::WrongParty,
                    ErrorKind::MissingRequiredClaim(c) if c == "iss" || c == "aud" => TokenError::WrongParty,
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
                    ErrorKind::MissingRequiredClaim(_) => TokenError::Malformed,
                    _ => TokenError::Malformed,
                }
            })?;
        let claims = data.claims;
        if claims
            .iat
            .is_some_and(|iat| iat > Utc::now().timestamp() + LEEWAY as i64)
        {
            return Err(TokenError::NotYetValid);
        }
        let user_id = claims
            .sub
            .as_ref()
            .and_then(id_from)
            .or_else(|| claims.user_id.as_ref().and_then(id_from))
            .ok_or(TokenError::NoUserId)?;
        Ok(Verified {
            user_id,
            expires_at: claims.exp,
            jti: claims.jti.filter(|j| !j.is_empty() && j.len() <= 64),
            version: claims.ver.unwrap_or(0),
        })
    }
}

/// 128 random bits, hex.
fn new_jti() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `alg` of a compact JWS header, if the token has that shape.
fn header_alg(token: &str) -> Option<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let mut parts = token.split('.');
    let (header, _payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Header>(&bytes).ok().map(|h| h.alg)
}

fn id_from(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_token_round_trips() {
        let keys = JwtKeys::new(SECRET, 1);
        assert_eq!(keys.verify(&keys.issue(42, 0)), Ok(42));
        let v = keys.verify_claims(&keys.issue(42, 7)).unwrap();
        assert_eq!((v.version, v.jti.as_ref().map(String::len)), (7, Some(32)));
        assert_ne!(
            v.jti,
            keys.verify_claims(&keys.issue(42, 7)).unwrap().jti,
            "each token its own id"
        );
    }

    #[test]
    fn other_secret_is_a_bad_signature() {
        let keys = JwtKeys::new(SECRET, 1);
        let other = JwtKeys::new(b"another-secret-another-secret-xx", 1);
        assert_eq!(keys.verify(&other.issue(1, 0)), Err(TokenError::BadSignature));
    }

    #[test]
    fn alg_none_is_refused() {
        // {"alg":"none","typ":"JWT"} . {"sub":"1","exp":9999999999} . (no signature)
        let token = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.";
        let keys = JwtKeys::new(SECRET, 1);
        assert!(matches!(
            keys.verify(token),
            Err(TokenError::Algorithm | TokenError::Malformed)
        ));
    }

    fn signed(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    #[test]
    fn future_nbf_and_iat_are_not_yet_valid() {
        let keys = JwtKeys::new(SECRET, 1);
        let now = Utc::now().timestamp();
        let later = signed(serde_json::json!({ "sub": "1", "exp": now + 7200, "nbf": now + 3600 }));
        assert_eq!(keys.verify(&later), Err(TokenError::NotYetValid));
        let minted_later = signed(serde_json::json!({ "sub": "1", "exp": now + 7200, "iat": now + 3600 }));
        assert_eq!(keys.verify(&minted_later), Err(TokenError::NotYetValid));
        let fine = signed(serde_json::json!({ "sub": "1", "exp": now + 60, "iat": now, "nbf": now }));
        assert_eq!(keys.verify(&fine), Ok(1));
    }

    #[test]
    fn issuer_and_audience_when_configured() {
        let keys = JwtKeys::new(SECRET, 1).with_parties(Some("rc".into()), Some("app".into()));
        let issued = keys.issue(3, 0);
        assert_eq!(keys.verify(&issued), Ok(3));
        let plain = JwtKeys::new(SECRET, 1).issue(3, 0);
        assert_eq!(keys.verify(&plain), Err(TokenError::WrongParty));
        let other = JwtKeys::new(SECRET, 1).with_parties(Some("rc".into()), Some("other".into()));
        assert_eq!(keys.verify(&other.issue(3, 0)), Err(TokenError::WrongParty));
        // Without configuration, a token carrying them is still accepted.
        assert_eq!(JwtKeys::new(SECRET, 1).verify(&issued), Ok(3));
    }

    #[test]
    fn garbage_is_malformed_and_empty_is_missing() {
        let keys = JwtKeys::new(SECRET, 1);
        assert_eq!(keys.verify("not-a-jwt"), Err(TokenError::Malformed));
        assert_eq!(keys.verify("  "), Err(TokenError::Missing));
    }
}

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
}

#[derive(Serialize)]
struct OutClaims {
    sub: String,
    user_id: i64,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct InClaims {
    sub: Option<serde_json::Value>,
    user_id: Option<serde_json::Value>,
}

/// Signs and verifies session tokens with one shared secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_hours: i64,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_hours: i64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_hours,
        }
    }

    /// A token for `user_id`, valid for the configured lifetime.
    pub fn issue(&self, user_id: i64) -> String {
        let now = Utc::now().timestamp();
        let claims = OutClaims {
            sub: user_id.to_string(),
            user_id,
            iat: now,
            exp: now + self.ttl_hours * 3600,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    /// The user id a valid token names.
    pub fn verify(&self, token: &str) -> Result<i64, TokenError> {
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
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 5;
        validation.validate_exp = true;
        let data =
            jsonwebtoken::decode::<InClaims>(token, &self.decoding, &validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
                    ErrorKind::MissingRequiredClaim(_) => TokenError::Malformed,
                    _ => TokenError::Malformed,
                }
            })?;
        let claims = data.claims;
        claims
            .sub
            .as_ref()
            .and_then(id_from)
            .or_else(|| claims.user_id.as_ref().and_then(id_from))
            .ok_or(TokenError::NoUserId)
    }
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
        assert_eq!(keys.verify(&keys.issue(42)), Ok(42));
    }

    #[test]
    fn other_secret_is_a_bad_signature() {
        let keys = JwtKeys::new(SECRET, 1);
        let other = JwtKeys::new(b"another-secret-another-secret-xx", 1);
        assert_eq!(keys.verify(&other.issue(1)), Err(TokenError::BadSignature));
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

    #[test]
    fn garbage_is_malformed_and_empty_is_missing() {
        let keys = JwtKeys::new(SECRET, 1);
        assert_eq!(keys.verify("not-a-jwt"), Err(TokenError::Malformed));
        assert_eq!(keys.verify("  "), Err(TokenError::Missing));
    }
}

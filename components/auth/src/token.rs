//! Session tokens: `zt1.<key-id>.<claims>.<signature>`, where claims is
//! base64url JSON and signature is base64url HMAC-SHA256 over everything
//! before it. Keys come from configuration (`signing-keys`): the first signs,
//! all verify, so a rotated-out key stops verifying the moment it is removed.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::AuthError;

const PREFIX: &str = "zt1";
/// Longest token accepted before any parsing.
pub const MAX_TOKEN_BYTES: usize = 2048;

/// A named HMAC key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Key id, carried in tokens.
    pub id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

impl SigningKey {
    /// A key from its id and secret bytes.
    pub fn new(id: &str, secret: Vec<u8>) -> Self {
        Self {
            id: id.to_owned(),
            secret,
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!())
    }
}

/// Parses `signing-keys`: comma-separated `key-id:base64-secret`, each secret
/// at least 32 bytes.
pub fn parse_keys(text: &str) -> Result<Vec<SigningKey>, AuthError> {
    let bad = |why: String| AuthError::Other(format!("configuration signing-keys: {why}"));
    let mut keys = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, secret) = entry.split_once(':').ok_or_else(|| {
            bad(format!(
                "entry {:?} is not key-id:base64-secret",
                id_only(entry)
            ))
        })?;
        if id.is_empty()
            || id.len() > 32
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad(format!(
                "key id {id:?} must be 1 to 32 letters, digits or '-'"
            )));
        }
        let secret = STANDARD
            .decode(secret.trim())
            .map_err(|_| bad(format!("secret of key {id:?} is not base64")))?;
        if secret.len() < 32 {
            return Err(bad(format!(
                "secret of key {id:?} has {} bytes; at least 32 are needed",
                secret.len()
            )));
        }
        keys.push(SigningKey::new(id, secret));
    }
    if keys.is_empty() {
        return Err(bad("no keys given".into()));
    }
    Ok(keys)
}

fn id_only(entry: &str) -> &str {
    entry.split(':').next().unwrap_or("")
}

/// What a token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Subject id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

/// Signs `claims` with `key`.
pub fn sign(key: &SigningKey, claims: &TokenClaims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signed = format!("{PREFIX}.{}.{payload}", key.id);
    let mut mac = key.mac();
    mac.update(signed.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signed}.{signature}")
}

/// Checks the token's form and signature against `keys`; does not look at
/// expiry or revocation.
pub fn open(keys: &[SigningKey], token: &str) -> Result<TokenClaims, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::MalformedToken);
    }
    let mut parts = token.split('.');
    let (Some(PREFIX), Some(key_id), Some(payload), Some(signature), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(AuthError::MalformedToken);
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| AuthError::MalformedToken)?;
    let key = keys
        .iter()
        .find(|k| k.id == key_id)
        .ok_or(AuthError::BadSignature)?;
    let mut mac = key.mac();
    mac.update(&token.as_bytes()[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1]);
    mac.verify_slice(&signature)
        .map_err(|_| AuthError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AuthError::MalformedToken)?;
    serde_json::from_slice(&json).map_err(|_| AuthError::MalformedToken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> SigningKey {
        SigningKey::new(id, vec![byte; 32])
    }

    fn claims() -> TokenClaims {
        TokenClaims {
            sub: "11010519491231002X".into(),
            sid: "s1".into(),
            iat: 10,
            exp: 20,
        }
    }

    #[test]
    fn tokens_open_with_any_listed_key_and_only_then() {
        let token = sign(&key("old", 1), &claims());
        assert_eq!(
            open(&[key("new", 2), key("old", 1)], &token).unwrap(),
            claims()
        );
        assert_eq!(open(&[key("new", 2)], &token), Err(AuthError::BadSignature));
        // Same id, other secret: a forged or rotated key.
        assert_eq!(open(&[key("old", 3)], &token), Err(AuthError::BadSignature));
    }

    #[test]
    fn tampering_is_detected() {
        let token = sign(&key("k", 1), &claims());
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"X","sid":"s1","iat":10,"exp":99}"#);
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[2] = &forged_payload;
        assert_eq!(
            open(&[key("k", 1)], &parts.join(".")),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            open(&[key("k", 1)], "zt1.k.abc"),
            Err(AuthError::MalformedToken)
        );
        assert_eq!(
            open(&[key("k", 1)], "hello"),
            Err(AuthError::MalformedToken)
        );
    }

    #[test]
    fn key_configuration_is_checked() {
        let secret = STANDARD.encode([9u8; 32]);
        let keys = parse_keys(&format!("a:{secret}, b:{secret}")).unwrap();
        assert_eq!(
            keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(parse_keys("a:c2hvcnQ=").is_err());
        assert!(parse_keys("nocolon").is_err());
        assert!(parse_keys("").is_err());
    }
}

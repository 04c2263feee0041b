//! Password policy and argon2id hashing.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

use crate::model::AuthError;

/// argon2id cost parameters; stored with each hash so changing the
/// configuration never locks out existing subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Cost {
    /// OWASP's recommended minimum for argon2id.
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// A salted argon2id hash with its parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordHash {
    cost: Cost,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

/// Checks the password policy: 10 to 128 characters, a letter and a digit.
pub fn check_policy(password: &str) -> Result<(), AuthError> {
    let length = password.chars().count();
    if length < 10 {
        return Err(AuthError::WeakPassword(
            "at least 10 characters are required".into(),
        ));
    }
    if length > 128 {
        return Err(AuthError::WeakPassword(
            "at most 128 characters are allowed".into(),
        ));
    }
    if !password.chars().any(char::is_alphabetic) || !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(AuthError::WeakPassword(
            "a letter and a digit are required".into(),
        ));
    }
    Ok(())
}

fn derive(cost: Cost, password: &str, salt: &[u8]) -> Result<Vec<u8>, AuthError> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(32))
        .map_err(|e| AuthError::Other(format!("argon2 parameters: {e}")))?;
    let mut out = vec![0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut out)
        .map_err(|e| AuthError::Other(format!("argon2: {e}")))?;
    Ok(out)
}

impl PasswordHash {
    /// Hashes `password` with a 16-byte `salt`.
    pub fn new(cost: Cost, password: &str, salt: [u8; 16]) -> Result<Self, AuthError> {
        Ok(Self {
            cost,
            salt: salt.to_vec(),
            hash: derive(cost, password, &salt)?,
        })
    }

    /// Whether `password` matches, compared in constant time.
    pub fn matches(&self, password: &str) -> Result<bool, AuthError> {
        let candidate = derive(self.cost, password, &self.salt)?;
        Ok(constant_time_eq(&candidate, &self.hash))
    }
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Cost = Cost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn hashes_match_only_their_password() {
        let hash = PasswordHash::new(CHEAP, "correct horse 1", [7; 16]).unwrap();
        assert!(hash.matches("correct horse 1").unwrap());
        assert!(!hash.matches("correct horse 2").unwrap());
        let other_salt = PasswordHash::new(CHEAP, "correct horse 1", [8; 16]).unwrap();
        assert_ne!(hash.hash, other_salt.hash);
    }

    #[test]
    fn policy() {
        assert!(check_policy("abcdefghi1").is_ok());
        assert!(matches!(
            check_policy("abc1"),
            Err(AuthError::WeakPassword(_))
        ));
        assert!(matches!(
            check_policy("abcdefghijk"),
            Err(AuthError::WeakPassword(_))
        ));
        assert!(matches!(
            check_policy("12345678901"),
            Err(AuthError::WeakPassword(_))
        ));
        assert!(check_policy(&format!("a1{}", "x".repeat(127))).is_err());
    }
}

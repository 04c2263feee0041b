//! The one rule for the short ids the platform routes and stores by:
//! departments, services, and the parts of package names.

use std::fmt;

/// Whether `text` is 1 to 64 lowercase ASCII letters, digits or `-`.
pub fn is_slug(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `text` is a package name, `namespace:name`, each part a slug
/// that starts with a letter and does not end with `-` (`zhongtai:auth`).
pub fn is_package_name(text: &str) -> bool {
    text.split_once(':').is_some_and(|(namespace, name)| {
        [namespace, name].iter().all(|part| {
            is_slug(part)
                && part.starts_with(|c: char| c.is_ascii_lowercase())
                && !part.ends_with('-')
        })
    })
}

/// A department or service id: 1 to 64 lowercase ASCII letters, digits or
/// `-`. Parsed once where it enters (a manifest, a call), then passed on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slug(String);

/// Why a [`Slug`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlugError {
    /// What the id names ("department", "service").
    pub what: &'static str,
    /// The text that was given.
    pub given: String,
}

impl fmt::Display for SlugError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} is not valid: expected 1 to 64 lowercase letters, digits or '-'",
            self.what, self.given
        )
    }
}

impl std::error::Error for SlugError {}

impl Slug {
    /// Parses `text` as the id of a `what` ("department", "service").
    pub fn parse(what: &'static str, text: &str) -> Result<Self, SlugError> {
        if is_slug(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(SlugError {
                what,
                given: text.to_owned(),
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Slug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by slug are looked up by text.
impl std::borrow::Borrow<str> for Slug {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Slug {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Slug {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_department_ids_and_refuse_the_rest() {
        assert!(Slug::parse("department", "market-regulation").is_ok());
        for bad in ["", "Market", "a b", "x/y", "a_b", &"a".repeat(65)] {
            let err = Slug::parse("department", bad).unwrap_err();
            assert!(err.to_string().starts_with("department "), "{err}");
        }
    }

    #[test]
    fn package_names_have_two_parts_that_start_with_a_letter() {
        assert!(is_package_name("zhongtai:auth"));
        assert!(is_package_name("example:sampler-2"));
        for bad in [
            "auth",
            "zhongtai:",
            ":auth",
            "1x:auth",
            "zhongtai:Auth",
            "a:b:c",
            "zhongtai:auth-",
        ] {
            assert!(!is_package_name(bad), "{bad}");
        }
    }
}

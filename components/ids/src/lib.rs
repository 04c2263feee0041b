//! Identifiers every capability agrees on, parsed once at the boundary:
//! resident identity numbers (GB 11643, ISO 7064 MOD 11-2 check character),
//! unified social credit codes (GB 32100-2015, MOD 31 check character),
//! officials' ids and department ids; and the [`Slug`] rule the host uses
//! for department, service and package names.

mod slug;

use std::fmt;

pub use slug::{Slug, SlugError, is_package_name, is_slug};

/// What kind of party an identifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubjectKind {
    /// A natural person.
    Citizen,
    /// An enterprise or organisation.
    LegalEntity,
    /// A member of a department's staff.
    Official,
}

/// A well-formed subject identifier in canonical (uppercase) form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubjectId {
    kind: SubjectKind,
    text: String,
}

impl SubjectId {
    /// The kind of subject.
    pub fn kind(&self) -> SubjectKind {
        self.kind
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The department of an official; `None` for other kinds.
    pub fn department(&self) -> Option<&str> {
        match self.kind {
            SubjectKind::Official => self.text.split_once('/').map(|(d, _)| d),
            _ => None,
        }
    }

    /// Parses an identifier of a known kind.
    pub fn parse_as(kind: SubjectKind, text: &str) -> Result<Self, String> {
        let text = match kind {
            SubjectKind::Citizen => resident_identity_number(text)?,
            SubjectKind::LegalEntity => unified_social_credit_code(text)?,
            SubjectKind::Official => official_id(text)?,
        };
        Ok(Self { kind, text })
    }

    /// Parses an identifier, telling its kind from its shape: an official's
    /// id has a `/`; an 18-character code is a resident identity number when
    /// its first 17 characters are digits, else a unified social credit code.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let kind = if trimmed.contains('/') {
            SubjectKind::Official
        } else if trimmed.len() == 18
            && trimmed.bytes().take(17).all(|b| b.is_ascii_digit())
            && is_valid_birth_date(&trimmed[6..14])
        {
            SubjectKind::Citizen
        } else {
            SubjectKind::LegalEntity
        };
        Self::parse_as(kind, trimmed)
    }

    /// A party that can hold money, licenses and a credit file: a citizen or
    /// a legal entity, not an official.
    pub fn parse_party(text: &str) -> Result<Self, String> {
        let id = Self::parse(text)?;
        if id.kind == SubjectKind::Official {
            return Err(format!(
                "{text:?} is an official's id; expected a resident identity number or a unified social credit code"
            ));
        }
        Ok(id)
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The check character of the first 17 digits of a resident identity number.
pub fn resident_identity_check(first17: &[u8; 17]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    ID_CHECK[(sum % 11) as usize] as char
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Days in `month` of `year`, or 0 for a month that does not exist.
pub fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn is_valid_birth_date(yyyymmdd: &str) -> bool {
    parse_compact_date(yyyymmdd).is_some_and(|(y, _, _)| (1900..=2100).contains(&y))
}

fn parse_compact_date(yyyymmdd: &str) -> Option<(u32, u32, u32)> {
    if yyyymmdd.len() != 8 || !yyyymmdd.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: u32 = yyyymmdd[..4].parse().ok()?;
    let month: u32 = yyyymmdd[4..6].parse().ok()?;
    let day: u32 = yyyymmdd[6..].parse().ok()?;
    (day >= 1 && day <= days_in_month(year, month)).then_some((year, month, day))
}

/// Validates an 18-character resident identity number and returns it in
/// canonical form (a lowercase `x` check character becomes `X`).
pub fn resident_identity_number(text: &str) -> Result<String, String> {
    let upper = text.trim().to_ascii_uppercase();
    let bytes = upper.as_bytes();
    if bytes.len() != 18 {
        return Err(format!(
            "resident identity number must be 18 characters, got {}",
            upper.chars().count()
        ));
    }
    let Ok(first17) = <&[u8; 17]>::try_from(&bytes[..17]) else {
        return Err("resident identity number must be 18 characters".into());
    };
    if !first17.iter().all(u8::is_ascii_digit) {
        return Err("resident identity number: the first 17 characters must be digits".into());
    }
    if !is_valid_birth_date(&upper[6..14]) {
        return Err(format!(
            "resident identity number: {} is not a valid birth date",
            &upper[6..14]
        ));
    }
    let expected = resident_identity_check(first17);
    let given = bytes[17] as char;
    if given != expected {
        return Err(format!(
            "resident identity number: check character is {given:?}, expected {expected:?}"
        ));
    }
    Ok(upper)
}

/// The 31 characters of a unified social credit code, by value.
pub const USCC_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

fn uscc_value(c: u8) -> Option<u32> {
    USCC_CHARSET.iter().position(|&x| x == c).map(|p| p as u32)
}

/// The check character of the first 17 characters of a unified social credit
/// code, or `None` if one of them is outside the code's character set.
pub fn unified_social_credit_check(first17: &[u8]) -> Option<char> {
    let mut sum = 0;
    for (&c, w) in first17.iter().zip(USCC_WEIGHTS) {
        sum += uscc_value(c)? * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(USCC_CHARSET[check as usize] as char)
}

/// Validates an 18-character unified social credit code and returns it in
/// canonical (uppercase) form.
pub fn unified_social_credit_code(text: &str) -> Result<String, String> {
    let upper = text.trim().to_ascii_uppercase();
    let bytes = upper.as_bytes();
    if bytes.len() != 18 {
        return Err(format!(
            "unified social credit code must be 18 characters, got {}",
            upper.chars().count()
        ));
    }
    if let Some(bad) = bytes.iter().find(|&&c| uscc_value(c).is_none()) {
        return Err(format!(
            "unified social credit code: {:?} is not allowed (I, O, S, V and Z never appear)",
            *bad as char
        ));
    }
    let expected = unified_social_credit_check(&bytes[..17]).unwrap_or('?');
    let given = bytes[17] as char;
    if given != expected {
        return Err(format!(
            "unified social credit code: check character is {given:?}, expected {expected:?}"
        ));
    }
    Ok(upper)
}

/// Validates a department id: 1 to 64 lowercase letters, digits or `-`.
pub fn department_id(text: &str) -> Result<String, String> {
    if is_slug(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "department id {text:?} must be 1 to 64 lowercase letters, digits or '-'"
        ))
    }
}

/// Validates an official's id, `<department>/<staff-number>`, and returns it
/// with the staff number uppercased.
pub fn official_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    let Some((department, staff)) = text.split_once('/') else {
        return Err(format!(
            "official id {text:?} must be <department>/<staff-number>"
        ));
    };
    let department = department_id(department)?;
    if !(1..=32).contains(&staff.len()) || !staff.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "official id {text:?}: staff number must be 1 to 32 letters or digits"
        ));
    }
    Ok(format!("{department}/{}", staff.to_ascii_uppercase()))
}

/// Parses an ISO date `YYYY-MM-DD` into (year, month, day).
pub fn iso_date(text: &str) -> Result<(u32, u32, u32), String> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(format!("{text:?} is not a date of the form YYYY-MM-DD"));
    }
    let compact = format!("{}{}{}", &text[..4], &text[5..7], &text[8..]);
    parse_compact_date(&compact).ok_or_else(|| format!("{text:?} is not a valid calendar date"))
}

/// Days since 1970-01-01 of a calendar date (proleptic Gregorian).
pub fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let (y, m, d) = (i64::from(year), i64::from(month), i64::from(day));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar date (year, month, day) of a day count since 1970-01-01;
/// the inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Today's date as `YYYY-MM-DD` for a Unix time in seconds.
pub fn iso_date_of(unix_seconds: u64) -> String {
    let (y, m, d) = civil_from_days((unix_seconds / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_resident_identity_numbers() {
        // The worked example of GB 11643-1999.
        assert_eq!(
            resident_identity_number("11010519491231002x").unwrap(),
            "11010519491231002X"
        );
        let err = resident_identity_number("110105194912310021").unwrap_err();
        assert!(
            err.contains("check character is '1', expected 'X'"),
            "{err}"
        );
        let err = resident_identity_number("110105194902300021").unwrap_err();
        assert!(err.contains("19490230 is not a valid birth date"), "{err}");
        assert!(resident_identity_number("1101051949123100").is_err());
    }

    #[test]
    fn known_unified_social_credit_codes() {
        assert_eq!(
            unified_social_credit_code("91350100M000100Y43").unwrap(),
            "91350100M000100Y43"
        );
        let err = unified_social_credit_code("91350100M000100Y44").unwrap_err();
        assert!(err.contains("expected '3'"), "{err}");
        let err = unified_social_credit_code("91350100M000100O43").unwrap_err();
        assert!(err.contains("'O' is not allowed"), "{err}");
    }

    #[test]
    fn kinds_are_told_apart_by_shape() {
        assert_eq!(
            SubjectId::parse("11010519491231002X").unwrap().kind(),
            SubjectKind::Citizen
        );
        assert_eq!(
            SubjectId::parse("91350100M000100Y43").unwrap().kind(),
            SubjectKind::LegalEntity
        );
        let official = SubjectId::parse("market-regulation/a42").unwrap();
        assert_eq!(official.as_str(), "market-regulation/A42");
        assert_eq!(official.department(), Some("market-regulation"));
        assert!(SubjectId::parse_party("market-regulation/a42").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(iso_date("2024-02-29").unwrap(), (2024, 2, 29));
        assert!(iso_date("2023-02-29").is_err());
        assert!(iso_date("2023-2-01").is_err());
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(iso_date_of(1_700_000_000), "2023-11-14");
    }

    proptest! {
        #[test]
        fn day_counts_and_dates_convert_both_ways(days in -100_000i64..200_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y as u32, m, d), days);
        }

        #[test]
        fn any_generated_identity_number_validates_and_any_wrong_check_fails(
            region in 110_000u32..660_000, year in 1900u32..2100, month in 1u32..=12, day in 1u32..=28, seq in 0u32..1000,
        ) {
            let first17 = format!("{region:06}{year:04}{month:02}{day:02}{seq:03}");
            let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
            let check = resident_identity_check(&bytes);
            let valid = resident_identity_number(&format!("{first17}{check}"));
            prop_assert!(valid.is_ok());
            for wrong in "0123456789X".chars().filter(|&c| c != check) {
                let invalid = resident_identity_number(&format!("{first17}{wrong}"));
                prop_assert!(invalid.is_err());
            }
        }

        #[test]
        fn any_generated_credit_code_validates(chars in proptest::collection::vec(0usize..31, 17)) {
            let first17: String = chars.iter().map(|&i| USCC_CHARSET[i] as char).collect();
            let check = unified_social_credit_check(first17.as_bytes()).unwrap();
            let code = format!("{first17}{check}");
            prop_assert_eq!(unified_social_credit_code(&code).unwrap(), code);
        }
    }
}

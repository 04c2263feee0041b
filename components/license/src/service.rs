//! License operations over [`Storage`] and [`Platform`].

use zhongtai_guest::{Platform, Storage, load_json, to_json};
use zhongtai_ids::{SubjectId, days_from_civil, iso_date};

use crate::model::{
    Application, Field, License, LicenseError, NewLicense, PublicKey, Revocation, type_code,
};
use crate::signing::{self, NamedKey};

/// Most fields on one license.
pub const MAX_FIELDS: usize = 32;
/// Most days a license issued for an application may be valid.
pub const MAX_VALID_DAYS: u32 = 36_600;
/// Most licenses one holder may have.
pub const MAX_LICENSES_PER_HOLDER: usize = 1_000;
const GENERATED_KEY: &str = "keys/generated";
const SECONDS_PER_DAY: u64 = 86_400;

/// The license capability bound to its storage and platform for one call.
pub struct Licenses<'a, S: Storage, P: Platform> {
    store: &'a S,
    env: &'a P,
}

fn other(message: String) -> LicenseError {
    LicenseError::Other(message)
}

fn license_key(number: &str) -> String {
    format!("license/{number}")
}

fn application_key(department: &str, application_id: &str) -> String {
    format!("application/{department}/{application_id}")
}

fn iso_day(day: i64) -> String {
    let (y, m, d) = zhongtai_ids::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn holder_key(holder: &str) -> String {
    format!("holder/{holder}/licenses")
}

/// ISO 7064 MOD 11-2 check character over `digits`.
fn check_character(digits: &str) -> char {
    let sum = digits
        .bytes()
        .fold(0u32, |acc, d| (acc + u32::from(d - b'0')) * 2 % 11);
    let check = (12 - sum % 11) % 11;
    if check == 10 {
        'X'
    } else {
        char::from(b'0' + check as u8)
    }
}

fn check_fields(fields: &[Field]) -> Result<(), LicenseError> {
    if fields.len() > MAX_FIELDS {
        return Err(LicenseError::InvalidInput(format!(
            "at most {MAX_FIELDS} fields, got {}",
            fields.len()
        )));
    }
    for field in fields {
        let valid_name = (1..=64).contains(&field.name.len())
            && field
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name {
            return Err(LicenseError::InvalidInput(format!(
                "field name {:?} must be 1 to 64 lowercase letters, digits or '-'",
                field.name
            )));
        }
        if field.value.chars().count() > 1024 {
            return Err(LicenseError::InvalidInput(format!(
                "field {} is longer than 1024 characters",
                field.name
            )));
        }
        if fields.iter().filter(|f| f.name == field.name).count() > 1 {
            return Err(LicenseError::InvalidInput(format!(
                "field {} is given twice",
                field.name
            )));
        }
    }
    Ok(())
}

/// What of `application` differs from the license `issued` for it, if
/// anything (the dates follow from the day of issue; only their span is
/// compared).
fn difference(issued: &License, application: &Application) -> Option<&'static str> {
    let holder = SubjectId::parse_party(&application.holder_id)
        .map(|h| h.as_str().to_owned())
        .unwrap_or_else(|_| application.holder_id.clone());
    let span = match (
        day_of("valid-from", &issued.valid_from),
        day_of("valid-until", &issued.valid_until),
    ) {
        (Ok(from), Ok(until)) => until - from + 1,
        _ => -1,
    };
    if issued.license_type != application.license_type {
        Some("license-type")
    } else if issued.holder_id != holder {
        Some("holder-id")
    } else if issued.holder_name != application.holder_name.trim() {
        Some("holder-name")
    } else if issued.fields != application.fields {
        Some("fields")
    } else if span != i64::from(application.valid_days) {
        Some("validity")
    } else {
        None
    }
}

fn day_of(what: &str, date: &str) -> Result<i64, LicenseError> {
    let (y, m, d) =
        iso_date(date).map_err(|e| LicenseError::InvalidInput(format!("{what}: {e}")))?;
    Ok(days_from_civil(y, m, d))
}

impl<'a, S: Storage, P: Platform> Licenses<'a, S, P> {
    /// Binds the capability to `store` and `env`.
    pub fn new(store: &'a S, env: &'a P) -> Self {
        Self { store, env }
    }

    /// Signing keys: configured ones, else one generated on first use.
    fn keys(&self) -> Result<Vec<NamedKey>, LicenseError> {
        if let Some(text) = self.env.config("signing-keys") {
            return signing::parse_keys(&text);
        }
        let seed = match self.store.get(GENERATED_KEY).map_err(other)? {
            Some(bytes) => bytes,
            None => {
                // Made once: concurrent first uses, on any host, take turns
                // (the lock is held until the call's writes are committed),
                // and the later ones find it made.
                let _making = self.env.lock(GENERATED_KEY).map_err(other)?;
                match self.store.get(GENERATED_KEY).map_err(other)? {
                    Some(bytes) => bytes,
                    None => {
                        let mut seed = vec![0u8; 32];
                        self.env.random(&mut seed);
                        self.store.set(GENERATED_KEY, &seed).map_err(other)?;
                        seed
                    }
                }
            }
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| other("the stored signing key is damaged".into()))?;
        Ok(vec![NamedKey::from_seed("local", seed)])
    }

    fn license(&self, number: &str) -> Result<License, LicenseError> {
        if number.len() > 64 {
            return Err(LicenseError::UnknownLicense);
        }
        load_json(self.store, &license_key(number))
            .map_err(other)?
            .ok_or(LicenseError::UnknownLicense)
    }

    /// Issues and signs a license; see the WIT docs of `register.issue`.
    pub fn issue(&self, request: NewLicense) -> Result<License, LicenseError> {
        self.issue_recorded(request, None)
    }

    /// Issues the license of a decided application once; see the WIT docs
    /// of `register.issue-for-application`.
    pub fn issue_for_application(&self, application: Application) -> Result<License, LicenseError> {
        let id = &application.application_id;
        let valid_id = (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_/:".contains(&b));
        if !valid_id {
            return Err(LicenseError::InvalidInput(format!(
                "application-id {id:?} must be 1 to 128 ASCII letters, digits or .-_/:"
            )));
        }
        if !(1..=MAX_VALID_DAYS).contains(&application.valid_days) {
            return Err(LicenseError::InvalidInput(format!(
                "valid-days must be 1 to {MAX_VALID_DAYS}, got {}",
                application.valid_days
            )));
        }
        let department = self.env.caller_department();
        let key = application_key(&department, id);
        let _guard = self.env.lock(&key).map_err(other)?;
        if let Some(number) = load_json::<String>(self.store, &key).map_err(other)? {
            let issued = self.license(&number)?;
            return match difference(&issued, &application) {
                None => Ok(issued),
                Some(what) => Err(LicenseError::ApplicationConflict(format!(
                    "application {id} was issued license {number}; this one differs in its {what}"
                ))),
            };
        }
        let today = (self.env.now() / SECONDS_PER_DAY) as i64;
        let request = NewLicense {
            license_type: application.license_type,
            holder_id: application.holder_id,
            holder_name: application.holder_name,
            fields: application.fields,
            valid_from: iso_day(today),
            valid_until: iso_day(today + i64::from(application.valid_days) - 1),
        };
        self.issue_recorded(request, Some(key))
    }

    /// Issues and signs a license, recording its number at `application`
    /// in the same write when it is for one.
    fn issue_recorded(
        &self,
        request: NewLicense,
        application: Option<String>,
    ) -> Result<License, LicenseError> {
        let code = type_code(&request.license_type)
            .ok_or_else(|| LicenseError::UnknownLicenseType(request.license_type.clone()))?;
        let holder =
            SubjectId::parse_party(&request.holder_id).map_err(LicenseError::InvalidIdentifier)?;
        let holder_name = request.holder_name.trim();
        if holder_name.is_empty() || holder_name.chars().count() > 128 {
            return Err(LicenseError::InvalidInput(
                "holder-name must be 1 to 128 characters".into(),
            ));
        }
        check_fields(&request.fields)?;
        let from = day_of("valid-from", &request.valid_from)?;
        let until = day_of("valid-until", &request.valid_until)?;
        if until < from {
            return Err(LicenseError::InvalidInput(
                "valid-until is before valid-from".into(),
            ));
        }
        if until - from > 100 * 366 {
            return Err(LicenseError::InvalidInput(
                "a license may be valid for at most 100 years".into(),
            ));
        }
        let keys = self.keys()?;
        let now = self.env.now();
        let (year, _, _) = zhongtai_ids::civil_from_days((now / SECONDS_PER_DAY) as i64);
        let _guard = self.env.lock(&format!("holder/{holder}")).map_err(other)?;
        let holder_index = holder_key(holder.as_str());
        let mut numbers: Vec<String> = load_json(self.store, &holder_index)
            .map_err(other)?
            .unwrap_or_default();
        if numbers.len() >= MAX_LICENSES_PER_HOLDER {
            return Err(LicenseError::InvalidInput(format!(
                "{holder} holds {MAX_LICENSES_PER_HOLDER} licenses, the most one holder may"
            )));
        }
        let serial = self
            .store
            .increment(&format!("license-sequence/{code}/{year}"), 1)
            .map_err(other)?;
        let digits = format!("{year:04}{serial:08}");
        let mut license = License {
            number: format!("{code}-{year:04}-{serial:08}-{}", check_character(&digits)),
            license_type: request.license_type,
            holder_id: holder.as_str().to_owned(),
            holder_name: holder_name.to_owned(),
            fields: request.fields,
            valid_from: request.valid_from,
            valid_until: request.valid_until,
            issuing_department: self.env.caller_department(),
            issued_at: now,
            key_id: keys[0].id.clone(),
            signature: String::new(),
            revoked: None,
        };
        license.signature = keys[0].sign(&license);
        numbers.push(license.number.clone());
        let mut writes = vec![
            (
                license_key(&license.number),
                to_json(&license).map_err(other)?,
            ),
            (holder_index, to_json(&numbers).map_err(other)?),
        ];
        if let Some(application) = application {
            writes.push((application, to_json(&license.number).map_err(other)?));
        }
        self.store.set_many(writes).map_err(other)?;
        Ok(license)
    }

    /// Revokes a license; see the WIT docs of `register.revoke`.
    pub fn revoke(&self, number: &str, reason: &str) -> Result<License, LicenseError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 256 {
            return Err(LicenseError::InvalidInput(
                "reason must be 1 to 256 characters".into(),
            ));
        }
        let _guard = self.env.lock(&format!("license/{number}")).map_err(other)?;
        let mut license = self.license(number)?;
        let caller = self.env.caller_department();
        if caller != license.issuing_department {
            return Err(LicenseError::Forbidden(format!(
                "only {} may revoke license {}, not {caller}",
                license.issuing_department, license.number
            )));
        }
        if let Some(revocation) = &license.revoked {
            return Err(LicenseError::Revoked(revocation.reason.clone()));
        }
        license.revoked = Some(Revocation {
            reason: reason.to_owned(),
            revoked_at: self.env.now(),
        });
        self.store
            .set(
                &license_key(&license.number),
                &to_json(&license).map_err(other)?,
            )
            .map_err(other)?;
        Ok(license)
    }

    /// Returns a license as stored, whatever its state.
    pub fn get(&self, number: &str) -> Result<License, LicenseError> {
        self.license(number)
    }

    /// A holder's licenses, in issue order.
    pub fn list_by_holder(&self, holder_id: &str) -> Result<Vec<License>, LicenseError> {
        let holder = SubjectId::parse_party(holder_id).map_err(LicenseError::InvalidIdentifier)?;
        let numbers: Vec<String> = load_json(self.store, &holder_key(holder.as_str()))
            .map_err(other)?
            .unwrap_or_default();
        numbers.iter().map(|n| self.license(n)).collect()
    }

    /// Verifies a license; see the WIT docs of `verification.verify`.
    pub fn verify(&self, number: &str) -> Result<License, LicenseError> {
        let license = self.license(number)?;
        let keys = self.keys()?;
        let key = keys
            .iter()
            .find(|k| k.id == license.key_id)
            .ok_or(LicenseError::BadSignature)?;
        signing::verify_offline(&license, &key.public_key())?;
        if let Some(revocation) = &license.revoked {
            return Err(LicenseError::Revoked(revocation.reason.clone()));
        }
        let today = (self.env.now() / SECONDS_PER_DAY) as i64;
        if today < day_of("valid-from", &license.valid_from)? {
            return Err(LicenseError::NotYetValid);
        }
        if today > day_of("valid-until", &license.valid_until)? {
            return Err(LicenseError::Expired);
        }
        Ok(license)
    }

    /// The verification keys; see the WIT docs of `verification.public-keys`.
    pub fn public_keys(&self) -> Result<Vec<PublicKey>, LicenseError> {
        Ok(self
            .keys()?
            .iter()
            .map(|k| PublicKey {
                key_id: k.id.clone(),
                key: k.public_key(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::check_character;

    #[test]
    fn check_characters_follow_iso_7064_mod_11_2() {
        // The resident identity number example: its first 17 digits give X.
        assert_eq!(check_character("11010519491231002"), 'X');
        assert_eq!(check_character("44030419900307123"), 'X');
        assert_eq!(check_character("32010219851120456"), '6');
    }
}

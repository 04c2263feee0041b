//! The WIT export layer: binds the license logic to the platform imports.

use zhongtai_guest::wasm::{Bucket, Host};

use crate::model;
use crate::service::Licenses;

zhongtai_guest::capability_bindings!("../../wit/license", "zhongtai:license/component");

use exports::zhongtai::license::{register, verification};
use zhongtai::license::types as wit;

struct Component;

fn with_licenses<T>(
    f: impl FnOnce(&Licenses<'_, Bucket, Host>) -> Result<T, model::LicenseError>,
) -> Result<T, wit::Error> {
    let bucket = Bucket::default();
    f(&Licenses::new(&bucket, &Host)).map_err(|error| match error {
        model::LicenseError::InvalidIdentifier(m) => wit::Error::InvalidIdentifier(m),
        model::LicenseError::InvalidInput(m) => wit::Error::InvalidInput(m),
        model::LicenseError::UnknownLicenseType(m) => wit::Error::UnknownLicenseType(m),
        model::LicenseError::UnknownLicense => wit::Error::UnknownLicense,
        model::LicenseError::BadSignature => wit::Error::BadSignature,
        model::LicenseError::Expired => wit::Error::Expired,
        model::LicenseError::NotYetValid => wit::Error::NotYetValid,
        model::LicenseError::Revoked(m) => wit::Error::Revoked(m),
        model::LicenseError::Forbidden(m) => wit::Error::Forbidden(m),
        model::LicenseError::Other(m) => wit::Error::Other(m),
        model::LicenseError::ApplicationConflict(m) => wit::Error::ApplicationConflict(m),
    })
}

fn fields_from_wit(fields: Vec<wit::Field>) -> Vec<model::Field> {
    fields
        .into_iter()
        .map(|f| model::Field {
            name: f.name,
            value: f.value,
        })
        .collect()
}

fn license_to_wit(license: model::License) -> wit::License {
    wit::License {
        number: license.number,
        license_type: license.license_type,
        holder_id: license.holder_id,
        holder_name: license.holder_name,
        fields: license
            .fields
            .into_iter()
            .map(|f| wit::Field {
                name: f.name,
                value: f.value,
            })
            .collect(),
        valid_from: license.valid_from,
        valid_until: license.valid_until,
        issuing_department: license.issuing_department,
        issued_at: license.issued_at,
        key_id: license.key_id,
        signature: license.signature,
        revoked: license.revoked.map(|r| wit::Revocation {
            reason: r.reason,
            revoked_at: r.revoked_at,
        }),
    }
}

impl register::Guest for Component {
    fn issue(request: wit::NewLicense) -> Result<wit::License, wit::Error> {
        let request = model::NewLicense {
            license_type: request.license_type,
            holder_id: request.holder_id,
            holder_name: request.holder_name,
            fields: fields_from_wit(request.fields),
            valid_from: request.valid_from,
            valid_until: request.valid_until,
        };
        with_licenses(|l| l.issue(request)).map(license_to_wit)
    }

    fn issue_for_application(application: wit::Application) -> Result<wit::License, wit::Error> {
        let application = model::Application {
            application_id: application.application_id,
            license_type: application.license_type,
            holder_id: application.holder_id,
            holder_name: application.holder_name,
            fields: fields_from_wit(application.fields),
            valid_days: application.valid_days,
        };
        with_licenses(|l| l.issue_for_application(application)).map(license_to_wit)
    }

    fn revoke(number: String, reason: String) -> Result<wit::License, wit::Error> {
        with_licenses(|l| l.revoke(&number, &reason)).map(license_to_wit)
    }

    fn get(number: String) -> Result<wit::License, wit::Error> {
        with_licenses(|l| l.get(&number)).map(license_to_wit)
    }

    fn list_by_holder(holder_id: String) -> Result<Vec<wit::License>, wit::Error> {
        with_licenses(|l| l.list_by_holder(&holder_id))
            .map(|all| all.into_iter().map(license_to_wit).collect())
    }
}

impl verification::Guest for Component {
    fn verify(number: String) -> Result<wit::License, wit::Error> {
        with_licenses(|l| l.verify(&number)).map(license_to_wit)
    }

    fn public_keys() -> Vec<wit::PublicKey> {
        with_licenses(|l| l.public_keys())
            .unwrap_or_default()
            .into_iter()
            .map(|k| wit::PublicKey {
                key_id: k.key_id,
                algorithm: "ed25519".into(),
                key: k.key,
            })
            .collect()
    }
}

export!(Component);

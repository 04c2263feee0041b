//! The WIT export layer: binds the credit logic to the platform imports.

use zhongtai_guest::wasm::{Bucket, Host};

use crate::model;
use crate::service::Credit;

zhongtai_guest::capability_bindings!("../../wit/credit", "zhongtai:credit/component");

use exports::zhongtai::credit::{records, scoring};
use zhongtai::credit::types as wit;

struct Component;

fn with_credit<T>(
    f: impl FnOnce(&Credit<'_, Bucket, Host>) -> Result<T, model::CreditError>,
) -> Result<T, wit::Error> {
    let bucket = Bucket::default();
    f(&Credit::new(&bucket, &Host)).map_err(|error| match error {
        model::CreditError::InvalidIdentifier(m) => wit::Error::InvalidIdentifier(m),
        model::CreditError::InvalidDate(m) => wit::Error::InvalidDate(m),
        model::CreditError::InvalidInput(m) => wit::Error::InvalidInput(m),
        model::CreditError::UnknownEvent => wit::Error::UnknownEvent,
        model::CreditError::AlreadyWithdrawn => wit::Error::AlreadyWithdrawn,
        model::CreditError::Forbidden(m) => wit::Error::Forbidden(m),
        model::CreditError::Other(m) => wit::Error::Other(m),
    })
}

fn category_from_wit(category: wit::Category) -> model::Category {
    match category {
        wit::Category::Commendation => model::Category::Commendation,
        wit::Category::OnTimeTax => model::Category::OnTimeTax,
        wit::Category::AdministrativePenalty => model::Category::AdministrativePenalty,
        wit::Category::CourtEnforcement => model::Category::CourtEnforcement,
        wit::Category::TaxArrears => model::Category::TaxArrears,
    }
}

fn category_to_wit(category: model::Category) -> wit::Category {
    match category {
        model::Category::Commendation => wit::Category::Commendation,
        model::Category::OnTimeTax => wit::Category::OnTimeTax,
        model::Category::AdministrativePenalty => wit::Category::AdministrativePenalty,
        model::Category::CourtEnforcement => wit::Category::CourtEnforcement,
        model::Category::TaxArrears => wit::Category::TaxArrears,
    }
}

fn severity_from_wit(severity: wit::Severity) -> model::Severity {
    match severity {
        wit::Severity::Minor => model::Severity::Minor,
        wit::Severity::Moderate => model::Severity::Moderate,
        wit::Severity::Serious => model::Severity::Serious,
        wit::Severity::Severe => model::Severity::Severe,
    }
}

fn severity_to_wit(severity: model::Severity) -> wit::Severity {
    match severity {
        model::Severity::Minor => wit::Severity::Minor,
        model::Severity::Moderate => wit::Severity::Moderate,
        model::Severity::Serious => wit::Severity::Serious,
        model::Severity::Severe => wit::Severity::Severe,
    }
}

fn event_to_wit(event: model::CreditEvent) -> wit::CreditEvent {
    wit::CreditEvent {
        id: event.id,
        subject_id: event.subject_id,
        category: category_to_wit(event.category),
        severity: severity_to_wit(event.severity),
        occurred_on: event.occurred_on,
        legal_basis: event.legal_basis,
        description: event.description,
        issuing_department: event.issuing_department,
        recorded_at: event.recorded_at,
        withdrawn: event.withdrawn.map(|w| wit::Withdrawal {
            reason: w.reason,
            withdrawn_at: w.withdrawn_at,
        }),
    }
}

impl records::Guest for Component {
    fn add_event(event: wit::NewEvent) -> Result<wit::CreditEvent, wit::Error> {
        let event = model::NewEvent {
            subject_id: event.subject_id,
            category: category_from_wit(event.category),
            severity: severity_from_wit(event.severity),
            occurred_on: event.occurred_on,
            legal_basis: event.legal_basis,
            description: event.description,
        };
        with_credit(|credit| credit.add_event(event)).map(event_to_wit)
    }

    fn list_events(
        subject_id: String,
        include_withdrawn: bool,
    ) -> Result<Vec<wit::CreditEvent>, wit::Error> {
        with_credit(|credit| credit.list_events(&subject_id, include_withdrawn))
            .map(|events| events.into_iter().map(event_to_wit).collect())
    }

    fn withdraw(event_id: String, reason: String) -> Result<wit::CreditEvent, wit::Error> {
        with_credit(|credit| credit.withdraw(&event_id, &reason)).map(event_to_wit)
    }
}

impl scoring::Guest for Component {
    fn evaluate(subject_id: String) -> Result<wit::Evaluation, wit::Error> {
        with_credit(|credit| credit.evaluate(&subject_id)).map(|e| wit::Evaluation {
            subject_id: e.subject_id,
            score: e.score,
            level: match e.level {
                model::Level::A => wit::Level::A,
                model::Level::B => wit::Level::B,
                model::Level::C => wit::Level::C,
                model::Level::D => wit::Level::D,
            },
            serious_dishonesty: e.serious_dishonesty,
            active_events: e.active_events,
            evaluated_at: e.evaluated_at,
        })
    }
}

export!(Component);

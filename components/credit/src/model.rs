//! The credit capability's records and errors.

use serde::{Deserialize, Serialize};

/// What kind of conduct an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// A commendation (positive).
    Commendation,
    /// Taxes paid on time (positive).
    OnTimeTax,
    /// An administrative penalty.
    AdministrativePenalty,
    /// A court enforcement order.
    CourtEnforcement,
    /// Tax arrears.
    TaxArrears,
}

impl Category {
    /// Points of one event of weight 1, before decay.
    pub fn points(self) -> f64 {
        match self {
            Category::Commendation => 40.0,
            Category::OnTimeTax => 10.0,
            Category::AdministrativePenalty => -60.0,
            Category::TaxArrears => -80.0,
            Category::CourtEnforcement => -150.0,
        }
    }
}

/// How grave an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Weight 1.
    Minor,
    /// Weight 2.
    Moderate,
    /// Weight 3.
    Serious,
    /// Weight 5.
    Severe,
}

impl Severity {
    /// The multiplier of an event's points.
    pub fn weight(self) -> f64 {
        match self {
            Severity::Minor => 1.0,
            Severity::Moderate => 2.0,
            Severity::Serious => 3.0,
            Severity::Severe => 5.0,
        }
    }
}

/// What a department reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Resident identity number or unified social credit code.
    pub subject_id: String,
    /// Kind of conduct.
    pub category: Category,
    /// How grave.
    pub severity: Severity,
    /// `YYYY-MM-DD`.
    pub occurred_on: String,
    /// The law the record rests on.
    pub legal_basis: String,
    /// Free text.
    pub description: String,
}

/// A withdrawal by credit repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// Why.
    pub reason: String,
    /// Unix seconds.
    pub withdrawn_at: u64,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditEvent {
    /// `CE` and 20 digits.
    pub id: String,
    /// Canonical subject id.
    pub subject_id: String,
    /// Kind of conduct.
    pub category: Category,
    /// How grave.
    pub severity: Severity,
    /// `YYYY-MM-DD`.
    pub occurred_on: String,
    /// The law the record rests on.
    pub legal_basis: String,
    /// Free text.
    pub description: String,
    /// Department that recorded it.
    pub issuing_department: String,
    /// Unix seconds.
    pub recorded_at: u64,
    /// Set by credit repair.
    pub withdrawn: Option<Withdrawal>,
}

/// Credit level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    /// 850 and above.
    A,
    /// 700 to 849.
    B,
    /// 550 to 699.
    C,
    /// Below 550, or on the serious-dishonesty list.
    D,
}

/// The result of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Canonical subject id.
    pub subject_id: String,
    /// 0 to 1000.
    pub score: u32,
    /// A to D.
    pub level: Level,
    /// On the serious-dishonesty list.
    pub serious_dishonesty: bool,
    /// Events that counted.
    pub active_events: u32,
    /// Unix seconds.
    pub evaluated_at: u64,
}

/// Why a credit call failed; mirrors the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditError {
    /// Malformed subject id.
    InvalidIdentifier(String),
    /// Malformed or future date.
    InvalidDate(String),
    /// Another bad argument.
    InvalidInput(String),
    /// No such event.
    UnknownEvent,
    /// Withdrawn before.
    AlreadyWithdrawn,
    /// Not allowed.
    Forbidden(String),
    /// Storage or other failure.
    Other(String),
}

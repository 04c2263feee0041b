//! The scoring formula (documented in `wit/credit/records.wit`).

use crate::model::{Category, CreditEvent, Level, Severity};

/// Score of a subject with no events.
pub const BASE_SCORE: f64 = 800.0;
/// Events older than this many days no longer count.
pub const ACTIVE_DAYS: i64 = 1826;

/// Days over which an event's weight halves.
fn half_life_days(category: Category) -> f64 {
    if category.points() > 0.0 {
        365.0
    } else {
        730.0
    }
}

/// An event's age in days on `today` (days since 1970-01-01), if it counts.
pub fn active_age(event: &CreditEvent, today: i64) -> Option<i64> {
    if event.withdrawn.is_some() {
        return None;
    }
    let (y, m, d) = zhongtai_ids::iso_date(&event.occurred_on).ok()?;
    let age = today - zhongtai_ids::days_from_civil(y, m, d);
    (0..=ACTIVE_DAYS).contains(&age).then_some(age)
}

/// Score, serious-dishonesty flag and count of active events.
pub fn score(events: &[CreditEvent], today: i64) -> (u32, bool, u32) {
    let mut total = BASE_SCORE;
    let mut dishonest = false;
    let mut active = 0;
    for event in events {
        let Some(age) = active_age(event, today) else {
            continue;
        };
        active += 1;
        let decay = 0.5f64.powf(age as f64 / half_life_days(event.category));
        total += event.category.points() * event.severity.weight() * decay;
        dishonest |= match event.category {
            Category::CourtEnforcement => event.severity >= Severity::Serious,
            Category::TaxArrears => event.severity == Severity::Severe,
            _ => false,
        };
    }
    (total.round().clamp(0.0, 1000.0) as u32, dishonest, active)
}

/// The level of a score.
pub fn level(score: u32, serious_dishonesty: bool) -> Level {
    match score {
        _ if serious_dishonesty => Level::D,
        0..=549 => Level::D,
        550..=699 => Level::C,
        700..=849 => Level::B,
        _ => Level::A,
    }
}

//! Credit operations over [`Storage`] and [`Platform`].

use zhongtai_guest::{Platform, Storage, load_json, to_json};
use zhongtai_ids::SubjectId;

use crate::model::{CreditError, CreditEvent, Evaluation, NewEvent, Withdrawal};
use crate::scoring;

/// Most events one subject may hold.
pub const MAX_EVENTS_PER_SUBJECT: usize = 10_000;
const SECONDS_PER_DAY: u64 = 86_400;

/// The credit capability bound to its storage and platform for one call.
pub struct Credit<'a, S: Storage, P: Platform> {
    store: &'a S,
    env: &'a P,
}

fn other(message: String) -> CreditError {
    CreditError::Other(message)
}

fn check_text(what: &str, text: &str, min: usize, max: usize) -> Result<(), CreditError> {
    let length = text.trim().chars().count();
    if length < min || length > max {
        return Err(CreditError::InvalidInput(format!(
            "{what} must be {min} to {max} characters, got {length}"
        )));
    }
    Ok(())
}

fn events_key(subject: &str) -> String {
    format!("subject/{subject}/events")
}

fn event_key(id: &str) -> String {
    format!("event/{id}")
}

impl<'a, S: Storage, P: Platform> Credit<'a, S, P> {
    /// Binds the capability to `store` and `env`.
    pub fn new(store: &'a S, env: &'a P) -> Self {
        Self { store, env }
    }

    fn today(&self) -> i64 {
        (self.env.now() / SECONDS_PER_DAY) as i64
    }

    fn subject(&self, id: &str) -> Result<SubjectId, CreditError> {
        SubjectId::parse_party(id).map_err(CreditError::InvalidIdentifier)
    }

    fn event(&self, id: &str) -> Result<CreditEvent, CreditError> {
        if id.len() > 64 {
            return Err(CreditError::UnknownEvent);
        }
        load_json(self.store, &event_key(id))
            .map_err(other)?
            .ok_or(CreditError::UnknownEvent)
    }

    fn events_of(&self, subject: &SubjectId) -> Result<Vec<CreditEvent>, CreditError> {
        let ids: Vec<String> = load_json(self.store, &events_key(subject.as_str()))
            .map_err(other)?
            .unwrap_or_default();
        ids.iter().map(|id| self.event(id)).collect()
    }

    /// Records an event; see the WIT docs of `records.add-event`.
    pub fn add_event(&self, event: NewEvent) -> Result<CreditEvent, CreditError> {
        let subject = self.subject(&event.subject_id)?;
        let (y, m, d) =
            zhongtai_ids::iso_date(&event.occurred_on).map_err(CreditError::InvalidDate)?;
        let day = zhongtai_ids::days_from_civil(y, m, d);
        if day > self.today() {
            return Err(CreditError::InvalidDate(format!(
                "{} is in the future",
                event.occurred_on
            )));
        }
        if y < 1949 {
            return Err(CreditError::InvalidDate(format!(
                "{} is before 1949",
                event.occurred_on
            )));
        }
        check_text("legal-basis", &event.legal_basis, 1, 256)?;
        check_text("description", &event.description, 0, 1024)?;
        let _guard = self
            .env
            .lock(&format!("subject/{subject}"))
            .map_err(other)?;
        let key = events_key(subject.as_str());
        let mut ids: Vec<String> = load_json(self.store, &key)
            .map_err(other)?
            .unwrap_or_default();
        if ids.len() >= MAX_EVENTS_PER_SUBJECT {
            return Err(CreditError::InvalidInput(format!(
                "{subject} holds {MAX_EVENTS_PER_SUBJECT} events, the most one subject may"
            )));
        }
        let number = self.store.increment("event-sequence", 1).map_err(other)?;
        let recorded = CreditEvent {
            id: format!("CE{number:020}"),
            subject_id: subject.as_str().to_owned(),
            category: event.category,
            severity: event.severity,
            occurred_on: event.occurred_on,
            legal_basis: event.legal_basis.trim().to_owned(),
            description: event.description.trim().to_owned(),
            issuing_department: self.env.caller_department(),
            recorded_at: self.env.now(),
            withdrawn: None,
        };
        ids.push(recorded.id.clone());
        self.store
            .set_many(vec![
                (event_key(&recorded.id), to_json(&recorded).map_err(other)?),
                (key, to_json(&ids).map_err(other)?),
            ])
            .map_err(other)?;
        Ok(recorded)
    }

    /// A subject's events; see the WIT docs of `records.list-events`.
    pub fn list_events(
        &self,
        subject_id: &str,
        include_withdrawn: bool,
    ) -> Result<Vec<CreditEvent>, CreditError> {
        let subject = self.subject(subject_id)?;
        let mut events = self.events_of(&subject)?;
        if !include_withdrawn {
            events.retain(|e| e.withdrawn.is_none());
        }
        Ok(events)
    }

    /// Withdraws an event; see the WIT docs of `records.withdraw`.
    pub fn withdraw(&self, event_id: &str, reason: &str) -> Result<CreditEvent, CreditError> {
        check_text("reason", reason, 1, 256)?;
        let _guard = self.env.lock(&format!("event/{event_id}")).map_err(other)?;
        let mut event = self.event(event_id)?;
        let caller = self.env.caller_department();
        if caller != event.issuing_department {
            return Err(CreditError::Forbidden(format!(
                "only {} may withdraw event {}, not {caller}",
                event.issuing_department, event.id
            )));
        }
        if event.withdrawn.is_some() {
            return Err(CreditError::AlreadyWithdrawn);
        }
        event.withdrawn = Some(Withdrawal {
            reason: reason.trim().to_owned(),
            withdrawn_at: self.env.now(),
        });
        self.store
            .set(&event_key(&event.id), &to_json(&event).map_err(other)?)
            .map_err(other)?;
        Ok(event)
    }

    /// Evaluates a subject; see the WIT docs of `scoring.evaluate`.
    pub fn evaluate(&self, subject_id: &str) -> Result<Evaluation, CreditError> {
        let subject = self.subject(subject_id)?;
        let events = self.events_of(&subject)?;
        let (score, serious_dishonesty, active_events) = scoring::score(&events, self.today());
        Ok(Evaluation {
            subject_id: subject.as_str().to_owned(),
            score,
            level: scoring::level(score, serious_dishonesty),
            serious_dishonesty,
            active_events,
            evaluated_at: self.env.now(),
        })
    }
}

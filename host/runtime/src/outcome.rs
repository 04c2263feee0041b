//! How a call ended, read from the function's WIT result type rather than
//! guessed from the JSON's shape: a record whose only field is named `ok`,
//! or a variant with a case named `err`, is a value like any other; only a
//! WIT `result` has an `ok` or an `err`.
//!
//! Workflows take the answer of a step from [`Returned::into_answer`] and
//! its error case from [`Outcome::Error`]; the audit record of the call is
//! settled from the same [`Outcome`].

use serde_json::Value as Json;
use wasmtime::component::Val;

use crate::values::{UnrepresentableValue, val_to_json};

/// What a call returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Returned {
    /// The whole result in the JSON mapping of [`crate::values`] (`null`
    /// for a function without a result).
    pub json: Json,
    /// How the call ended.
    pub outcome: Outcome,
}

/// How a call ended, by its WIT result type.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function's result is not a WIT `result` (or it has none): the
    /// value is the answer.
    Value,
    /// The `ok` of a WIT `result`: its payload is the answer.
    Ok,
    /// The `err` of a WIT `result`.
    Error {
        /// The case of the error variant or enum; `error` when the error
        /// type is neither, or there is no error payload.
        case: String,
        /// The case's payload, if it has one (for an error type that is
        /// not a variant or enum, the whole error value).
        detail: Option<Json>,
    },
}

/// The case name used when a `result`'s error is not a variant or enum.
pub const PLAIN_ERROR_CASE: &str = "error";

impl Returned {
    /// Reads the value a function returned (`None` when it returns nothing).
    pub fn from_val(val: Option<&Val>) -> Result<Self, UnrepresentableValue> {
        let Some(val) = val else {
            return Ok(Self {
                json: Json::Null,
                outcome: Outcome::Value,
            });
        };
        let json = val_to_json(val)?;
        let outcome = match val {
            Val::Result(Ok(_)) => Outcome::Ok,
            Val::Result(Err(error)) => match error.as_deref() {
                Some(Val::Variant(case, payload)) => Outcome::Error {
                    case: case.clone(),
                    detail: payload.as_deref().map(val_to_json).transpose()?,
                },
                Some(Val::Enum(case)) => Outcome::Error {
                    case: case.clone(),
                    detail: None,
                },
                Some(other) => Outcome::Error {
                    case: PLAIN_ERROR_CASE.to_owned(),
                    detail: Some(val_to_json(other)?),
                },
                None => Outcome::Error {
                    case: PLAIN_ERROR_CASE.to_owned(),
                    detail: None,
                },
            },
            _ => Outcome::Value,
        };
        Ok(Self { json, outcome })
    }

    /// The error case, when the call returned the `err` of a `result`.
    pub fn error_case(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Error { case, .. } => Some(case),
            _ => None,
        }
    }

    /// What a caller reads as the answer: the payload of `ok` (`null` when
    /// it has none), or the whole value when the result is not a `result`.
    /// For an `err`, the whole value.
    pub fn into_answer(self) -> Json {
        match (self.outcome, self.json) {
            (Outcome::Ok, Json::Object(mut map)) => map.remove("ok").unwrap_or(Json::Null),
            (_, json) => json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(val: Val) -> Returned {
        Returned::from_val(Some(&val)).unwrap()
    }

    #[test]
    fn only_a_wit_result_has_ok_and_err() {
        let record = read(Val::Record(vec![("ok".into(), Val::U32(7))]));
        assert_eq!(record.outcome, Outcome::Value);
        assert_eq!(record.into_answer(), json!({"ok": 7}));

        let variant = read(Val::Variant("err".into(), Some(Box::new(Val::U32(1)))));
        assert_eq!(variant.outcome, Outcome::Value);
        assert_eq!(variant.error_case(), None);

        let ok = read(Val::Result(Ok(Some(Box::new(Val::U32(7))))));
        assert_eq!(ok.outcome, Outcome::Ok);
        assert_eq!(ok.json, json!({"ok": 7}));
        assert_eq!(ok.into_answer(), json!(7));
    }

    #[test]
    fn errors_name_their_case() {
        let variant = read(Val::Result(Err(Some(Box::new(Val::Variant(
            "expired".into(),
            Some(Box::new(Val::String("at noon".into()))),
        ))))));
        assert_eq!(
            variant.outcome,
            Outcome::Error {
                case: "expired".into(),
                detail: Some(json!("at noon"))
            }
        );
        let enumerated = read(Val::Result(Err(Some(Box::new(Val::Enum(
            "revoked".into(),
        ))))));
        assert_eq!(enumerated.error_case(), Some("revoked"));
        let plain = read(Val::Result(Err(Some(Box::new(Val::String("no".into()))))));
        assert_eq!(
            plain.outcome,
            Outcome::Error {
                case: PLAIN_ERROR_CASE.into(),
                detail: Some(json!("no"))
            }
        );
        let bare = read(Val::Result(Err(None)));
        assert_eq!(bare.error_case(), Some(PLAIN_ERROR_CASE));
    }

    #[test]
    fn no_result_is_null() {
        let none = Returned::from_val(None).unwrap();
        assert_eq!(none.json, Json::Null);
        assert_eq!(none.outcome, Outcome::Value);
    }
}

//! A request body as a service sees it: parsed from JSON, but only the
//! top-level fields its expressions read ([`BodyFields`], found at deploy)
//! are kept and converted; the rest is checked to be JSON and skipped
//! without being built. What is kept is bounded: at most
//! [`MAX_BODY_VALUES`] JSON values, nested at most [`MAX_BODY_DEPTH`] deep.
//! So a megabyte of objects a service never reads costs a scan, not a
//! tree and its conversion to CEL.

use std::collections::BTreeSet;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value as Json;
use zhongtai_manifest::WitType;
use zhongtai_manifest::expr::BodyFields;

use crate::error::ApiError;

/// Most JSON values (objects, arrays and scalars together) the read parts
/// of a body may hold.
pub const MAX_BODY_VALUES: usize = 10_000;

/// Deepest nesting of the read parts of a body.
pub const MAX_BODY_DEPTH: usize = 32;

/// The body `bytes` (empty: `null`) as a service that reads `fields` of it
/// sees it; 400 when it is not JSON or what is read is too large or deep.
pub fn parse(bytes: &[u8], fields: &BodyFields) -> Result<Json, ApiError> {
    if bytes.is_empty() {
        return Ok(Json::Null);
    }
    let not_json =
        |e: serde_json::Error| ApiError::bad_request(format!("the body is not JSON: {e}"));
    let starts_object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let body = match fields {
        BodyFields::Nothing => {
            serde_json::from_slice::<IgnoredAny>(bytes).map_err(not_json)?;
            Json::Null
        }
        BodyFields::Named(names) if starts_object => {
            let mut deserializer = serde_json::Deserializer::from_slice(bytes);
            let kept = Selected(names)
                .deserialize(&mut deserializer)
                .map_err(not_json)?;
            deserializer.end().map_err(not_json)?;
            kept
        }
        BodyFields::Named(_) | BodyFields::All => {
            serde_json::from_slice::<Json>(bytes).map_err(not_json)?
        }
    };
    let mut budget = MAX_BODY_VALUES;
    within_bounds(&body, 1, &mut budget)?;
    Ok(body)
}

/// The body `bytes` checked against its declared type `ty` and read as
/// the type says (see [`WitType::check`]); 400 `invalid-body` naming the
/// place when it is not JSON, is too large or deep, or does not match.
pub fn parse_typed(bytes: &[u8], ty: &WitType) -> Result<Json, ApiError> {
    let invalid = |message: String| ApiError::new(400, "invalid-body", message);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(format!(
            "the service takes a body of type {ty}, and the request has none"
        )));
    }
    let body = serde_json::from_slice::<Json>(bytes)
        .map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
    let mut budget = MAX_BODY_VALUES;
    within_bounds(&body, 1, &mut budget)?;
    ty.check(&body)
        .map_err(|mismatch| invalid(mismatch.to_string()))
}

/// Refuses `value` (at `depth`) when it is nested too deep or, with what
/// was counted before, holds more values than `budget` has left.
fn within_bounds(value: &Json, depth: usize, budget: &mut usize) -> Result<(), ApiError> {
    if depth > MAX_BODY_DEPTH {
        return Err(ApiError::bad_request(format!(
            "the body is nested more than {MAX_BODY_DEPTH} deep"
        )));
    }
    if *budget == 0 {
        return Err(ApiError::bad_request(format!(
            "the body holds more than {MAX_BODY_VALUES} values in the fields the service reads"
        )));
    }
    *budget -= 1;
    match value {
        Json::Array(items) => items
            .iter()
            .try_for_each(|item| within_bounds(item, depth + 1, budget)),
        Json::Object(map) => map
            .values()
            .try_for_each(|item| within_bounds(item, depth + 1, budget)),
        _ => Ok(()),
    }
}

/// Deserializes a JSON object keeping only the named fields.
struct Selected<'a>(&'a BTreeSet<String>);

impl<'de> DeserializeSeed<'de> for Selected<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Selected<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut kept = serde_json::Map::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if self.0.contains(key.as_ref()) {
                kept.insert(key.into_owned(), map.next_value::<Json>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Json::Object(kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn named(names: &[&str]) -> BodyFields {
        BodyFields::Named(names.iter().map(|n| (*n).to_owned()).collect())
    }

    #[test]
    fn only_the_fields_read_are_kept() {
        let body = br#"{"scope": "tea", "junk": [1, 2, {"deep": true}], "id": "A-1"}"#;
        assert_eq!(
            parse(body, &named(&["scope", "id"])).unwrap(),
            json!({"scope": "tea", "id": "A-1"})
        );
        assert_eq!(parse(body, &BodyFields::Nothing).unwrap(), Json::Null);
        assert_eq!(
            parse(body, &BodyFields::All).unwrap()["junk"][2]["deep"],
            true
        );
        assert_eq!(parse(b"[1, 2]", &named(&["x"])).unwrap(), json!([1, 2]));
        assert_eq!(parse(b"", &BodyFields::All).unwrap(), Json::Null);
    }

    #[test]
    fn a_body_that_is_not_json_is_refused_even_when_nothing_is_read() {
        for bad in [&b"{\"a\": "[..], b"{\"a\": 1} trailing", b"nope"] {
            for fields in [BodyFields::Nothing, named(&["a"]), BodyFields::All] {
                let refused = parse(bad, &fields).unwrap_err();
                assert_eq!(refused.status.as_u16(), 400);
                assert!(
                    refused.message.starts_with("the body is not JSON"),
                    "{refused}"
                );
            }
        }
    }

    #[test]
    fn what_is_read_is_bounded_in_size_and_depth() {
        let many = serde_json::to_vec(&json!({"items": vec![json!({"n": 1}); 6_000], "other": 1}))
            .unwrap();
        let refused = parse(&many, &named(&["items"])).unwrap_err();
        assert!(
            refused.message.contains("more than 10000 values"),
            "{refused}"
        );
        // The same body is fine for a service that does not read `items`.
        assert_eq!(
            parse(&many, &named(&["other"])).unwrap(),
            json!({"other": 1})
        );
        let deep = format!("{{\"a\": {}1{}}}", "[".repeat(40), "]".repeat(40));
        let refused = parse(deep.as_bytes(), &named(&["a"])).unwrap_err();
        assert!(refused.message.contains("nested more than 32"), "{refused}");
    }
}

//! Map keys. A JSON object's keys are text, so a WIT `map<K, V>` key is
//! written as text both ways, by one rule: a string or char as it is, an
//! integer in decimal, a bool as `true` or `false`, an enum case by its
//! name. Reading takes the key's WIT type and accepts exactly what writing
//! produces, so every map round-trips.

use serde_json::Value as Json;
use wasmtime::component::Val;
use wasmtime::component::types::Type;

use super::from_json::enum_val;
use super::to_json::UnrepresentableValue;
use super::{ValueError, describe_type};

/// The object key a map key is written as.
pub fn map_key_text(key: &Val) -> Result<String, UnrepresentableValue> {
    Ok(match key {
        Val::String(text) => text.clone(),
        Val::Char(c) => c.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::S8(v) => v.to_string(),
        Val::U8(v) => v.to_string(),
        Val::S16(v) => v.to_string(),
        Val::U16(v) => v.to_string(),
        Val::S32(v) => v.to_string(),
        Val::U32(v) => v.to_string(),
        Val::S64(v) => v.to_string(),
        Val::U64(v) => v.to_string(),
        Val::Enum(name) => name.clone(),
        _ => {
            return Err(UnrepresentableValue {
                path: String::new(),
                kind: "map key of this type",
            });
        }
    })
}

/// Reads a map key of WIT type `ty` from the object key `text`.
pub fn map_key_val(ty: &Type, text: &str) -> Result<Val, ValueError> {
    let as_text = Json::String(text.to_owned());
    let refused = || {
        ValueError::new(
            format!("a map key of type {} (as text)", describe_type(ty)),
            &as_text,
        )
    };
    // Only the decimal form writing produces: no `+`, leading zeros or spaces.
    let number = || -> Result<Json, ValueError> {
        let (value, written) = match text.parse::<i64>() {
            Ok(signed) => (Json::from(signed), signed.to_string()),
            Err(_) => {
                let unsigned = text.parse::<u64>().map_err(|_| refused())?;
                (Json::from(unsigned), unsigned.to_string())
            }
        };
        if written == text {
            Ok(value)
        } else {
            Err(refused())
        }
    };
    match ty {
        Type::String | Type::Char => super::json_to_val(ty, &as_text).map_err(|_| refused()),
        Type::Bool => match text {
            "true" => Ok(Val::Bool(true)),
            "false" => Ok(Val::Bool(false)),
            _ => Err(refused()),
        },
        Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64 => super::json_to_val(ty, &number()?).map_err(|_| refused()),
        Type::Enum(e) => enum_val(e, &as_text).ok_or_else(refused),
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trips(ty: &Type, key: Val) {
        let text = map_key_text(&key).unwrap();
        assert_eq!(map_key_val(ty, &text).unwrap(), key, "{text:?}");
    }

    proptest! {
        #[test]
        fn integer_keys_round_trip(
            a in any::<i8>(), b in any::<u8>(), c in any::<i16>(), d in any::<u16>(),
            e in any::<i32>(), f in any::<u32>(), g in any::<i64>(), h in any::<u64>(),
        ) {
            round_trips(&Type::S8, Val::S8(a));
            round_trips(&Type::U8, Val::U8(b));
            round_trips(&Type::S16, Val::S16(c));
            round_trips(&Type::U16, Val::U16(d));
            round_trips(&Type::S32, Val::S32(e));
            round_trips(&Type::U32, Val::U32(f));
            round_trips(&Type::S64, Val::S64(g));
            round_trips(&Type::U64, Val::U64(h));
        }

        #[test]
        fn text_keys_round_trip(text in ".*", c in any::<char>(), b in any::<bool>()) {
            round_trips(&Type::String, Val::String(text));
            round_trips(&Type::Char, Val::Char(c));
            round_trips(&Type::Bool, Val::Bool(b));
        }
    }

    #[test]
    fn an_enum_key_is_its_case_name_not_json_text() {
        assert_eq!(map_key_text(&Val::Enum("red".into())).unwrap(), "red");
    }

    #[test]
    fn keys_that_writing_never_produces_are_refused() {
        for (ty, text) in [
            (Type::U32, "07"),
            (Type::U32, "+7"),
            (Type::U32, "-1"),
            (Type::U8, "256"),
            (Type::Bool, "True"),
            (Type::Char, "ab"),
            (Type::S64, " 1"),
        ] {
            let error = map_key_val(&ty, text).unwrap_err();
            assert!(error.expected.starts_with("a map key of type"), "{error}");
        }
    }
}

//! JSON bodies read strictly: an object that names a member twice is refused. serde_json keeps the
//! last of them, so `{"roles": ["read:*"], "roles": ["*:*"]}` would grant full access while a proxy
//! or an audit log that reads the first saw a read-only request.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses a body as serde_json does, refusing repeated members at any depth.
pub(super) fn from_slice(body: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice::<Strict>(body).map(|strict| strict.0)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // serde_json refuses numbers out of f64's range, so `value` is always finite.
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                let why = format_args!("the member {name:?} appears twice in one object");
                return Err(de::Error::custom(why));
            }
            let Strict(value) = map.next_value()?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::from_slice;

    #[test]
    fn reads_what_serde_json_reads() {
        let text = br#"{"a": [1, -2, 3.5, true, null, "x", {"b": {}}], "c": 18446744073709551615}"#;
        assert_eq!(
            from_slice(text).unwrap(),
            serde_json::from_slice::<serde_json::Value>(text).unwrap()
        );
        assert_eq!(from_slice(b" 7 ").unwrap(), json!(7));
    }

    #[test]
    fn a_member_named_twice_is_refused_at_any_depth() {
        let top = from_slice(br#"{"roles": ["read:*"], "roles": ["*:*"]}"#).unwrap_err();
        assert!(
            top.to_string()
                .contains(r#"the member "roles" appears twice"#)
        );
        assert!(from_slice(br#"{"data": {"attributes": {"user": 1, "user": 2}}}"#).is_err());
        assert!(
            from_slice(br#"[{"a": 1}, {"a": 1}]"#).is_ok(),
            "distinct objects"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(from_slice(deep.as_bytes()).is_err());
    }
}

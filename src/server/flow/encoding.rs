//! Flow's bytes as flow-go's libraries make and take them. No I/O.
//!
//! flow-go writes every frame with gorilla's `WriteJSON`, which is Go's `json.Encoder`: a
//! newline after each value, and `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c` and so
//! on (HTML-safe output is that encoder's default). It reads with gorilla's `ReadJSON`, a
//! `json.Decoder` that takes the first value of the frame and ignores what follows, and Go's
//! unmarshalling into a struct matches field names without regard to case, the last of
//! several spellings winning.

use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::{Map, Value};

/// A frame as Go's `json.Encoder` writes it: HTML characters escaped, a newline after.
pub fn go_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    // serde_json writes these characters only inside strings, so escaping them anywhere in
    // the text is escaping them in strings, as Go does.
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// The request fields flow-go's message structs have, in their canonical spelling.
const FIELDS: [&str; 4] = ["subscription_id", "action", "topic", "arguments"];

/// The first JSON value of a frame, as `json.Decoder.Decode` takes it; the top-level object's
/// keys that name a request field in another case are spelled as the field. An empty frame
/// fails with Go's `EOF`.
pub fn read_first(text: &str) -> Result<Value, String> {
    if text.trim_start_matches([' ', '\t', '\n', '\r']).is_empty() {
        return Err("EOF".to_owned());
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = (&mut deserializer)
        .deserialize_any(FirstValue)
        .map_err(|e| e.to_string())?;
    Ok(value)
}

/// Reads any value, keeping the document order of a top-level object's keys so that the last
/// spelling of a field wins, as Go's decoder assigns fields in order.
struct FirstValue;

impl<'de> Visitor<'de> for FirstValue {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some((key, value)) = access.next_entry::<String, Value>()? {
            let canonical = FIELDS
                .iter()
                .find(|field| field.eq_ignore_ascii_case(&key))
                .map_or(key, |field| (*field).to_owned());
            object.insert(canonical, value);
        }
        Ok(Value::Object(object))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn frames_are_written_as_go_writes_them() {
        assert_eq!(
            go_encoded(r#"{"m":"a<b>&c"}"#),
            "{\"m\":\"a\\u003cb\\u003e\\u0026c\"}\n"
        );
        assert_eq!(go_encoded("{\"m\":\"\u{2028}\"}"), "{\"m\":\"\\u2028\"}\n");
    }

    #[test]
    fn the_first_value_is_read_and_keys_match_without_case() {
        assert_eq!(
            read_first(r#"{"Action":"list_subscriptions"} trailing garbage"#).unwrap(),
            json!({"action": "list_subscriptions"})
        );
        assert_eq!(
            read_first(r#"{"action":"a","ACTION":"b","Topic":"t","Other":1}"#).unwrap(),
            json!({"action": "b", "topic": "t", "Other": 1})
        );
        assert_eq!(read_first("  ").unwrap_err(), "EOF");
        assert!(read_first("{nope").is_err());
        assert_eq!(read_first("[1] [2]").unwrap(), json!([1]));
    }
}

//! `JSON.stringify(JSON.parse(text).data)` as Talo's Node.js server computes a `cause`: keys
//! in the order the client wrote them (a repeated key keeps its first place and takes its last
//! value), whole numbers without a fraction. serde_json's own maps sort their keys, which is
//! why this keeps a document-ordered copy. No I/O.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Clone, PartialEq)]
enum Ordered {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ordered, D::Error> {
        deserializer.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
        Ok(Ordered::Bool(v))
    }

    // JavaScript holds every number as a double.
    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
        Ok(Ordered::Number(v as f64))
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
        Ok(Ordered::Number(v as f64))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
        Ok(Ordered::Number(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
        Ok(Ordered::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Ordered, E> {
        Ok(Ordered::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element()? {
            items.push(item);
        }
        Ok(Ordered::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Ordered, A::Error> {
        let mut entries: Vec<(String, Ordered)> = Vec::new();
        while let Some((key, value)) = access.next_entry::<String, Ordered>()? {
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Ordered::Object(entries))
    }
}

fn write(value: &Ordered, out: &mut String) {
    match value {
        Ordered::Null => out.push_str("null"),
        Ordered::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Ordered::Number(n) => out.push_str(&js_number(*n)),
        Ordered::String(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
        Ordered::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Ordered::Object(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                out.push(':');
                write(item, out);
            }
            out.push('}');
        }
    }
}

/// A double as JavaScript prints it, for the numbers JSON carries: whole numbers below 1e21
/// without a fraction.
fn js_number(n: f64) -> String {
    if n == 0.0 {
        // Both zeros print as 0.
        "0".to_owned()
    } else if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{n:.0}")
    } else if n.is_finite() {
        serde_json::Number::from_f64(n).map_or_else(|| "null".to_owned(), |n| n.to_string())
    } else {
        "null".to_owned()
    }
}

/// The frame's `member` as `JSON.stringify` writes it, or `None` when the frame is not a JSON
/// object with that member.
pub fn stringify_member(text: &str, member: &str) -> Option<String> {
    let Ordered::Object(entries) = serde_json::from_str::<Ordered>(text).ok()? else {
        return None;
    };
    let (_, value) = entries.iter().find(|(k, _)| k == member)?;
    let mut out = String::new();
    write(value, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_the_clients_order_and_numbers_print_as_javascript_does() {
        assert_eq!(
            stringify_member(
                r#"{"req":"x","data":{"z":1.0,"a":[1e2,1.5,-0.25],"m":{"y":null,"b":"<\u00e9>"},"z":2}}"#,
                "data"
            )
            .as_deref(),
            Some(r#"{"z":2,"a":[100,1.5,-0.25],"m":{"y":null,"b":"<é>"}}"#)
        );
        assert_eq!(stringify_member("[1]", "data"), None);
        assert_eq!(stringify_member(r#"{"req":"x"}"#, "data"), None);
    }
}

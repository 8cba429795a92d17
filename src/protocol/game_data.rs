//! Signal Fish `GameData` on the hot path: the frame's envelope is read without building a
//! tree of the payload, and the relayed frame is written around the client's own bytes.
//!
//! # Format
//! ```text
//! client → server  {"type":"GameData","data":{"data":<any JSON>}}
//! server → others  {"type":"GameData","data":{"from_player":"<player id>","data":<same bytes>}}
//! ```
//! Anything that is not a well-formed `GameData` yields `None` here and goes through the full
//! parser in [`crate::protocol::signal_fish`], which owns the error answers.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::protocol::signal_fish::DeliveryClass;

/// The whole frame read in one pass: a frame whose `data` is not shaped like GameData's fails
/// here, and is left to the full parser whatever its type.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<Fields<'a>>,
}

/// Only the fields GameData has: a frame with others goes the full parser's way, which reads
/// them as signal-fish-server does (when `data` comes before `type`, serde buffers it, and a
/// number no tree holds in a field it would have skipped fails the frame).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(default)]
    class: Option<DeliveryClass>,
    #[serde(default)]
    key: Option<u32>,
}

/// A client's GameData: the payload (borrowed from the frame unless it had whitespace to
/// take out), and v3's delivery class.
#[derive(Debug)]
pub struct Inbound<'a> {
    data: Cow<'a, RawValue>,
    pub class: Option<DeliveryClass>,
    pub key: Option<u32>,
}

impl Inbound<'_> {
    /// The payload, compact: what [`relayed`] splices.
    pub fn data(&self) -> &RawValue {
        &self.data
    }
}

/// The payload of a `GameData` frame, compact; `None` for any other frame.
pub fn payload(text: &str) -> Option<Inbound<'_>> {
    let envelope: Envelope<'_> = serde_json::from_str(text).ok()?;
    if envelope.kind != "GameData" {
        return None;
    }
    let fields = envelope.data?;
    // Too deep to relay: the full parser refuses it with its own answer. Both the client's
    // frame and the relayed one hold the payload two objects deep.
    let shape = super::json::shape(fields.data.get(), super::json::relayable_depth(2));
    if shape.too_deep {
        return None;
    }
    let data = if shape.spaced {
        // Compacting valid JSON outside its strings leaves valid JSON.
        Cow::Owned(RawValue::from_string(compact(fields.data.get()).into_owned()).ok()?)
    } else {
        Cow::Borrowed(fields.data)
    };
    Some(Inbound {
        data,
        class: fields.class,
        key: fields.key,
    })
}

/// What a v3 recipient also gets: the sender's sequence within its epoch and the delivery
/// class it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    pub epoch: u32,
    pub class: Option<DeliveryClass>,
    pub key: Option<u32>,
}

/// The frame the other members receive, serialized once per shape for all of them. `data` is
/// compact JSON ([`payload`] gives the client's so, serde_json writes it so): the real server
/// relays a re-serialized (compact) payload, and clients written against it see the same
/// bytes here without the cost of building and printing a tree. Fields follow
/// [`ServerMessage::GameData`](crate::protocol::signal_fish::ServerMessage)'s order.
pub fn relayed(from_player: &str, data: &RawValue, stamp: Option<&Stamp>) -> String {
    use std::fmt::Write as _;
    let data = data.get();
    // Escaping a string and a unit enum cannot fail.
    let player = serde_json::to_string(from_player).unwrap_or_default();
    let mut frame = String::with_capacity(data.len() + player.len() + 96);
    frame.push_str(r#"{"type":"GameData","data":{"from_player":"#);
    frame.push_str(&player);
    frame.push_str(r#","data":"#);
    frame.push_str(data);
    if let Some(stamp) = stamp {
        let _ = write!(frame, r#","seq":{},"epoch":{}"#, stamp.seq, stamp.epoch);
        if let Some(class) = stamp.class {
            let class = serde_json::to_string(&class).unwrap_or_default();
            let _ = write!(frame, r#","class":{class}"#);
        }
        if let Some(key) = stamp.key {
            let _ = write!(frame, r#","key":{key}"#);
        }
    }
    frame.push_str("}}");
    frame
}

/// Valid JSON text without the whitespace between its tokens; borrowed when it has none.
fn compact(json: &str) -> Cow<'_, str> {
    let is_space = |b: u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    let mut in_string = false;
    let mut escaped = false;
    let mut first_space = None;
    for (index, byte) in json.bytes().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if is_space(byte) {
            first_space = Some(index);
            break;
        }
    }
    let Some(start) = first_space else {
        return Cow::Borrowed(json);
    };
    let mut out = String::with_capacity(json.len());
    out.push_str(&json[..start]);
    // `start` is outside any string, so the state there is "not in a string".
    let mut in_string = false;
    let mut escaped = false;
    for character in json[start..].chars() {
        if in_string {
            out.push(character);
            match character {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if character == '"' {
            in_string = true;
            out.push(character);
        } else if !(character.is_ascii() && is_space(character as u8)) {
            out.push(character);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::protocol::signal_fish::ServerMessage;

    #[test]
    fn the_payload_is_relayed_compact_in_the_full_format() {
        let text = r#"{"type":"GameData","data":{"data":{"x": 1.50, "tags":["a"]}}}"#;
        let inbound = payload(text).unwrap();
        let data = inbound.data();
        assert_eq!(data.get(), r#"{"x":1.50,"tags":["a"]}"#);
        let tight = r#"{"type":"GameData","data":{"data":{"x":"a b"}}}"#;
        assert!(
            matches!(payload(tight).unwrap().data, Cow::Borrowed(_)),
            "a compact payload is borrowed"
        );
        assert_eq!((inbound.class, inbound.key), (None, None));
        let latest =
            payload(r#"{"type":"GameData","data":{"data":1,"class":"latest","key":2}}"#).unwrap();
        assert_eq!(
            (latest.class, latest.key),
            (Some(DeliveryClass::Latest), Some(2))
        );
        assert_eq!(
            relayed("p-1", data, None),
            r#"{"type":"GameData","data":{"from_player":"p-1","data":{"x":1.50,"tags":["a"]}}}"#
        );
        for stamp in [
            None,
            Some(Stamp {
                seq: 7,
                epoch: 2,
                class: Some(DeliveryClass::Latest),
                key: Some(4),
            }),
            Some(Stamp {
                seq: 1,
                epoch: 0,
                class: None,
                key: None,
            }),
        ] {
            let full = ServerMessage::GameData {
                from_player: "p-1".into(),
                data: serde_json::json!({"x": 1}),
                seq: stamp.map(|s| s.seq),
                epoch: stamp.map(|s| s.epoch),
                class: stamp.and_then(|s| s.class),
                key: stamp.and_then(|s| s.key),
            }
            .text();
            let spliced = relayed(
                "p-1",
                &RawValue::from_string(r#"{"x":1}"#.to_owned()).unwrap(),
                stamp.as_ref(),
            );
            assert_eq!(spliced, full, "the spliced frame is the full serializer's");
        }
    }

    #[test]
    fn compacting_keeps_strings_and_numbers_as_sent() {
        assert_eq!(compact(r#"{"a":1}"#), Cow::Borrowed(r#"{"a":1}"#));
        assert_eq!(
            compact("{ \"a b\" : [ 1 , \"x \\\" y\" ] ,\n\t\"c\":1e3 }"),
            r#"{"a b":[1,"x \" y"],"c":1e3}"#
        );
        assert_eq!(compact(r#""only a string""#), r#""only a string""#);
        assert_eq!(compact(r#" "é ü" "#), r#""é ü""#);
    }

    #[test]
    fn other_frames_are_left_to_the_full_parser() {
        for text in [
            r#"{"type":"Ping"}"#,
            r#"{"type":"GameData"}"#,
            r#"{"type":"GameData","data":{}}"#,
            r#"{"type":"GameData","data":{"data":}}"#,
            "not json",
            "[]",
        ] {
            assert!(payload(text).is_none(), "{text}");
        }
        let deep = format!(
            r#"{{"type":"GameData","data":{{"data":{}{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(payload(&deep).is_none(), "too deep to relay");
    }
}

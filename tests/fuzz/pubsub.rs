//! pub/sub relay: protocol::pubsub::parse_client

use super::*;
use relaydeck::catalog::{self, Dialect};
use relaydeck::protocol::json::{relayable_depth, MAX_DEPTH};
use relaydeck::protocol::pubsub::{
    direct, message, parse_client, ClientFrame, Rejection, MAX_REQUEST_ID_BYTES,
};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

/// A request as owned values: the parser borrows from the frame, the model does not. `data`
/// is the client's JSON text, which is what the relay forwards and so what it must keep:
/// comparing parsed trees instead would lose numbers no `serde_json::Value` holds (`1e400`),
/// which the relay passes on intact.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    kind: &'static str,
    name: String,
    data: Option<String>,
}

fn model(frame: &ClientFrame<'_>) -> Model {
    let data = |raw: &Option<&RawValue>| raw.map(|raw| raw.get().to_owned());
    match frame {
        ClientFrame::Subscribe { channel } => Model {
            kind: "subscribe",
            name: channel.to_string(),
            data: None,
        },
        ClientFrame::Unsubscribe { channel } => Model {
            kind: "unsubscribe",
            name: channel.to_string(),
            data: None,
        },
        ClientFrame::Publish { channel, data: d } => Model {
            kind: "publish",
            name: channel.to_string(),
            data: data(d),
        },
        ClientFrame::Send { to, data: d } => Model {
            kind: "send",
            name: to.to_string(),
            data: data(d),
        },
    }
}

/// The frame as a client writes it; the parser's inverse. `data` goes in as written.
fn encode(frame: &Model, request_id: Option<&str>) -> String {
    let mut text = format!(r#"{{"type":{}"#, json!(frame.kind));
    let field = if frame.kind == "send" {
        "to"
    } else {
        "channel"
    };
    text.push_str(&format!(r#","{field}":{}"#, json!(frame.name)));
    if let Some(data) = &frame.data {
        text.push_str(&format!(r#","data":{data}"#));
    }
    if let Some(id) = request_id {
        text.push_str(&format!(r#","requestId":{}"#, json!(id)));
    }
    text.push('}');
    text
}

/// Parse and turn into owned values, so results can be compared.
fn parse(text: &str) -> Result<(Model, Option<String>), Rejection> {
    parse_client(text).map(|(frame, id)| (model(&frame), id))
}

/// What a subscriber reads back out of a relayed frame.
#[derive(Deserialize)]
struct Relayed<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
}

fn frame() -> BoxedStrategy<(Model, Option<String>)> {
    let request_id = optional(prop_oneof![
        4 => "[a-z0-9-]{0,20}",
        1 => "[a-z]{120,140}",
    ]);
    let data = optional(raw_json());
    (0u8..4, short_text(), data, request_id)
        .prop_map(|(kind, name, data, request_id)| {
            let (kind, data) = match kind {
                0 => ("subscribe", None),
                1 => ("unsubscribe", None),
                2 => ("publish", data),
                _ => ("send", data),
            };
            (Model { kind, name, data }, request_id)
        })
        .boxed()
}

fn check(text: String) -> Result<(), TestCaseError> {
    match parse(&text) {
        Ok((frame, request_id)) => {
            if let Some(id) = &request_id {
                prop_assert!(id.len() <= MAX_REQUEST_ID_BYTES);
            }
            if let Some(data) = &frame.data {
                // Deeper data would reach subscribers in frames their parsers refuse.
                prop_assert!(depth(data) <= relayable_depth(1), "{} levels", depth(data));
                // Subscribers get the bytes the publisher sent, in a frame they can read.
                let raw = RawValue::from_string(data.clone()).unwrap();
                for relayed in [message(&frame.name, "peer-1", &raw), direct("peer-1", &raw)] {
                    let read: Relayed<'_> = serde_json::from_str(&relayed).unwrap();
                    prop_assert_eq!(read.data.get(), data.as_str());
                    prop_assert!(depth(&relayed) <= MAX_DEPTH);
                    prop_assert!(serde_json::from_str::<IgnoredAny>(&relayed).is_ok());
                }
            }
            let again = parse(&encode(&frame, request_id.as_deref()));
            prop_assert_eq!(again, Ok((frame, request_id)));
        }
        Err(rejection) => {
            prop_assert!(matches!(
                rejection.code,
                "malformed_message" | "unknown_type"
            ));
            prop_assert!(catalog::get(Dialect::Pubsub, rejection.code).is_some());
            if let Some(id) = &rejection.request_id {
                prop_assert!(id.len() <= MAX_REQUEST_ID_BYTES);
            }
            // The message may quote the frame; it must not carry all of it back.
            prop_assert!(
                rejection.message.len() <= 256,
                "{} bytes",
                rejection.message.len()
            );
        }
    }
    Ok(())
}

fn run(cases: u32) {
    let valid = frame()
        .prop_map(|(frame, id)| encode(&frame, id.as_deref()))
        .boxed();
    fuzz("pubsub parse_client", cases, inputs(valid), check);
    // Every well-formed frame with a short enough id and data a subscriber can read is
    // accepted as written; any other is refused.
    fuzz(
        "pubsub well-formed frames",
        cases / 4,
        frame(),
        |(frame, id)| {
            let parsed = parse(&encode(&frame, id.as_deref()));
            let id_fits = id
                .as_ref()
                .is_none_or(|id| id.len() <= MAX_REQUEST_ID_BYTES);
            let relayable = frame
                .data
                .as_ref()
                .is_none_or(|data| depth(data) <= relayable_depth(1));
            if id_fits && relayable {
                prop_assert_eq!(parsed, Ok((frame, id)));
            } else {
                prop_assert!(parsed.is_err());
            }
            Ok(())
        },
    );
}

runs!();

/// Found by the long run: a number beyond f64 in `data` is relayed intact, so the model must
/// compare the bytes rather than a parsed tree (which refuses `1e400`).
#[test]
fn numbers_beyond_f64_in_data_are_kept_as_sent() {
    let text = "{\"data\":[[null,\"aAa a 0\"],[10000000e0000000302,1000000000000000000]],\"to\":\"_aa00\",\"type\":\"send\"}";
    check(text.to_owned()).unwrap();
    let (frame, _) = parse(text).unwrap();
    assert_eq!(
        frame.data.as_deref(),
        Some(r#"[[null,"aAa a 0"],[10000000e0000000302,1000000000000000000]]"#)
    );
    check(r#"{"type":"publish","channel":"c","data":1e400}"#.to_owned()).unwrap();
}

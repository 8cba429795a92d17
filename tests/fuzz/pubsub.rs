//! pub/sub relay: protocol::pubsub::parse_client

use super::*;
use relaydeck::protocol::pubsub::{parse_client, ClientFrame, MAX_REQUEST_ID_BYTES};

/// A request as owned values: the parser borrows from the frame, the model does not.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    kind: &'static str,
    name: String,
    data: Option<Value>,
}

fn model(frame: &ClientFrame<'_>) -> Model {
    let data = |raw: &Option<&serde_json::value::RawValue>| {
        raw.map(|raw| serde_json::from_str::<Value>(raw.get()).unwrap())
    };
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

/// The frame as a client writes it; the parser's inverse.
fn encode(frame: &Model, request_id: Option<&str>) -> String {
    let mut object = Map::new();
    let field = if frame.kind == "send" {
        "to"
    } else {
        "channel"
    };
    object.insert("type".into(), frame.kind.into());
    object.insert(field.into(), frame.name.clone().into());
    put(&mut object, "data", frame.data.clone());
    put(&mut object, "requestId", request_id.map(Value::from));
    Value::Object(object).to_string()
}

/// Parse and turn into owned values, so results can be compared.
fn parse(text: &str) -> Result<(Model, Option<String>), relaydeck::protocol::pubsub::Rejection> {
    parse_client(text).map(|(frame, id)| (model(&frame), id))
}

fn frame() -> BoxedStrategy<(Model, Option<String>)> {
    let request_id = optional(prop_oneof![
        4 => "[a-z0-9-]{0,20}",
        1 => "[a-z]{120,140}",
    ]);
    let data = optional(arbitrary_json());
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
            let again = parse(&encode(&frame, request_id.as_deref()));
            prop_assert_eq!(again, Ok((frame, request_id)));
        }
        Err(rejection) => {
            prop_assert!(matches!(
                rejection.code,
                "malformed_message" | "unknown_type"
            ));
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
    // Every well-formed frame with a short enough id is accepted as written.
    fuzz(
        "pubsub well-formed frames",
        cases / 4,
        frame(),
        |(frame, id)| {
            let parsed = parse(&encode(&frame, id.as_deref()));
            if id
                .as_ref()
                .is_none_or(|id| id.len() <= MAX_REQUEST_ID_BYTES)
            {
                prop_assert_eq!(parsed, Ok((frame, id)));
            } else {
                prop_assert!(parsed.is_err());
            }
            Ok(())
        },
    );
}

runs!();

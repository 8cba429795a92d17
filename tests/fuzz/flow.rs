//! Flow streams: server::flow::request::parse and its error frames

use super::*;
use relaydeck::server::flow::request::{parse, Request};

fn encode(request: &Request) -> String {
    match request {
        Request::Subscribe {
            subscription_id,
            topic,
            arguments,
        } => {
            let mut object = Map::new();
            // An empty id is the same request as none: the server generates one.
            if !subscription_id.is_empty() {
                object.insert("subscription_id".into(), subscription_id.as_str().into());
            }
            object.insert("action".into(), "subscribe".into());
            object.insert("topic".into(), topic.as_str().into());
            object.insert("arguments".into(), Value::Object(arguments.clone()));
            Value::Object(object).to_string()
        }
        Request::Unsubscribe { subscription_id } => {
            json!({"subscription_id": subscription_id, "action": "unsubscribe"}).to_string()
        }
        Request::ListSubscriptions => json!({"action": "list_subscriptions"}).to_string(),
    }
}

fn well_formed() -> BoxedStrategy<Request> {
    let arguments = btree_map("[a-z_]{1,10}", arbitrary_json(), 0..4)
        .prop_map(|m| m.into_iter().collect::<Map<String, Value>>());
    prop_oneof![
        (optional("[a-z0-9]{1,20}"), short_text(), arguments).prop_map(
            |(subscription_id, topic, arguments)| Request::Subscribe {
                subscription_id: subscription_id.unwrap_or_default(),
                topic,
                arguments,
            }
        ),
        "[a-z0-9]{1,20}".prop_map(|subscription_id| Request::Unsubscribe { subscription_id }),
        Just(Request::ListSubscriptions),
    ]
    .boxed()
}

fn check(text: String) -> Result<(), TestCaseError> {
    match parse(&text, true) {
        Ok(request) => {
            prop_assert_eq!(parse(&encode(&request), true), Ok(request));
        }
        Err(error) => {
            let frame: Value = serde_json::from_str(&error.frame()).unwrap();
            prop_assert_eq!(frame["error"]["code"].as_u64(), Some(400));
            prop_assert!(frame["error"]["message"].is_string());
            // Echoed input is bounded: an error frame never carries a whole frame back.
            prop_assert!(
                error.frame().len() <= 1024,
                "an error frame of {} bytes for {} bytes of input",
                error.frame().len(),
                text.len()
            );
        }
    }
    Ok(())
}

/// Found by the long run: without serde_json's `float_roundtrip`, a number beyond u64
/// parsed to a float one ulp off what printing it back and parsing again gives.
#[test]
fn numbers_beyond_u64_survive_a_round_trip() {
    check(
        r#"{"action":"subscribe","topic":"t","arguments":{"n":1182281790911822817909531849730,"f":0.30000000000000004}}"#
            .to_owned(),
    )
    .unwrap();
}

fn run(cases: u32) {
    let valid = well_formed().prop_map(|r| encode(&r)).boxed();
    fuzz("flow parse", cases, inputs(valid), check);
    fuzz("flow well-formed requests", cases / 4, well_formed(), |r| {
        prop_assert_eq!(parse(&encode(&r), true), Ok(r));
        Ok(())
    });
}

runs!();

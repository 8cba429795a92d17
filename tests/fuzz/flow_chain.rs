//! Flow chain topics' arguments: server::flow::chain::parse_arguments for every chain topic
//! (transaction bodies, event and account filters, transaction ids, starts)

use super::*;
use relaydeck::server::flow::chain::{parse_arguments, TransactionArgument};
use relaydeck::server::flow::ids;

const TOPICS: [&str; 7] = [
    "blocks",
    "block_headers",
    "block_digests",
    "events",
    "account_statuses",
    "transaction_statuses",
    "send_and_get_transaction_statuses",
];

/// The words each topic's provider puts before an argument problem.
fn prefix(topic: &str) -> &'static str {
    match topic {
        "events" => "invalid arguments for events data provider: ",
        "account_statuses" => "invalid arguments for account statuses data provider: ",
        "transaction_statuses" => "invalid arguments for tx statuses data provider: ",
        "send_and_get_transaction_statuses" => {
            "invalid arguments for send tx statuses data provider: failed to parse transaction: "
        }
        _ => "invalid arguments: ",
    }
}

/// A body flow-go's parser accepts, signed by the emulator's service account.
fn body(height: u64, script: &str) -> Value {
    use base64::Engine as _;
    let service = "0xf8d6e0586b0a20c7";
    json!({
        "script": base64::engine::general_purpose::STANDARD.encode(script),
        "arguments": [],
        "reference_block_id": ids::block_id(height),
        "gas_limit": "9999",
        "payer": service,
        "proposal_key": {"address": service, "key_index": "0", "sequence_number": "0"},
        "authorizers": [service],
        "payload_signatures": [],
        "envelope_signatures": [{"address": service, "key_index": "0", "signature": "AAEC"}],
    })
}

/// Well-formed subscribe arguments, as `{"topic": …, "arguments": …}` text.
fn well_formed() -> BoxedStrategy<String> {
    let event_type = prop_oneof![
        Just("flow.AccountCreated".to_owned()),
        Just("A.0ae53cb6e3f42a79.FlowToken.TokensWithdrawn".to_owned()),
        Just("A.e5a8b7f23e8b548f.FlowFees.FeesDeducted".to_owned()),
    ];
    prop_oneof![
        (0u64..1000, "transaction [a-z {}]{0,30}")
            .prop_map(|(h, s)| json!({"topic": "send_and_get_transaction_statuses", "arguments": body(h, &s)})),
        "[0-9a-f]{64}".prop_map(|id| json!({"topic": "transaction_statuses", "arguments": {"tx_id": id}})),
        (vec(event_type, 0..3), 0u64..5).prop_map(|(types, beat)| json!({"topic": "events", "arguments": {
            "event_types": types, "contracts": ["A.e5a8b7f23e8b548f.FlowFees"], "addresses": ["0xf8d6e0586b0a20c7"],
            "heartbeat_interval": beat.to_string()}})),
        (0u64..1000).prop_map(|h| json!({"topic": "blocks", "arguments": {"block_status": "sealed", "start_block_height": h.to_string()}})),
        Just(json!({"topic": "account_statuses", "arguments": {"event_types": ["flow.AccountKeyAdded"], "account_addresses": ["0xf8d6e0586b0a20c7"]}})),
    ]
    .prop_map(|v| v.to_string())
    .boxed()
}

fn check(text: String) -> Result<(), TestCaseError> {
    let Ok(value) = serde_json::from_str::<Value>(&text) else {
        return Ok(());
    };
    let topic = value["topic"].as_str().unwrap_or("events");
    let topic = TOPICS
        .iter()
        .find(|t| **t == topic)
        .copied()
        .unwrap_or("events");
    let Some(arguments) = value["arguments"].as_object() else {
        return Ok(());
    };
    match parse_arguments(topic, arguments) {
        Ok(parsed) => {
            // What was accepted is accepted again, the same, from its own text.
            let again: Map<String, Value> =
                serde_json::from_str(&Value::Object(arguments.clone()).to_string()).unwrap();
            prop_assert_eq!(parse_arguments(topic, &again), Ok(parsed.clone()));
            if let Some(TransactionArgument::Send(tx)) = &parsed.transaction {
                prop_assert_eq!(tx.id.len(), 64);
                prop_assert!(tx.id.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
        Err(problem) => {
            prop_assert!(
                problem.starts_with(prefix(topic)),
                "{} for {}: {}",
                topic,
                text,
                problem
            );
        }
    }
    Ok(())
}

fn run(cases: u32) {
    fuzz("flow chain arguments", cases, inputs(well_formed()), check);
    fuzz(
        "flow chain well-formed arguments",
        cases / 4,
        well_formed(),
        |text| {
            let value: Value = serde_json::from_str(&text).unwrap();
            let topic = value["topic"].as_str().unwrap();
            let parsed = parse_arguments(topic, value["arguments"].as_object().unwrap());
            prop_assert!(parsed.is_ok(), "{}: {:?}", text, parsed);
            Ok(())
        },
    );
}

runs!();

//! The admin protocol both ways: `protocol::admin::CommandEnvelope` as the admin endpoint
//! (`server::admin`) parses it, and `ServerMessage` as the console (`console::net`) parses it
//! and applies it to its model (`console::model::Model::apply`).

use super::*;
use relaydeck::catalog::Dialect;
use relaydeck::console::model::Model;
use relaydeck::protocol::admin::{
    examples, AppStatus, Command, CommandEnvelope, FaultTarget, InjectTarget, ServerMessage,
};

fn status() -> impl Strategy<Value = AppStatus> {
    proptest::sample::select(vec![
        AppStatus::Active,
        AppStatus::Suspended,
        AppStatus::Revoked,
        AppStatus::Expired,
    ])
}

fn dialect() -> impl Strategy<Value = Dialect> {
    proptest::sample::select(Dialect::ALL.to_vec())
}

fn command() -> BoxedStrategy<Command> {
    let text = short_text;
    prop_oneof![
        (text(), optional(text())).prop_map(|(peer, reason)| Command::Kick { peer, reason }),
        (text(), status()).prop_map(|(app, status)| Command::SetAppStatus { app, status }),
        text().prop_map(|room| Command::CloseRoom { room }),
        (text(), text())
            .prop_map(|(room, player_id)| Command::TransferAuthority { room, player_id }),
        text().prop_map(|room| Command::RevokeAuthority { room }),
        (text(), any::<bool>()).prop_map(|(peer, on)| Command::Tap { peer, on }),
        (
            prop_oneof![
                text().prop_map(|peer| InjectTarget::Peer { peer }),
                (dialect(), text())
                    .prop_map(|(dialect, query)| InjectTarget::Probe { dialect, query }),
                text().prop_map(|peer| InjectTarget::ExistingProbe { peer }),
            ],
            text()
        )
            .prop_map(|(target, frame)| Command::Inject { target, frame }),
        (
            prop_oneof![
                text().prop_map(|peer| FaultTarget::Peer { peer }),
                dialect().prop_map(|dialect| FaultTarget::Dialect { dialect }),
            ],
            text(),
            any::<u32>()
        )
            .prop_map(|(target, code, count)| Command::ArmFault {
                target,
                code,
                count
            }),
        any::<u64>().prop_map(|fault| Command::DisarmFault { fault }),
        Just(Command::Resync),
    ]
    .boxed()
}

pub(crate) fn envelope() -> BoxedStrategy<CommandEnvelope> {
    (any::<u64>(), command())
        .prop_map(|(id, command)| CommandEnvelope { id, command })
        .boxed()
}

fn check(text: String) -> Result<(), TestCaseError> {
    if let Ok(parsed) = serde_json::from_str::<CommandEnvelope>(&text) {
        let again = serde_json::to_string(&parsed).unwrap();
        prop_assert_eq!(
            serde_json::from_str::<CommandEnvelope>(&again).ok(),
            Some(parsed)
        );
    }
    Ok(())
}

fn example(list: &'static [&'static str]) -> BoxedStrategy<String> {
    proptest::sample::select(list.to_vec())
        .prop_map(str::to_owned)
        .boxed()
}

/// A message from the server, as the console reads it (`console::net`): anything it parses
/// re-serializes to a message that parses the same.
fn check_server_message(text: &str) -> Result<Option<ServerMessage>, TestCaseError> {
    let Ok(message) = serde_json::from_str::<ServerMessage>(text) else {
        return Ok(None);
    };
    let again = serde_json::to_string(&message).unwrap();
    let reread = serde_json::from_str::<ServerMessage>(&again).ok();
    prop_assert_eq!(reread.as_ref(), Some(&message));
    Ok(Some(message))
}

/// A stream of server messages applied to the console's model: a snapshot brings it in sync
/// at its number; a delta that does not follow the last one is reported as the gap it leaves
/// and unsyncs the model until the next snapshot.
fn check_stream(stream: Vec<(String, u64)>) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let (mut synced, mut seq) = (false, 0u64);
    for (text, number) in stream {
        let Some(mut message) = check_server_message(&text)? else {
            continue;
        };
        match &mut message {
            ServerMessage::Snapshot { seq: s, .. } | ServerMessage::Delta { seq: s, .. } => {
                *s = number;
            }
            ServerMessage::Result(_) => {}
        }
        let kind = match &message {
            ServerMessage::Snapshot { .. } => "snapshot",
            ServerMessage::Delta { .. } => "delta",
            ServerMessage::Result(_) => "result",
        };
        let applied = model.apply(message);
        match kind {
            "snapshot" => {
                prop_assert!(applied.everything);
                (synced, seq) = (true, number);
            }
            "delta" => {
                let expected_gap = (synced && number != seq.wrapping_add(1))
                    .then(|| (seq.wrapping_add(1), number.wrapping_sub(1)));
                prop_assert_eq!(applied.gap, expected_gap);
                synced &= expected_gap.is_none();
                seq = number;
            }
            _ => prop_assert!(applied.result.is_some()),
        }
        prop_assert_eq!((model.synced, model.seq), (synced, seq));
    }
    Ok(())
}

fn run(cases: u32) {
    let valid = prop_oneof![
        3 => envelope().prop_map(|e| serde_json::to_string(&e).unwrap()),
        1 => example(examples::COMMANDS),
    ]
    .boxed();
    fuzz("admin CommandEnvelope", cases, inputs(valid), check);
    fuzz("admin well-formed commands", cases / 4, envelope(), |e| {
        let text = serde_json::to_string(&e).unwrap();
        prop_assert_eq!(serde_json::from_str::<CommandEnvelope>(&text).ok(), Some(e));
        Ok(())
    });
    let server_message = inputs(example(examples::SERVER_MESSAGES));
    let number = prop_oneof![3 => 0u64..6, 1 => any::<u64>()];
    fuzz(
        "admin server messages into the console's model",
        cases / 4,
        vec((server_message, number), 0..6),
        check_stream,
    );
}

runs!();

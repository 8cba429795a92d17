//! Admin protocol: protocol::admin::CommandEnvelope, as the admin endpoint parses it

use super::*;
use relaydeck::catalog::Dialect;
use relaydeck::protocol::admin::{AppStatus, Command, CommandEnvelope, FaultTarget, InjectTarget};

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

fn run(cases: u32) {
    let valid = envelope()
        .prop_map(|e| serde_json::to_string(&e).unwrap())
        .boxed();
    fuzz("admin CommandEnvelope", cases, inputs(valid), check);
    fuzz("admin well-formed commands", cases / 4, envelope(), |e| {
        let text = serde_json::to_string(&e).unwrap();
        prop_assert_eq!(serde_json::from_str::<CommandEnvelope>(&text).ok(), Some(e));
        Ok(())
    });
}

runs!();

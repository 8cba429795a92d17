//! Signal Fish v2: protocol::signal_fish::ClientMessage, as the handler parses it

use super::*;
use relaydeck::protocol::signal_fish::ClientMessage;

fn parse(text: &str) -> Result<ClientMessage, serde_json::Error> {
    serde_json::from_str::<ClientMessage>(text)
}

/// Frames as the documented client writes them (DESIGN: Signal Fish client messages).
fn well_formed() -> BoxedStrategy<Value> {
    let name = "[A-Za-z0-9 _-]{1,16}";
    prop_oneof![
        (name, optional(name), optional(name)).prop_map(|(app_id, sdk, platform)| {
            let mut data = Map::new();
            data.insert("app_id".into(), app_id.into());
            put(&mut data, "sdk_version", sdk.map(Value::from));
            put(&mut data, "platform", platform.map(Value::from));
            json!({"type": "Authenticate", "data": data})
        }),
        (
            name,
            optional("[2-9A-HJ-NP-Z]{6}"),
            name,
            optional(1i64..=100),
            optional(any::<bool>()),
            optional(any::<bool>())
        )
            .prop_map(|(game, code, player, max, authority, join_only)| {
                let mut data = Map::new();
                data.insert("game_name".into(), game.into());
                put(&mut data, "room_code", code.map(Value::from));
                data.insert("player_name".into(), player.into());
                put(&mut data, "max_players", max.map(Value::from));
                put(&mut data, "supports_authority", authority.map(Value::from));
                put(&mut data, "join_only", join_only.map(Value::from));
                json!({"type": "JoinRoom", "data": data})
            }),
        arbitrary_json().prop_map(|data| json!({"type": "GameData", "data": {"data": data}})),
        any::<bool>().prop_map(|b| json!({"type": "AuthorityRequest", "data": {"become_authority": b}})),
        (name, name, name).prop_map(|(p, r, t)| json!({"type": "Reconnect", "data": {"player_id": p, "room_id": r, "auth_token": t}})),
        (name, "[2-9A-HJ-NP-Z]{6}", name).prop_map(|(g, c, s)| json!({"type": "JoinAsSpectator", "data": {"game_name": g, "room_code": c, "spectator_name": s}})),
        proptest::sample::select(vec!["LeaveRoom", "PlayerReady", "StartGame", "Ping", "LeaveSpectator"])
            .prop_map(|t| json!({"type": t})),
    ]
    .boxed()
}

const TYPES: [&str; 11] = [
    "Authenticate",
    "JoinRoom",
    "LeaveRoom",
    "GameData",
    "AuthorityRequest",
    "PlayerReady",
    "StartGame",
    "Ping",
    "Reconnect",
    "JoinAsSpectator",
    "LeaveSpectator",
];

fn check(text: String) -> Result<(), TestCaseError> {
    let Ok(message) = parse(&text) else {
        return Ok(());
    };
    // What parses is a JSON object of a documented type, and it means the same however
    // it is spaced or ordered: the re-serialized tree parses to an equal message.
    let value: Value = serde_json::from_str(&text).unwrap();
    let kind = value["type"].as_str().unwrap_or_default();
    prop_assert!(TYPES.contains(&kind), "{kind}");
    prop_assert_eq!(message.is_authenticate(), kind == "Authenticate");
    prop_assert_eq!(parse(&value.to_string()).ok(), Some(message.clone()));
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    prop_assert_eq!(parse(&pretty).ok(), Some(message));
    Ok(())
}

fn run(cases: u32) {
    let valid = well_formed().prop_map(|v| v.to_string()).boxed();
    fuzz("signal-fish ClientMessage", cases, inputs(valid), check);
    fuzz(
        "signal-fish well-formed frames",
        cases / 4,
        well_formed(),
        |frame| {
            let parsed = parse(&frame.to_string());
            prop_assert!(parsed.is_ok(), "{frame}: {parsed:?}");
            check(frame.to_string())
        },
    );
}

runs!();

//! Fuzzing on stable Rust: every parser that reads input from outside, driven by proptest.
//!
//! Each target mixes well-formed inputs built from the wire format, the same inputs with a few
//! bytes mutated (replaced, inserted, deleted, truncated), and free noise, and checks
//! invariants rather than only the absence of a panic: what parses re-serializes to something
//! that parses the same, limits hold, and a rejection carries what the protocol says it must.
//!
//! ```text
//! cargo test --test fuzz                                   # a few hundred inputs per target
//! cargo test --release --test fuzz -- --ignored --nocapture   # 1,000,000 inputs per target
//! ```
//! The runs are deterministic (a fixed seed), so a failure reproduces; proptest shrinks it and
//! prints the smallest input that still fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Map, Value};

/// Inputs per target in the default run: enough to catch regressions, fast in CI.
const SHORT: u32 = 400;
/// Inputs per target in the long run.
const LONG: u32 = 1_000_000;

/// Run `check` on `cases` inputs from `strategy` and print how many were executed.
fn fuzz<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        max_global_rejects: cases,
        ..ProptestConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let executed = Cell::new(0u64);
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |input| {
        executed.set(executed.get() + 1);
        check(input)
    });
    println!(
        "fuzz {name}: {} inputs in {:.1} s",
        executed.get(),
        started.elapsed().as_secs_f64()
    );
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
    assert!(
        executed.get() >= u64::from(cases),
        "{name}: only {} of {cases} inputs ran",
        executed.get()
    );
}

/// A target's default run (`cargo test`) and its long run (`--ignored`), both calling the
/// module's `run(cases)`.
macro_rules! runs {
    () => {
        #[test]
        fn short() {
            run(SHORT);
        }

        #[test]
        #[ignore = "long run: cargo test --release --test fuzz -- --ignored"]
        fn long() {
            run(LONG);
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Input builders shared by the targets
// ---------------------------------------------------------------------------------------------

/// Apply byte edits `(operation, position, byte)` to `text`.
fn mutate(text: String, edits: Vec<(u8, usize, u8)>) -> String {
    let mut bytes = text.into_bytes();
    for (operation, position, byte) in edits {
        let at = position % (bytes.len() + 1);
        match operation % 5 {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            _ if at < bytes.len() => {
                // Duplicate a run: repeated keys, doubled brackets.
                let end = (at + usize::from(byte % 16) + 1).min(bytes.len());
                let run = bytes[at..end].to_vec();
                bytes.splice(at..at, run);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Bytes that matter to JSON and to the formats built on it, plus anything at all.
fn edit_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => proptest::sample::select(b"{}[]\":,\\ 0123456789-.eEtfnulrasx/*\x00\x1b\xff\xc3".to_vec()),
        1 => any::<u8>(),
    ]
}

/// `text` (JSON) with one of its values, chosen by `at`, replaced by a large one: a long
/// string or a long array. Limits and echo bounds only show with inputs this size.
fn inflate(text: String, at: usize, size: usize, as_array: bool) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(&text) else {
        return text;
    };
    let mut all = Vec::new();
    pointers(&value, String::new(), &mut all);
    let big = if as_array {
        Value::Array(vec![Value::from(0); size / 2])
    } else {
        Value::from("x".repeat(size))
    };
    if let Some(slot) = value.pointer_mut(&all[at % all.len()]) {
        *slot = big;
    }
    value.to_string()
}

/// Every JSON pointer of `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// Well-formed inputs, the same mutated or with a value made large, and free noise.
fn inputs(valid: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![
        3 => valid.clone(),
        1 => (valid.clone(), any::<usize>(), 200usize..5000, any::<bool>())
            .prop_map(|(text, at, size, as_array)| inflate(text, at, size, as_array)),
        4 => (valid, vec((any::<u8>(), any::<usize>(), edit_byte()), 1..5))
            .prop_map(|(text, edits)| mutate(text, edits)),
        1 => ".{0,120}",
        1 => arbitrary_json().prop_map(|v| v.to_string()),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep. Numbers are integers: they round-trip exactly.
fn arbitrary_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[a-zA-Z_]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

fn short_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_/.-]{0,24}",
        1 => "\\PC{0,24}",
        1 => Just(String::new()),
    ]
    .boxed()
}

fn optional<T: std::fmt::Debug + Clone + 'static>(
    strategy: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 2 => strategy.prop_map(Some)].boxed()
}

/// Insert `key: value` when `value` is given.
fn put(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

// ---------------------------------------------------------------------------------------------
// pub/sub relay: protocol::pubsub::parse_client
// ---------------------------------------------------------------------------------------------
mod pubsub {
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
    fn parse(
        text: &str,
    ) -> Result<(Model, Option<String>), relaydeck::protocol::pubsub::Rejection> {
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
}

// ---------------------------------------------------------------------------------------------
// Talo socket: protocol::talo::{envelope, request, error_frame}
// ---------------------------------------------------------------------------------------------
mod talo {
    use super::*;
    use relaydeck::protocol::talo::{
        envelope, error_frame, request, BroadcastData, ChannelMessageData, ChannelRef,
        IdentifyData, Request, RequestKind, HEARTBEAT,
    };

    fn data_of(request: &Request) -> (RequestKind, Value) {
        match request {
            Request::Identify(d) => (RequestKind::Identify, serde_json::to_value(d).unwrap()),
            Request::ChannelMessage(d) => (
                RequestKind::ChannelMessage,
                serde_json::to_value(d).unwrap(),
            ),
            Request::RelationshipBroadcast(d) => (
                RequestKind::RelationshipBroadcast,
                serde_json::to_value(d).unwrap(),
            ),
        }
    }

    fn encode(request: &Request) -> String {
        let (kind, data) = data_of(request);
        json!({"req": kind.name(), "data": data}).to_string()
    }

    fn well_formed() -> BoxedStrategy<Request> {
        prop_oneof![
            (any::<u64>(), short_text(), optional(short_text())).prop_map(
                |(id, token, session)| {
                    Request::Identify(IdentifyData {
                        player_alias_id: id,
                        socket_token: token,
                        session_token: session,
                    })
                }
            ),
            (any::<u64>(), short_text()).prop_map(|(id, message)| {
                Request::ChannelMessage(ChannelMessageData {
                    channel: ChannelRef { id },
                    message,
                })
            }),
            short_text()
                .prop_map(|message| Request::RelationshipBroadcast(BroadcastData { message })),
        ]
        .boxed()
    }

    fn check(text: String) -> Result<(), TestCaseError> {
        let Ok((kind, data)) = envelope(&text) else {
            // INVALID_MESSAGE echoes the raw frame as `cause`; the frame it builds is JSON
            // whatever the text holds.
            let frame: Value =
                serde_json::from_str(&error_frame("unknown", "INVALID_MESSAGE", "x", Some(&text)))
                    .unwrap();
            // The cause quotes the frame (cut short, if the server cuts echoes).
            let cause = frame["data"]["cause"].as_str().unwrap();
            prop_assert!(text.starts_with(cause.trim_end_matches('…')));
            prop_assert_eq!(&frame["res"], "v1.error");
            return Ok(());
        };
        prop_assert!(text != HEARTBEAT);
        if let Some(parsed) = request(kind, &data) {
            let (again_kind, again_data) = data_of(&parsed);
            prop_assert_eq!(again_kind, kind);
            prop_assert_eq!(request(kind, &again_data), Some(parsed.clone()));
            prop_assert_eq!(
                envelope(&encode(&parsed))
                    .ok()
                    .and_then(|(k, d)| request(k, &d)),
                Some(parsed)
            );
        }
        Ok(())
    }

    fn run(cases: u32) {
        let valid = well_formed().prop_map(|r| encode(&r)).boxed();
        fuzz("talo envelope+request", cases, inputs(valid), check);
        fuzz("talo well-formed requests", cases / 4, well_formed(), |r| {
            prop_assert_eq!(
                envelope(&encode(&r)).ok().and_then(|(k, d)| request(k, &d)),
                Some(r)
            );
            Ok(())
        });
    }

    runs!();
}

// ---------------------------------------------------------------------------------------------
// Flow streams: server::flow::request::parse and its error frames
// ---------------------------------------------------------------------------------------------
mod flow {
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
}

// ---------------------------------------------------------------------------------------------
// Signal Fish v2: protocol::signal_fish::ClientMessage, as the handler parses it
// ---------------------------------------------------------------------------------------------
mod signal_fish {
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
}

// ---------------------------------------------------------------------------------------------
// Admin protocol: protocol::admin::CommandEnvelope, as the admin endpoint parses it
// ---------------------------------------------------------------------------------------------
mod admin {
    use super::*;
    use relaydeck::catalog::Dialect;
    use relaydeck::protocol::admin::{
        AppStatus, Command, CommandEnvelope, FaultTarget, InjectTarget,
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

    fn envelope() -> BoxedStrategy<CommandEnvelope> {
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
}

// ---------------------------------------------------------------------------------------------
// Channel patterns: server::pubsub::pattern::Pattern
// ---------------------------------------------------------------------------------------------
mod pattern {
    use super::*;
    use regex::Regex;
    use relaydeck::server::pubsub::pattern::Pattern;

    /// An independent reading of the documented syntax, as an anchored regular expression;
    /// `None` where the syntax refuses the pattern.
    fn oracle(pattern: &str) -> Option<Regex> {
        if pattern.is_empty() {
            return None;
        }
        let mut out = String::from("(?s)^");
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push_str(&regex::escape(&chars.next()?.to_string())),
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    out.push_str(".*");
                }
                '*' => out.push_str("[^/]*"),
                other => out.push_str(&regex::escape(&other.to_string())),
            }
        }
        out.push('$');
        Regex::new(&out).ok()
    }

    fn escape(literal: &str) -> String {
        literal
            .chars()
            .flat_map(|c| match c {
                '\\' | '*' => vec!['\\', c],
                c => vec![c],
            })
            .collect()
    }

    fn check((pattern, channel): (String, String)) -> Result<(), TestCaseError> {
        let parsed = Pattern::parse(&pattern);
        let oracle = oracle(&pattern);
        prop_assert_eq!(parsed.is_ok(), oracle.is_some(), "{:?}", pattern);
        if let (Ok(parsed), Some(oracle)) = (parsed, oracle) {
            prop_assert_eq!(
                parsed.matches(&channel),
                oracle.is_match(&channel),
                "{:?} on {:?}",
                pattern,
                channel
            );
        }
        // A pattern of the escaped channel is that channel and nothing else.
        if !channel.is_empty() {
            let literal = Pattern::parse(&escape(&channel)).unwrap();
            prop_assert!(literal.matches(&channel));
            let longer = format!("{channel}x");
            prop_assert!(!literal.matches(&longer));
            let shorter: String = channel.chars().skip(1).collect();
            prop_assert!(!literal.matches(&shorter));
            prop_assert!(Pattern::parse("**").unwrap().matches(&channel));
        }
        Ok(())
    }

    fn run(cases: u32) {
        // A small alphabet makes stars, slashes and escapes meet often.
        let small = || "[ab/*\\\\]{0,12}";
        let strategy = prop_oneof![
            3 => (small(), small()),
            1 => ("\\PC{0,16}", "\\PC{0,24}"),
            1 => ("[a-z/]{0,6}(\\*\\*?[a-z/]{0,4}){0,3}", "[a-z/]{0,30}"),
        ];
        fuzz("pubsub channel pattern", cases, strategy, check);
    }

    runs!();
}

// ---------------------------------------------------------------------------------------------
// Signed pub/sub tokens: server::token::{mint, verify}
// ---------------------------------------------------------------------------------------------
mod token {
    use super::*;
    use relaydeck::server::config::PubsubAction;
    use relaydeck::server::token::{mint, verify, Claims, TokenError};

    fn claims() -> BoxedStrategy<Claims> {
        (
            short_text(),
            short_text(),
            1u64..u64::MAX,
            optional(vec(short_text(), 0..3)),
            optional(vec(
                proptest::sample::select(PubsubAction::ALL.to_vec()),
                0..4,
            )),
        )
            .prop_map(|(sub, app, exp, channels, permissions)| Claims {
                sub,
                app,
                exp,
                channels,
                permissions,
            })
            .boxed()
    }

    /// Signed then verified round-trips; expiry, another secret and every single-byte
    /// change (`every_byte`), or one chosen byte, are refused.
    fn check(
        every_byte: bool,
    ) -> impl Fn((Claims, String, usize, u8)) -> Result<(), TestCaseError> {
        move |(claims, secret, position, byte)| {
            let token = mint(&secret, &claims);
            let secret_of = |_: &str| Some(secret.clone());
            prop_assert_eq!(
                verify(&token, secret_of, claims.exp - 1),
                Ok(claims.clone())
            );
            prop_assert_eq!(
                verify(&token, secret_of, claims.exp),
                Err(TokenError::Expired)
            );
            let other = format!("{secret}x");
            prop_assert_eq!(
                verify(&token, |_: &str| Some(other.clone()), 0),
                Err(TokenError::Invalid)
            );
            let positions: Vec<usize> = if every_byte {
                (0..token.len()).collect()
            } else {
                vec![position % token.len()]
            };
            for at in positions {
                let mut bytes = token.clone().into_bytes();
                // Any other ASCII byte: a token is ASCII, and the verifier takes text.
                bytes[at] = if bytes[at] == byte % 128 {
                    (byte % 128) ^ 1
                } else {
                    byte % 128
                };
                let mutated = String::from_utf8(bytes).unwrap();
                prop_assert!(
                    verify(&mutated, secret_of, 0).is_err(),
                    "byte {} changed still verifies: {}",
                    at,
                    mutated
                );
            }
            Ok(())
        }
    }

    /// The default run changes every byte of each token; the long run one byte per token,
    /// so that its million tokens take seconds rather than hours.
    fn run(cases: u32) {
        let every_byte = cases <= SHORT;
        let strategy = (claims(), "[ -~]{0,40}", any::<usize>(), any::<u8>());
        fuzz("token sign/verify", cases, strategy, check(every_byte));
        // Noise is never a valid token.
        fuzz(
            "token noise",
            cases,
            inputs(Just("e30.e30.e30".to_owned()).boxed()),
            |text| {
                prop_assert!(verify(&text, |_: &str| Some("sk".to_owned()), 0).is_err());
                Ok(())
            },
        );
    }

    runs!();
}

// ---------------------------------------------------------------------------------------------
// Session files: session::Session::parse
// ---------------------------------------------------------------------------------------------
mod session {
    use super::*;
    use relaydeck::session::{
        Session, Step, MAX_PAD_BYTES, MAX_REPEAT, MAX_SESSION_MS, MAX_TIMEOUT_MS, MAX_WAIT_MS,
    };

    fn path() -> BoxedStrategy<String> {
        prop_oneof![
            4 => "/[a-z0-9/?=&_-]{0,20}",
            1 => "@[a-z.]{1,10}/x",
            1 => "(https?|ws)://[a-z.]{1,10}/",
            1 => "[a-z:0-9]{1,10}/?",
            1 => "/\\$\\{[a-z]{1,4}\\}",
        ]
        .boxed()
    }

    fn large() -> BoxedStrategy<u64> {
        prop_oneof![3 => 0u64..70_000, 1 => any::<u64>()].boxed()
    }

    fn step() -> BoxedStrategy<Value> {
        prop_oneof![
            (path(), optional(100u16..600)).prop_map(|(path, status)| {
                let mut step = json!({"step": "connect", "conn": "a", "path": path});
                put(
                    step.as_object_mut().unwrap(),
                    "expect_status",
                    status.map(Value::from),
                );
                step
            }),
            (arbitrary_json(), optional(large()), optional(large())).prop_map(
                |(frame, repeat, pad)| {
                    let mut step = json!({"step": "send", "conn": "a", "frame": frame});
                    put(
                        step.as_object_mut().unwrap(),
                        "repeat",
                        repeat.map(Value::from),
                    );
                    put(
                        step.as_object_mut().unwrap(),
                        "pad_to",
                        pad.map(Value::from),
                    );
                    step
                }
            ),
            (short_text(), optional(large())).prop_map(|(code, timeout)| {
                let mut step = json!({"step": "expect", "conn": "a", "code": code});
                put(
                    step.as_object_mut().unwrap(),
                    "timeout_ms",
                    timeout.map(Value::from),
                );
                step
            }),
            (1000u16..5000, optional(large())).prop_map(|(code, timeout)| {
                let mut step = json!({"step": "expect_close", "conn": "a", "code": code});
                put(
                    step.as_object_mut().unwrap(),
                    "timeout_ms",
                    timeout.map(Value::from),
                );
                step
            }),
            (path(), optional(large())).prop_map(|(path, repeat)| {
                let mut step = json!({"step": "http", "method": "GET", "path": path});
                put(
                    step.as_object_mut().unwrap(),
                    "repeat",
                    repeat.map(Value::from),
                );
                step
            }),
            short_text().prop_map(
                |peer| json!({"step": "admin", "command": {"command": "kick", "peer": peer}})
            ),
            large().prop_map(|ms| json!({"step": "wait", "ms": ms})),
        ]
        .boxed()
    }

    fn file() -> BoxedStrategy<String> {
        vec(step(), 0..8)
            .prop_map(|steps| {
                let mut text = r#"{"session":1,"name":"fuzz","dialect":"pubsub"}"#.to_owned();
                for step in steps {
                    text.push('\n');
                    text.push_str(&step.to_string());
                }
                text
            })
            .boxed()
    }

    fn check(text: String) -> Result<(), TestCaseError> {
        let Ok(session) = Session::parse(&text, "fuzz") else {
            return Ok(());
        };
        prop_assert_eq!(
            Session::parse(&session.to_jsonl(), "again").ok(),
            Some(session.clone())
        );
        prop_assert!(session.time_budget_ms() <= MAX_SESSION_MS);
        for step in &session.steps {
            match step {
                Step::Wait { ms } => prop_assert!(*ms <= MAX_WAIT_MS),
                Step::Expect { timeout_ms, .. } | Step::ExpectClose { timeout_ms, .. } => {
                    prop_assert!(timeout_ms.is_none_or(|t| t <= MAX_TIMEOUT_MS));
                }
                Step::Connect { path, .. } | Step::Http { path, .. } => {
                    prop_assert!(
                        path.starts_with("${")
                            || (path.starts_with('/') && !path.starts_with("//")),
                        "{:?}",
                        path
                    );
                }
                Step::Send { repeat, pad_to, .. } => {
                    prop_assert!(repeat.is_none_or(|r| r <= MAX_REPEAT));
                    prop_assert!(pad_to.is_none_or(|p| p <= MAX_PAD_BYTES));
                }
                _ => {}
            }
            if let Step::Connect { path, .. } | Step::Http { path, .. } = step {
                if !path.starts_with("${") {
                    prop_assert!(step.validate().is_ok());
                }
            }
        }
        Ok(())
    }

    fn run(cases: u32) {
        fuzz("session files", cases, inputs(file()), check);
    }

    runs!();
}

// ---------------------------------------------------------------------------------------------
// Server config: server::config::Config::parse
// ---------------------------------------------------------------------------------------------
mod config {
    use super::*;
    use relaydeck::server::config::Config;

    /// The demo config with a few of its values replaced by anything.
    fn edited_demo() -> BoxedStrategy<String> {
        let demo = serde_json::to_value(Config::demo()).unwrap();
        let mut all = Vec::new();
        pointers(&demo, String::new(), &mut all);
        vec((proptest::sample::select(all), arbitrary_json()), 1..3)
            .prop_map(move |edits| {
                let mut value = demo.clone();
                for (pointer, replacement) in edits {
                    if let Some(slot) = value.pointer_mut(&pointer) {
                        *slot = replacement;
                    }
                }
                value.to_string()
            })
            .boxed()
    }

    fn check(text: String) -> Result<(), TestCaseError> {
        if let Ok(config) = Config::parse(&text, "fuzz.json") {
            let again = serde_json::to_string(&config).unwrap();
            prop_assert_eq!(Config::parse(&again, "again.json").ok(), Some(config));
        }
        Ok(())
    }

    fn run(cases: u32) {
        fuzz("config", cases, inputs(edited_demo()), check);
    }

    #[test]
    fn demo_config_round_trips() {
        check(serde_json::to_string(&Config::demo()).unwrap()).unwrap();
        assert!(Config::parse(&serde_json::to_string(&Config::demo()).unwrap(), "demo").is_ok());
    }

    runs!();
}

// ---------------------------------------------------------------------------------------------
// The decoder: catalog::decode::decode
// ---------------------------------------------------------------------------------------------
mod decode {
    use super::*;
    use relaydeck::catalog::decode::decode;
    use relaydeck::catalog::{self, Dialect, Entry};

    fn example() -> BoxedStrategy<String> {
        let examples: Vec<&'static str> =
            catalog::all().map(|e: &'static Entry| e.example).collect();
        proptest::sample::select(examples)
            .prop_map(str::to_owned)
            .boxed()
    }

    fn check((input, hint): (String, Option<Dialect>)) -> Result<(), TestCaseError> {
        let plain = decode(&input, None);
        // Deterministic, and blind to surrounding whitespace.
        prop_assert_eq!(&decode(&input, None), &plain);
        prop_assert_eq!(&decode(&format!(" \n{input}\t "), None), &plain);
        let Ok(plain) = plain else {
            return Ok(());
        };
        prop_assert_eq!(plain.dialect.is_some() || plain.candidates.is_empty(), true);
        // The result is JSON-serializable (decode --json).
        prop_assert!(serde_json::to_string(&plain).is_ok());
        if let Some(hint) = hint {
            if let Ok(narrowed) = decode(&input, Some(hint)) {
                // A hint narrows; it never invents an entry.
                for entry in &narrowed.candidates {
                    prop_assert!(
                        entry.dialect == hint || entry.dialect == Dialect::Websocket,
                        "{} for hint {}",
                        entry.qualified(),
                        hint
                    );
                    prop_assert!(plain.candidates.contains(entry));
                }
            }
        }
        Ok(())
    }

    fn run(cases: u32) {
        let hint = optional(proptest::sample::select(Dialect::ALL.to_vec()));
        let text = prop_oneof![
            2 => inputs(example()),
            1 => ("(close |HTTP/1.1 |)", 0u32..70_000, "[ -~\n]{0,40}")
                .prop_map(|(head, number, tail)| format!("{head}{number}{tail}")),
        ];
        fuzz("decode", cases, (text, hint), check);
        // Every entry's example, mutated or not, with every hint: still no panic, still the
        // invariants; unmutated, it decodes to its own entry.
        fuzz(
            "decode catalog examples",
            cases / 4,
            proptest::sample::select(catalog::all().collect::<Vec<_>>()),
            |entry| {
                let decoding = decode(entry.example, Some(entry.dialect));
                prop_assert_eq!(
                    decoding.ok().and_then(|d| d.best()).map(|e| e.qualified()),
                    Some(entry.qualified())
                );
                Ok(())
            },
        );
    }

    runs!();
}

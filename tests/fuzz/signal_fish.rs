//! Signal Fish v2 and v3: what a session does with a text frame (`server::signal_fish`), that
//! is `protocol::game_data::payload` (the relay's fast path, tried first once authenticated)
//! and then `serde_json::from_str::<protocol::signal_fish::Request>` (every other frame).
//!
//! Binary frames are never parsed: a session refuses each with INVALID_INPUT (MISSING_APP_ID
//! before Authenticate), and a client asking for MessagePack game data is answered in JSON.

use super::*;
use relaydeck::catalog::{self, Dialect};
use relaydeck::protocol::game_data::{payload, relayed, Stamp};
use relaydeck::protocol::json::{relayable_depth, MAX_DEPTH};
use relaydeck::protocol::signal_fish::{
    Authenticate, DeliveryClass, GameDataFormat, JoinAsSpectator, JoinRoom, Reconnect,
    RelayTransport, Request, RoomOperationRequest, Topology, Transport,
};
use serde::Deserialize;
use serde_json::value::RawValue;

fn parse(text: &str) -> Result<Request, serde_json::Error> {
    serde_json::from_str::<Request>(text)
}

/// Every client message type of 0.12, as `Request` names them.
const TYPES: [&str; 15] = [
    "Authenticate",
    "JoinRoom",
    "LeaveRoom",
    "GameData",
    "Signal",
    "AuthorityRequest",
    "PlayerReady",
    "StartGame",
    "ProvideConnectionInfo",
    "Ping",
    "Reconnect",
    "JoinAsSpectator",
    "LeaveSpectator",
    "RoomOperation",
    "TransportStatus",
];

fn name() -> BoxedStrategy<String> {
    prop_oneof![4 => "[A-Za-z0-9 _-]{1,16}", 1 => short_text()].boxed()
}

fn code() -> BoxedStrategy<String> {
    prop_oneof![3 => "[2-9A-HJ-NP-Z]{6}", 1 => short_text()].boxed()
}

fn select<T: Clone + std::fmt::Debug + 'static>(items: &[T]) -> BoxedStrategy<T> {
    proptest::sample::select(items.to_vec()).boxed()
}

fn authenticate() -> BoxedStrategy<Authenticate> {
    let formats = [
        GameDataFormat::Json,
        GameDataFormat::MessagePack,
        GameDataFormat::Rkyv,
        GameDataFormat::Protobuf,
    ];
    let transports = [Transport::Relay, Transport::Direct, Transport::WebRtc];
    let topologies = [Topology::Relay, Topology::Host, Topology::Mesh];
    (
        (name(), optional(name()), optional(name()), optional(name())),
        (
            optional(select(&formats)),
            optional(any::<u16>()),
            optional(vec(select(&transports), 0..3)),
            optional(vec(select(&topologies), 0..3)),
            optional(vec(name(), 0..3)),
            optional(name()),
        ),
    )
        .prop_map(
            |(
                (app_id, connect_token, sdk_version, platform),
                (game_data_format, protocol_version, transports, topologies, capabilities, token),
            )| Authenticate {
                app_id,
                connect_token,
                sdk_version,
                platform,
                game_data_format,
                protocol_version,
                supported_transports: transports,
                supported_topologies: topologies,
                requested_capabilities: capabilities,
                token,
            },
        )
        .boxed()
}

fn join_room() -> BoxedStrategy<JoinRoom> {
    let relay = [
        RelayTransport::Tcp,
        RelayTransport::Udp,
        RelayTransport::Websocket,
        RelayTransport::Auto,
    ];
    (
        (name(), optional(code()), name(), optional(any::<u8>())),
        (
            optional(any::<bool>()),
            optional(select(&relay)),
            optional(name()),
            optional(any::<bool>()),
            optional(any::<bool>()),
            optional(any::<i64>()),
        ),
    )
        .prop_map(
            |(
                (game_name, room_code, player_name, max_players),
                (
                    supports_authority,
                    relay_transport,
                    password,
                    join_only,
                    allow_spectators,
                    max_spectators,
                ),
            )| JoinRoom {
                game_name,
                room_code,
                player_name,
                max_players,
                supports_authority,
                relay_transport,
                password,
                join_only,
                allow_spectators,
                max_spectators,
            },
        )
        .boxed()
}

fn reconnect() -> BoxedStrategy<Reconnect> {
    (name(), name(), name())
        .prop_map(|(player_id, room_id, auth_token)| Reconnect {
            player_id,
            room_id,
            auth_token,
        })
        .boxed()
}

fn spectate() -> BoxedStrategy<JoinAsSpectator> {
    (name(), code(), name(), optional(name()))
        .prop_map(
            |(game_name, room_code, spectator_name, password)| JoinAsSpectator {
                game_name,
                room_code,
                spectator_name,
                password,
            },
        )
        .boxed()
}

fn operation() -> BoxedStrategy<RoomOperationRequest> {
    prop_oneof![
        join_room().prop_map(RoomOperationRequest::JoinRoom),
        Just(RoomOperationRequest::LeaveRoom),
        reconnect().prop_map(RoomOperationRequest::Reconnect),
        spectate().prop_map(RoomOperationRequest::JoinAsSpectator),
        Just(RoomOperationRequest::LeaveSpectator),
        name().prop_map(|player_id| RoomOperationRequest::KickPlayer { player_id }),
        Just(RoomOperationRequest::RegenerateRoomCode),
        optional(name()).prop_map(|password| RoomOperationRequest::SetRoomAccess { password }),
        name().prop_map(|player_id| RoomOperationRequest::BanPlayer { player_id }),
        name().prop_map(|player_id| RoomOperationRequest::UnbanPlayer { player_id }),
        name().prop_map(|player_id| RoomOperationRequest::TransferAuthority { player_id }),
    ]
    .boxed()
}

fn class() -> BoxedStrategy<DeliveryClass> {
    select(&[
        DeliveryClass::Reliable,
        DeliveryClass::Latest,
        DeliveryClass::Volatile,
    ])
}

/// Every request 0.12 knows, as a client builds it.
fn request() -> BoxedStrategy<Request> {
    prop_oneof![
        authenticate().prop_map(Request::Authenticate),
        join_room().prop_map(Request::JoinRoom),
        Just(Request::LeaveRoom),
        (arbitrary_json(), optional(class()), optional(any::<u32>()))
            .prop_map(|(data, class, key)| Request::GameData { data, class, key }),
        (name(), name(), arbitrary_json()).prop_map(|(to, generation, signal)| {
            Request::Signal {
                to,
                generation,
                signal,
            }
        }),
        any::<bool>().prop_map(|become_authority| Request::AuthorityRequest { become_authority }),
        Just(Request::PlayerReady),
        Just(Request::StartGame),
        arbitrary_json()
            .prop_map(|connection_info| Request::ProvideConnectionInfo { connection_info }),
        Just(Request::Ping),
        reconnect().prop_map(Request::Reconnect),
        spectate().prop_map(Request::JoinAsSpectator),
        Just(Request::LeaveSpectator),
        (name(), operation()).prop_map(|(operation_id, operation)| Request::RoomOperation {
            operation_id,
            operation: Box::new(operation),
        }),
        (
            select(&[Transport::Relay, Transport::Direct, Transport::WebRtc]),
            any::<bool>()
        )
            .prop_map(|(transport, connected)| Request::TransportStatus {
                transport,
                connected
            }),
    ]
    .boxed()
}

/// GameData as clients write it, the payload as raw text: numbers no tree holds, whitespace,
/// nesting around the relay's limit.
fn game_data() -> BoxedStrategy<String> {
    (
        raw_json(),
        optional(class()),
        optional(prop_oneof![any::<u32>().prop_map(u64::from), any::<u64>()]),
        any::<bool>(),
    )
        .prop_map(|(data, class, key, data_first)| {
            let mut inner = format!(r#"{{"data": {data}"#);
            if let Some(class) = class {
                inner.push_str(&format!(r#","class":{}"#, json!(class)));
            }
            if let Some(key) = key {
                inner.push_str(&format!(r#","key":{key}"#));
            }
            inner.push('}');
            if data_first {
                format!(r#"{{"data":{inner},"type":"GameData"}}"#)
            } else {
                format!(r#"{{"type":"GameData","data":{inner}}}"#)
            }
        })
        .boxed()
}

/// The client frames recorded from signal-fish-server 0.12.0, deliberately bad ones included.
fn recorded() -> BoxedStrategy<String> {
    let frames: Vec<String> = include_str!("../fixtures/signal-fish-v2-frames.log")
        .lines()
        .filter(|l| l.starts_with('['))
        .filter_map(|l| l.split(" >> ").nth(1))
        .map(str::to_owned)
        .collect();
    assert!(frames.len() >= 10, "the recording's client frames");
    proptest::sample::select(frames).boxed()
}

fn well_formed() -> BoxedStrategy<String> {
    prop_oneof![
        4 => request().prop_map(|r| serde_json::to_string(&r).unwrap()),
        2 => game_data(),
        1 => recorded(),
    ]
    .boxed()
}

/// A frame's type, whatever else it holds.
#[derive(Deserialize)]
struct Tag {
    #[serde(rename = "type")]
    kind: String,
}

/// The names of the fields inside a frame's `data`, whatever their values hold.
#[derive(Deserialize)]
struct DataKeys {
    data: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
}

/// Whether a GameData frame's `data` has a field GameData does not: the fast path leaves
/// those to the full parser.
fn has_foreign_fields(text: &str) -> bool {
    serde_json::from_str::<DataKeys>(text).is_ok_and(|keys| {
        keys.data
            .keys()
            .any(|k| !matches!(k.as_str(), "data" | "class" | "key"))
    })
}

/// What the relay's fast path hands on, as owned values.
#[derive(Debug, PartialEq)]
struct Fast {
    data: String,
    class: Option<DeliveryClass>,
    key: Option<u32>,
}

/// A relayed frame as its recipients read it.
#[derive(Deserialize)]
struct Received<'a> {
    #[serde(borrow)]
    data: ReceivedData<'a>,
}

#[derive(Deserialize)]
struct ReceivedData<'a> {
    from_player: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

fn check(text: String) -> Result<(), TestCaseError> {
    let fast = payload(&text).map(|inbound| Fast {
        data: inbound.data().get().to_owned(),
        class: inbound.class,
        key: inbound.key,
    });
    let full = parse(&text);
    if let Some(fast) = &fast {
        // The fast path relays only what the full parser reads as the same GameData; a
        // payload with a number no tree holds (`1e400`) the full parser refuses, and the
        // fast path relays as sent, as the pub/sub relay does.
        match &full {
            Ok(Request::GameData { data, class, key }) => {
                prop_assert_eq!((&fast.class, &fast.key), (class, key));
                prop_assert_eq!(
                    &serde_json::from_str::<Value>(&fast.data).unwrap(),
                    data,
                    "{}",
                    text
                );
            }
            other => {
                prop_assert!(
                    serde_json::from_str::<Value>(&fast.data).is_err(),
                    "the fast path relays {} which the full parser reads as {:?}",
                    text,
                    other
                );
            }
        }
        // What others receive holds the payload as sent (less whitespace) in a frame a
        // depth-limited parser reads.
        prop_assert!(depth(&fast.data) <= relayable_depth(2));
        let raw = RawValue::from_string(fast.data.clone()).unwrap();
        let stamp = Stamp {
            seq: 1,
            epoch: 0,
            class: fast.class,
            key: fast.key,
        };
        let compact = without_whitespace(&fast.data);
        for frame in [
            relayed("p-1", &raw, None),
            relayed("p-1", &raw, Some(&stamp)),
        ] {
            prop_assert!(depth(&frame) <= MAX_DEPTH);
            let received: Received<'_> = serde_json::from_str(&frame).unwrap();
            prop_assert_eq!(received.data.from_player.as_str(), "p-1");
            prop_assert_eq!(received.data.data.get(), compact.as_str());
        }
    }
    let Ok(request) = full else {
        // The session answers INVALID_INPUT, which clients look up in the catalog.
        prop_assert!(catalog::get(Dialect::SignalFish, "INVALID_INPUT").is_some());
        return Ok(());
    };
    // What parses is a JSON object of a documented type, and it means the same however it is
    // spaced or ordered: the re-serialized request parses to an equal one.
    let again = serde_json::to_string(&request).unwrap();
    prop_assert_eq!(parse(&again).ok(), Some(request.clone()));
    // A field the parser skips may hold a number no tree holds: the frame then has no tree
    // to reorder, and its type is read on its own.
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        let kind = value["type"].as_str().unwrap_or_default();
        prop_assert!(TYPES.contains(&kind), "{}", kind);
        prop_assert_eq!(parse(&value.to_string()).ok(), Some(request.clone()));
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        prop_assert_eq!(parse(&pretty).ok(), Some(request.clone()));
    } else if let Ok(Tag { kind }) = serde_json::from_str::<Tag>(&text) {
        prop_assert!(TYPES.contains(&kind.as_str()), "{}", kind);
    }
    if let Request::GameData { data, .. } = &request {
        // The fast path takes every GameData the full parser takes, unless it nests too
        // deep to relay or has fields GameData does not (the full parser then answers for
        // it).
        if fast.is_none() {
            prop_assert!(
                depth(&data.to_string()) > relayable_depth(2) || has_foreign_fields(&text),
                "the fast path passes over {}",
                text
            );
        }
    }
    Ok(())
}

/// JSON text less the whitespace between tokens, read independently of the relay's
/// compactor.
fn without_whitespace(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

fn run(cases: u32) {
    fuzz(
        "signal-fish Request + GameData fast path",
        cases,
        inputs(well_formed()),
        check,
    );
    // Every request a client builds is read back as built.
    fuzz(
        "signal-fish well-formed requests",
        cases / 4,
        request(),
        |request| {
            let text = serde_json::to_string(&request).unwrap();
            prop_assert_eq!(parse(&text).ok(), Some(request));
            check(text)
        },
    );
}

runs!();

/// Found by the long run: a field the parser skips may hold a number no tree holds (the fast
/// path leaves the frame to the full parser, which skips it).
#[test]
fn skipped_fields_may_hold_numbers_beyond_f64() {
    check(
        r#"{"type":"GameData","data":{"data": {},"class":"latest","{key":1e00000000000003030}}"#
            .to_owned(),
    )
    .unwrap();
}

/// Found by the long run: the same with `data` before `type`, which the full parser (as
/// serde reads an adjacently tagged enum) buffers and refuses; the fast path leaves a frame
/// with fields GameData does not have to it.
#[test]
fn a_skipped_number_beyond_f64_before_the_type_is_the_full_parsers_call() {
    check(r#"{"data":{"data": -0.0,"kekey":100e000000000000307},"type":"GameData"}"#.to_owned())
        .unwrap();
}

//! The Talo socket's wire format.
//!
//! # Format
//! ```text
//! client → server  v1.heartbeat                                   (plain text, echoed)
//!                  {"req":"v1.players.identify","data":{"playerAliasId":1,"socketToken":"…","sessionToken":"…"}}
//!                  {"req":"v1.channels.message","data":{"channel":{"id":1},"message":"hello"}}
//!                  {"req":"v1.player-relationships.broadcast","data":{"message":"gg"}}
//! server → client  {"res":"v1.connected","data":{}}
//!                  {"res":"v1.players.identify.success","data":{alias}}
//!                  {"res":"v1.channels.message","data":{"channel":{…},"message":"hello","playerAlias":{…}}}
//!                  {"res":"v1.error","data":{"req":"v1.channels.message","message":"…","errorCode":"LISTENER_ERROR","cause":"Player not in channel"}}
//! ```
//! A frame that is not JSON is ROUTING_ERROR (`req` "unknown": upstream's `JSON.parse` throws
//! something other than a validation error, TaloDev/backend `src/socket/router/socketRouter.ts`).
//! JSON that is not an envelope — `req` not one of the three requests, or `data` not an
//! object — is INVALID_MESSAGE (`req` "unknown", the raw frame as `cause`); a known `req` whose
//! `data` does not fit its schema is INVALID_MESSAGE_DATA (the data as `cause`).
//! `sessionToken` is only needed for aliases of service `talo`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const HEARTBEAT: &str = "v1.heartbeat";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Identify,
    ChannelMessage,
    RelationshipBroadcast,
}

impl RequestKind {
    pub const ALL: [RequestKind; 3] = [
        RequestKind::Identify,
        RequestKind::ChannelMessage,
        RequestKind::RelationshipBroadcast,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RequestKind::Identify => "v1.players.identify",
            RequestKind::ChannelMessage => "v1.channels.message",
            RequestKind::RelationshipBroadcast => "v1.player-relationships.broadcast",
        }
    }

    /// The access key scope Talo requires for the request.
    pub fn scope(self) -> &'static str {
        match self {
            RequestKind::Identify => "read:players",
            RequestKind::ChannelMessage => "write:gameChannels",
            RequestKind::RelationshipBroadcast => "write:playerBroadcasts",
        }
    }

    /// Every request but identify needs an identified player (NO_PLAYER_FOUND otherwise).
    pub fn needs_player(self) -> bool {
        self != RequestKind::Identify
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentifyData {
    pub player_alias_id: u64,
    pub socket_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRef {
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMessageData {
    pub channel: ChannelRef,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastData {
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Identify(IdentifyData),
    ChannelMessage(ChannelMessageData),
    RelationshipBroadcast(BroadcastData),
}

/// Why a frame is not a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAnEnvelope {
    /// Not JSON at all: ROUTING_ERROR.
    NotJson,
    /// JSON, but not `{"req": <known request>, "data": {…}}`: INVALID_MESSAGE.
    Invalid,
}

/// The request kind and its `data` object.
pub fn envelope(text: &str) -> Result<(RequestKind, Value), NotAnEnvelope> {
    let value: Value = serde_json::from_str(text).map_err(|_| NotAnEnvelope::NotJson)?;
    let kind = value
        .get("req")
        .and_then(Value::as_str)
        .and_then(|req| RequestKind::ALL.into_iter().find(|k| k.name() == req))
        .ok_or(NotAnEnvelope::Invalid)?;
    match value.get("data") {
        Some(data @ Value::Object(_)) => Ok((kind, data.clone())),
        _ => Err(NotAnEnvelope::Invalid),
    }
}

/// The typed request, or `None` when `data` does not fit the request's schema
/// (INVALID_MESSAGE_DATA).
pub fn request(kind: RequestKind, data: &Value) -> Option<Request> {
    let data = data.clone();
    match kind {
        RequestKind::Identify => identify_data(&data).map(Request::Identify),
        RequestKind::ChannelMessage => serde_json::from_value(data)
            .ok()
            .map(Request::ChannelMessage),
        RequestKind::RelationshipBroadcast => serde_json::from_value(data)
            .ok()
            .map(Request::RelationshipBroadcast),
    }
}

/// Identify's data as Talo's zod schema takes it (`playerListeners.ts`): `playerAliasId` any
/// number, `socketToken` a string, `sessionToken` a string or absent (`null` is refused).
fn identify_data(data: &Value) -> Option<IdentifyData> {
    let object = data.as_object()?;
    let id = object.get("playerAliasId")?;
    // Upstream accepts any number and then finds no socket token for one that is not an
    // alias id (1.5, -1): the id no alias has stands for those, so the answer is the same.
    let player_alias_id = match id.as_u64() {
        Some(id) => id,
        None if id.is_number() => u64::MAX,
        None => return None,
    };
    let socket_token = object.get("socketToken")?.as_str()?.to_owned();
    let session_token = match object.get("sessionToken") {
        None => None,
        Some(Value::String(token)) => Some(token.clone()),
        Some(_) => return None,
    };
    Some(IdentifyData {
        player_alias_id,
        socket_token,
        session_token,
    })
}

/// `v1.error` data, in the field order of Talo's documentation.
#[derive(Debug, Serialize)]
pub struct ErrorData<'a> {
    pub req: &'a str,
    pub message: &'a str,
    #[serde(rename = "errorCode")]
    pub error_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'a str>,
}

/// `{"res":…,"data":…}` with `res` first, as Talo writes it.
#[derive(Debug, Serialize)]
pub struct Envelope<'a, T: Serialize> {
    pub res: &'a str,
    pub data: T,
}

/// A server frame. The data types sent are strings, numbers and JSON values, which always
/// serialize, so the empty fallback is never sent.
pub fn frame<T: Serialize>(res: &str, data: T) -> String {
    serde_json::to_string(&Envelope { res, data }).unwrap_or_default()
}

/// Most characters of a `cause` an error frame carries. Upstream echoes a malformed frame
/// whole; a client's megabyte of garbage must not come back to it (or reach every console) in
/// full, and the start of it is what a person needs to recognise it.
pub const MAX_CAUSE_CHARS: usize = 256;

pub fn error_frame(req: &str, code: &str, message: &str, cause: Option<&str>) -> String {
    let cause = cause.map(|cause| match cause.char_indices().nth(MAX_CAUSE_CHARS) {
        None => cause.to_owned(),
        Some((end, _)) => format!("{}…", &cause[..end]),
    });
    frame(
        "v1.error",
        ErrorData {
            req,
            message,
            error_code: code,
            cause: cause.as_deref(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_long_cause_is_cut() {
        let long = "x".repeat(10_000);
        let frame: serde_json::Value =
            serde_json::from_str(&error_frame("unknown", "INVALID_MESSAGE", "m", Some(&long)))
                .unwrap();
        let cause = frame["data"]["cause"].as_str().unwrap();
        assert_eq!(cause.chars().count(), MAX_CAUSE_CHARS + 1);
        assert!(cause.ends_with('…'));
    }

    #[test]
    fn error_frames_match_the_documented_examples() {
        assert_eq!(
            error_frame(
                "v1.channels.message",
                "LISTENER_ERROR",
                "An error occurred while processing the message",
                Some("Player not in channel")
            ),
            r#"{"res":"v1.error","data":{"req":"v1.channels.message","message":"An error occurred while processing the message","errorCode":"LISTENER_ERROR","cause":"Player not in channel"}}"#
        );
        assert_eq!(
            error_frame(
                "unknown",
                "RATE_LIMIT_EXCEEDED",
                "Rate limit exceeded",
                None
            ),
            r#"{"res":"v1.error","data":{"req":"unknown","message":"Rate limit exceeded","errorCode":"RATE_LIMIT_EXCEEDED"}}"#
        );
        assert_eq!(
            frame("v1.connected", json!({})),
            r#"{"res":"v1.connected","data":{}}"#
        );
    }

    #[test]
    fn unknown_or_malformed_envelopes_are_invalid_messages() {
        for text in [
            r#"{"req":"v1.does.not.exist","data":{}}"#,
            r#"{"req":7}"#,
            r#"{"data":{}}"#,
            r#"{"req":"v1.channels.message"}"#,
            r#"{"req":"v1.channels.message","data":[]}"#,
            "[]",
        ] {
            assert_eq!(envelope(text), Err(NotAnEnvelope::Invalid), "{text}");
        }
        for text in ["v1.heartbeat!", "", "{nope"] {
            assert_eq!(envelope(text), Err(NotAnEnvelope::NotJson), "{text}");
        }
        assert_eq!(
            envelope(r#"{"req":"v1.channels.message","data":{"x":1}}"#),
            Ok((RequestKind::ChannelMessage, json!({"x": 1})))
        );
    }

    #[test]
    fn data_must_fit_the_request_schema() {
        let identify = json!({"playerAliasId": 1, "socketToken": "t"});
        assert_eq!(
            request(RequestKind::Identify, &identify),
            Some(Request::Identify(IdentifyData {
                player_alias_id: 1,
                socket_token: "t".into(),
                session_token: None,
            }))
        );
        let bad = [
            (
                RequestKind::Identify,
                json!({"playerAliasId": "1", "socketToken": "t"}),
            ),
            (
                RequestKind::Identify,
                json!({"playerAliasId": 1, "socketToken": "t", "sessionToken": 5}),
            ),
            (
                RequestKind::Identify,
                json!({"playerAliasId": 1, "socketToken": "t", "sessionToken": null}),
            ),
            (
                RequestKind::ChannelMessage,
                json!({"myMessageToTheChannelIsGoingToBeThis": "general"}),
            ),
            (
                RequestKind::ChannelMessage,
                json!({"channel": {"id": -1}, "message": "hi"}),
            ),
            (RequestKind::RelationshipBroadcast, json!({"message": 3})),
            (RequestKind::RelationshipBroadcast, Value::Null),
        ];
        for (kind, data) in bad {
            assert_eq!(request(kind, &data), None, "{data}");
        }
        assert_eq!(
            request(
                RequestKind::ChannelMessage,
                &json!({"channel": {"id": 1}, "message": "hi"})
            ),
            Some(Request::ChannelMessage(ChannelMessageData {
                channel: ChannelRef { id: 1 },
                message: "hi".into(),
            }))
        );
    }
}

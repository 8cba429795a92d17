//! Talo socket: protocol::talo::{envelope, request, error_frame}

use super::*;
use relaydeck::protocol::talo::{
    envelope, error_frame, request, BroadcastData, ChannelMessageData, ChannelRef, IdentifyData,
    Request, RequestKind, HEARTBEAT,
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
        (any::<u64>(), short_text(), optional(short_text())).prop_map(|(id, token, session)| {
            Request::Identify(IdentifyData {
                player_alias_id: id,
                socket_token: token,
                session_token: session,
            })
        }),
        (any::<u64>(), short_text()).prop_map(|(id, message)| {
            Request::ChannelMessage(ChannelMessageData {
                channel: ChannelRef { id },
                message,
            })
        }),
        short_text().prop_map(|message| Request::RelationshipBroadcast(BroadcastData { message })),
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

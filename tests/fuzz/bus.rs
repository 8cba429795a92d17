//! The cluster's bus: `server::cluster::bus::Envelope`, one JSON message per Redis publish,
//! read by every other node (`serde_json::from_str::<Envelope>` in `server::cluster`), and
//! the dialects' messages it carries, which each dialect's handler reads back from the
//! envelope's `message`.

use super::*;
use relaydeck::protocol::admin::{AppStatus, CommandResult};
use relaydeck::server::cluster_wire::{
    Body, Envelope, FanOut, Membership, PubsubMessage, RemotePeer, Topic, TunnelMessage, TunnelOpen,
};
use relaydeck::server::talo::socket::Audience;

/// A dialect's message as the bus carries it.
fn published<T: Topic>(message: T) -> Body {
    Body::Published {
        namespace: T::NAMESPACE.to_owned(),
        message: serde_json::to_value(message).unwrap(),
    }
}

fn peer() -> BoxedStrategy<RemotePeer> {
    (short_text(), short_text())
        .prop_map(|(app, identity)| RemotePeer { app, identity })
        .boxed()
}

fn membership() -> BoxedStrategy<Membership> {
    (short_text(), short_text(), short_text())
        .prop_map(|(app, channel, identity)| Membership {
            app,
            channel,
            identity,
        })
        .boxed()
}

/// A frame carried inside a message: any text, JSON or not.
fn text() -> BoxedStrategy<String> {
    prop_oneof![2 => raw_json(), 1 => "\\PC{0,40}"].boxed()
}

fn body() -> BoxedStrategy<Body> {
    let leaf = prop_oneof![
        Just(Body::Hello),
        Just(Body::Goodbye),
        (vec(peer(), 0..3), vec(membership(), 0..3)).prop_map(|(peers, memberships)| published(
            PubsubMessage::State { peers, memberships }
        )),
        peer().prop_map(|p| published(PubsubMessage::PeerUp(p))),
        peer().prop_map(|p| published(PubsubMessage::PeerDown(p))),
        membership().prop_map(|m| published(PubsubMessage::Joined(m))),
        membership().prop_map(|m| published(PubsubMessage::Left(m))),
        (short_text(), short_text(), text()).prop_map(|(app, channel, text)| {
            published(PubsubMessage::ChannelMessage { app, channel, text })
        }),
        (short_text(), short_text(), text())
            .prop_map(|(app, to, text)| published(PubsubMessage::Direct { app, to, text })),
        (
            short_text(),
            proptest::sample::select(vec![
                AppStatus::Active,
                AppStatus::Suspended,
                AppStatus::Revoked,
                AppStatus::Expired,
            ]),
            short_text()
        )
            .prop_map(|(app, status, by)| Body::AppStatus { app, status, by }),
        (any::<u64>(), super::admin::envelope(), short_text()).prop_map(
            |(request, envelope, by)| Body::Command {
                request,
                envelope,
                by
            }
        ),
        (
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            short_text(),
            optional(arbitrary_json())
        )
            // `null` data is no data: it reads back as absent.
            .prop_map(|(request, id, ok, message, data)| Body::CommandResult {
                request,
                result: CommandResult {
                    id,
                    ok,
                    message,
                    data: data.filter(|d| !d.is_null()),
                },
            }),
        (
            short_text(),
            prop_oneof![
                Just(Audience::Presence),
                any::<u64>().prop_map(Audience::Channel),
                Just(Audience::Broadcast),
            ],
            text()
        )
            .prop_map(|(app, audience, text)| published(FanOut {
                app,
                audience,
                text
            })),
        (
            short_text(),
            short_text(),
            short_text(),
            any::<u16>(),
            text(),
            any::<bool>()
        )
            .prop_map(
                |(peer, app, address, version, first, room_operation_ids)| published(
                    TunnelMessage::Open(TunnelOpen {
                        peer,
                        app,
                        address,
                        version,
                        first,
                        room_operation_ids,
                    })
                )
            ),
        (short_text(), text()).prop_map(|(peer, text)| published(TunnelMessage::In { peer, text })),
        (short_text(), any::<bool>())
            .prop_map(|(peer, removed)| published(TunnelMessage::End { peer, removed })),
        (short_text(), text())
            .prop_map(|(peer, text)| published(TunnelMessage::Out { peer, text })),
        (vec(short_text(), 0..3), text())
            .prop_map(|(peers, text)| published(TunnelMessage::OutMany { peers, text })),
        (short_text(), any::<u16>(), short_text()).prop_map(|(peer, code, reason)| {
            published(TunnelMessage::Close { peer, code, reason })
        }),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        vec(inner, 0..4).prop_map(|bodies| Body::Batch { bodies })
    })
    .boxed()
}

fn envelope() -> BoxedStrategy<Envelope> {
    (short_text(), body())
        .prop_map(|(from, body)| Envelope { from, body })
        .boxed()
}

/// What one node reads, another node wrote: a message read back out of its own text is the
/// same message, and writing it again gives the same text.
fn check(text: String) -> Result<(), TestCaseError> {
    let Ok(envelope) = serde_json::from_str::<Envelope>(&text) else {
        return Ok(());
    };
    let again = serde_json::to_string(&envelope).unwrap();
    let reread = serde_json::from_str::<Envelope>(&again);
    prop_assert_eq!(reread.as_ref().ok(), Some(&envelope), "{}", again);
    prop_assert_eq!(serde_json::to_string(&reread.unwrap()).unwrap(), again);
    read_as_its_handler_does(&envelope.body)
}

/// A dialect's message that its handler can read, written again, reads back the same.
fn read_as_its_handler_does(body: &Body) -> Result<(), TestCaseError> {
    fn again<T>(message: &serde_json::Value) -> Result<(), TestCaseError>
    where
        T: Topic + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        if let Ok(read) = serde_json::from_value::<T>(message.clone()) {
            let written = serde_json::to_value(&read).unwrap();
            prop_assert_eq!(serde_json::from_value::<T>(written).ok(), Some(read));
        }
        Ok(())
    }
    match body {
        Body::Batch { bodies } => bodies.iter().try_for_each(read_as_its_handler_does),
        Body::Published { namespace, message } => match namespace.as_str() {
            PubsubMessage::NAMESPACE => again::<PubsubMessage>(message),
            TunnelMessage::NAMESPACE => again::<TunnelMessage>(message),
            FanOut::NAMESPACE => again::<FanOut>(message),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

fn run(cases: u32) {
    let valid = envelope()
        .prop_map(|e| serde_json::to_string(&e).unwrap())
        .boxed();
    fuzz("cluster bus envelopes", cases, inputs(valid), check);
    fuzz(
        "cluster bus well-formed envelopes",
        cases / 4,
        envelope(),
        |e| {
            let text = serde_json::to_string(&e).unwrap();
            prop_assert_eq!(serde_json::from_str::<Envelope>(&text).ok(), Some(e));
            check(text)
        },
    );
}

runs!();

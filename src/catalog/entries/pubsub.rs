use super::*;

const SEED: Source = Source::Seed(crate::catalog::seeds::PUBSUB);

pub(super) static ENTRIES: &[Entry] = &[
    Entry {
        dialect: Dialect::Pubsub,
        code: "channel_not_authorized",
        status: None,
        delivery: Delivery::Frame,
        category: Category::Authorization,
        title: "Channel not authorized",
        wire_text: "not authorized: {channel}",
        meaning: "The channel is outside the channel patterns of the key this connection used.",
        retry: Retry::NotOnThisConnection,
        window: None,
        guidance: "Use a channel your key's patterns cover, or widen the key's channelPatterns and reconnect with it.",
        carriers: &["error"],
        example: r#"{"type":"error","requestId":"pub-2","code":"channel_not_authorized","message":"not authorized: other-app/room-1"}"#,
        source: SEED,
    },
    Entry {
        dialect: Dialect::Pubsub,
        code: "4020",
        status: None,
        delivery: Delivery::Close,
        category: Category::Lifecycle,
        title: "admin_disconnect",
        wire_text: "admin_disconnect",
        meaning: "An operator disconnected this peer on purpose.",
        retry: Retry::Sometimes,
        window: None,
        guidance: "Find out why the peer was kicked before reconnecting it; reconnecting in a loop will just be kicked again.",
        carriers: &[],
        example: "close 4020 admin_disconnect",
        source: SEED,
    },
];

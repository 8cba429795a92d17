//! Talo's entities as its API writes them: keys in the order of each entity's `toJSON`
//! (TaloDev/backend `src/entities/*.ts`), not sorted. `serde_json::Value` sorts its keys, so
//! frames and bodies that hold entities are built from [`Ordered`] values. No I/O.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::{iso_date, Alias, Presence};

/// A JSON value whose objects keep the order they were built in.
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Plain(Value),
    Object(Vec<(String, Ordered)>),
}

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Ordered::Plain(value) => value.serialize(serializer),
            Ordered::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<T: Into<Value>> From<T> for Ordered {
    fn from(value: T) -> Ordered {
        Ordered::Plain(value.into())
    }
}

/// An object with these entries, in this order.
pub fn object<const N: usize>(entries: [(&str, Ordered); N]) -> Ordered {
    Ordered::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// Talo's validation body, `{"errors": {field: [message]}}`, fields in the order checked.
pub fn validation_errors(errors: Vec<(String, String)>) -> Ordered {
    let fields = errors
        .into_iter()
        .map(|(field, message)| (field, Ordered::Plain(Value::Array(vec![message.into()]))))
        .collect();
    object([("errors", Ordered::Object(fields))])
}

/// `PlayerAuth.toJSON` (`src/entities/player-auth.ts`): players here have no email and no
/// verification; the session is the one the last login made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auth {
    pub session_created_ms: Option<u64>,
}

fn auth_json(auth: Auth) -> Ordered {
    object([
        ("email", Value::Null.into()),
        ("verificationEnabled", false.into()),
        (
            "sessionCreatedAt",
            auth.session_created_ms.map(iso_date).into(),
        ),
    ])
}

/// `PlayerPresence.toJSON` less its `playerAlias`, as `Player.toJSON` nests it.
fn presence_json(presence: Presence) -> Ordered {
    object([
        ("online", presence.online.into()),
        ("customStatus", "".into()),
        ("updatedAt", iso_date(presence.updated_ms).into()),
    ])
}

impl Alias {
    /// `PlayerAlias.toJSON` (`src/entities/player-alias.ts`): the player inside (less its
    /// aliases, `Player.toJSON`'s order: id, props, devBuild, createdAt, lastSeenAt, groups,
    /// auth when loaded, presence). Players here have no props or groups, and the display name
    /// falls back to the identifier, as upstream's does without a display-name prop. `auth` is
    /// given where upstream loads `player.auth`: identify (socket and HTTP) and login of a
    /// `talo`-service alias.
    pub fn entity(&self, presence: Option<Presence>, auth: Option<Auth>) -> Ordered {
        let created = iso_date(self.created_ms);
        let mut player: Vec<(String, Ordered)> = [
            ("id", Ordered::from(format!("player-{}", self.id))),
            ("props", Value::Array(Vec::new()).into()),
            ("devBuild", false.into()),
            ("createdAt", created.clone().into()),
            ("lastSeenAt", created.clone().into()),
            ("groups", Value::Array(Vec::new()).into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        if let Some(auth) = auth {
            player.push(("auth".to_owned(), auth_json(auth)));
        }
        player.push((
            "presence".to_owned(),
            presence.map_or(Ordered::Plain(Value::Null), presence_json),
        ));
        object([
            ("id", self.id.into()),
            ("service", self.service.clone().into()),
            ("identifier", self.identifier.clone().into()),
            ("displayName", self.identifier.clone().into()),
            ("player", Ordered::Object(player)),
            ("lastSeenAt", created.clone().into()),
            ("createdAt", created.clone().into()),
            ("updatedAt", created.into()),
        ])
    }
}

/// `PlayerPresence.toJSON`: playerAlias, online, customStatus, updatedAt.
pub fn presence_entity(alias: Ordered, presence: Presence) -> Ordered {
    object([
        ("playerAlias", alias),
        ("online", presence.online.into()),
        ("customStatus", "".into()),
        ("updatedAt", iso_date(presence.updated_ms).into()),
    ])
}

/// `GameChannel.toJSON` (`src/entities/game-channel.ts`). Channels here come from the config:
/// no owner, no props, public and permanent.
pub fn channel_entity(id: u64, name: &str, total_messages: u64, created_ms: u64) -> Ordered {
    let created = iso_date(created_ms);
    object([
        ("id", id.into()),
        ("name", name.into()),
        ("owner", Value::Null.into()),
        ("totalMessages", total_messages.into()),
        ("props", Value::Array(Vec::new()).into()),
        ("autoCleanup", false.into()),
        ("private", false.into()),
        ("temporaryMembership", false.into()),
        ("createdAt", created.clone().into()),
        ("updatedAt", created.into()),
    ])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn alias(service: &str) -> Alias {
        Alias {
            id: 7,
            app: "demo".into(),
            service: service.into(),
            identifier: "ann".into(),
            created_ms: 0,
        }
    }

    #[test]
    fn aliases_keep_upstream_key_order() {
        let presence = Presence {
            online: true,
            updated_ms: 1_000,
        };
        let text = serde_json::to_string(&alias("steam").entity(Some(presence), None)).unwrap();
        assert_eq!(
            text,
            r#"{"id":7,"service":"steam","identifier":"ann","displayName":"ann","player":{"id":"player-7","props":[],"devBuild":false,"createdAt":"1970-01-01T00:00:00.000Z","lastSeenAt":"1970-01-01T00:00:00.000Z","groups":[],"presence":{"online":true,"customStatus":"","updatedAt":"1970-01-01T00:00:01.000Z"}},"lastSeenAt":"1970-01-01T00:00:00.000Z","createdAt":"1970-01-01T00:00:00.000Z","updatedAt":"1970-01-01T00:00:00.000Z"}"#
        );
        let auth = Auth {
            session_created_ms: Some(2_000),
        };
        let text = serde_json::to_string(&alias("talo").entity(None, Some(auth))).unwrap();
        assert!(
            text.contains(r#""groups":[],"auth":{"email":null,"verificationEnabled":false,"sessionCreatedAt":"1970-01-01T00:00:02.000Z"},"presence":null}"#),
            "{text}"
        );
        let presence =
            serde_json::to_string(&presence_entity(Value::Null.into(), presence)).unwrap();
        assert_eq!(
            presence,
            r#"{"playerAlias":null,"online":true,"customStatus":"","updatedAt":"1970-01-01T00:00:01.000Z"}"#
        );
    }

    #[test]
    fn channels_keep_upstream_key_order() {
        let text = serde_json::to_string(&channel_entity(3, "general", 9, 0)).unwrap();
        assert!(text.starts_with(r#"{"id":3,"name":"general","owner":null,"totalMessages":9,"props":[],"autoCleanup":false,"private":false,"temporaryMembership":false,"createdAt":"#), "{text}");
    }
}

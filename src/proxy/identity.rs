//! Who a proxied pub/sub or Talo connection is, from the upstream's frames: the pub/sub
//! `welcome` names the peer and its app, Talo's `v1.players.identify.success` the player.

use serde_json::Value;

use crate::catalog::Dialect;

/// The app (when the frame says) and identity an upstream frame gives its connection.
pub fn from_upstream(dialect: Dialect, frame: &str) -> Option<(Option<String>, String)> {
    let marker = match dialect {
        Dialect::Pubsub => "welcome",
        Dialect::Talo => "v1.players.identify.success",
        _ => return None,
    };
    if !frame.contains(marker) {
        return None;
    }
    let value: Value = serde_json::from_str(frame).ok()?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    match dialect {
        Dialect::Pubsub if text(&value, "type").as_deref() == Some("welcome") => {
            Some((text(&value, "app"), text(&value, "peerId")?))
        }
        Dialect::Talo if text(&value, "res").as_deref() == Some(marker) => {
            let alias = value.get("data")?;
            let identifier = text(alias, "identifier")?;
            let shown = match text(alias, "service") {
                Some(service) => format!("{identifier} ({service})"),
                None => identifier,
            };
            Some((None, shown))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcomes_and_identifications_name_the_connection() {
        assert_eq!(
            from_upstream(
                Dialect::Pubsub,
                r#"{"type":"welcome","peerId":"peer-7f3a","app":"demo","limits":{}}"#
            ),
            Some((Some("demo".into()), "peer-7f3a".into()))
        );
        assert_eq!(
            from_upstream(
                Dialect::Talo,
                r#"{"res":"v1.players.identify.success","data":{"id":1,"service":"username","identifier":"alice"}}"#
            ),
            Some((None, "alice (username)".into()))
        );
        assert_eq!(
            from_upstream(Dialect::Pubsub, r#"{"type":"message","data":"welcome"}"#),
            None
        );
        assert_eq!(from_upstream(Dialect::Flow, "{}"), None);
    }
}

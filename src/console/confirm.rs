//! The questions asked before an admin action: each names exactly what will happen to what,
//! from the model as it is now, and carries the one command that `y` sends.

use super::model::Model;
use crate::catalog::Dialect;
use crate::protocol::admin::{AppStatus, Command, FaultTarget};
use crate::protocol::path_fault::PathFault;

#[derive(Debug, Clone, PartialEq)]
pub struct Confirmation {
    pub question: String,
    pub command: Command,
}

/// # Errors
/// There is no such peer.
pub fn kick(model: &Model, peer: &str, reason: Option<String>) -> Result<Confirmation, String> {
    let info = model.peer(peer).ok_or_else(|| format!("no peer {peer}"))?;
    let told = match &reason {
        Some(reason) => format!(", telling it \"{reason}\""),
        None => String::new(),
    };
    Ok(Confirmation {
        question: format!(
            "Close peer {} ({}, app {}, {}) with 4020 admin_disconnect{told}?",
            info.id,
            info.dialect,
            info.app.as_deref().unwrap_or("none"),
            info.identity.as_deref().unwrap_or("anonymous")
        ),
        command: Command::Kick {
            peer: peer.to_owned(),
            reason,
        },
    })
}

/// # Errors
/// There is no such app.
pub fn app_status(model: &Model, app: &str, status: AppStatus) -> Result<Confirmation, String> {
    if !model.apps.iter().any(|a| a.id == app) {
        return Err(format!("no app {app}"));
    }
    let live = model.peers_by_app.get(app).copied().unwrap_or(0);
    let question = match status {
        AppStatus::Active => format!("Set app {app} active, accepting its connections again?"),
        other => format!(
            "Set app {app} {}? Its {live} live peers will be closed and new connections refused.",
            other.id()
        ),
    };
    Ok(Confirmation {
        question,
        command: Command::SetAppStatus {
            app: app.to_owned(),
            status,
        },
    })
}

/// # Errors
/// There is no such room.
pub fn close_room(model: &Model, room: &str) -> Result<Confirmation, String> {
    let info = model
        .rooms
        .get(room)
        .ok_or_else(|| format!("no room {room}"))?;
    Ok(Confirmation {
        question: format!(
            "Close room {room} ({}, {} players, {} spectators)? Every member is removed.",
            info.game,
            info.players.len(),
            info.spectators.len()
        ),
        command: Command::CloseRoom {
            room: room.to_owned(),
        },
    })
}

/// Transfer authority to `player`, or revoke it when `None`.
///
/// # Errors
/// There is no such room, or no such player in it.
pub fn authority(model: &Model, room: &str, player: Option<&str>) -> Result<Confirmation, String> {
    let info = model
        .rooms
        .get(room)
        .ok_or_else(|| format!("no room {room}"))?;
    let name_of = |id: &str| {
        info.players
            .iter()
            .find(|p| p.player_id == id)
            .map(|p| p.name.clone())
    };
    let holder = info
        .authority
        .as_deref()
        .and_then(name_of)
        .unwrap_or_else(|| "nobody".to_owned());
    Ok(match player {
        Some(player) => {
            let name = name_of(player).ok_or_else(|| format!("no player {player} in room {room}"))?;
            Confirmation {
                question: format!(
                    "Move authority in room {room} from {holder} to {name} ({player})? Every member is told."
                ),
                command: Command::TransferAuthority {
                    room: room.to_owned(),
                    player_id: player.to_owned(),
                },
            }
        }
        None => Confirmation {
            question: format!(
                "Revoke authority in room {room} (held by {holder})? The room has no authority afterwards."
            ),
            command: Command::RevokeAuthority {
                room: room.to_owned(),
            },
        },
    })
}

/// # Errors
/// There is no such peer.
pub fn tap(model: &Model, peer: &str, on: bool) -> Result<Confirmation, String> {
    let info = model.peer(peer).ok_or_else(|| format!("no peer {peer}"))?;
    let question = if on {
        format!(
            "Tap peer {peer} ({}, {})? Every frame it sends and receives is shown to every console.",
            info.dialect,
            info.identity.as_deref().unwrap_or("anonymous")
        )
    } else {
        format!("Stop tapping peer {peer}? Its frames no longer reach the consoles.")
    };
    Ok(Confirmation {
        question,
        command: Command::Tap {
            peer: peer.to_owned(),
            on,
        },
    })
}

/// `:fault <dialect|peer> <code> [count]`; the code may be a path fault (`drop@client`,
/// `delay=500@upstream`) for peers of `relaydeck proxy`.
///
/// # Errors
/// The count is not a positive number, or the peer does not exist.
pub fn fault(
    model: &Model,
    target: &str,
    code: &str,
    count: Option<&str>,
) -> Result<Confirmation, String> {
    let count: u32 = match count {
        None => 1,
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("the count {text:?} is not a positive number"))?,
    };
    let (target, named, dialect) = match target.parse::<Dialect>() {
        Ok(dialect) => (
            FaultTarget::Dialect { dialect },
            format!("every {dialect} peer"),
            dialect,
        ),
        Err(_) => {
            let Some(peer) = model.peer(target) else {
                return Err(format!("{target} is neither a dialect nor a live peer"));
            };
            (
                FaultTarget::Peer {
                    peer: target.to_owned(),
                },
                format!("peer {target}"),
                peer.dialect,
            )
        }
    };
    // A path fault for a peer of `relaydeck proxy`; a server answering its peers itself
    // refuses it when asked.
    if PathFault::meant(code) {
        let path_fault = code.parse::<PathFault>()?;
        let action = path_fault.describe(count);
        return Ok(Confirmation {
            question: format!("On {named}: {action}? Real clients see it."),
            command: Command::ArmFault {
                target,
                code: path_fault.to_string(),
                count,
            },
        });
    }
    // Checked before asking, as the server checks it: a question about a code that cannot be
    // armed only wastes the answer.
    let Some(entry) = crate::catalog::get(dialect, code) else {
        return Err(format!(
            "{code:?} is not a {dialect} code in the catalog (Catalog view, 8, lists them)"
        ));
    };
    let code = entry.code;
    let requests = if count == 1 {
        "request".to_owned()
    } else {
        format!("{count} requests")
    };
    Ok(Confirmation {
        question: format!(
            "Make the next {requests} of {named} fail with {code}? Real clients see the error."
        ),
        command: Command::ArmFault {
            target,
            code: code.to_owned(),
            count,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_path_fault_is_asked_about_in_words_and_armed_in_its_one_spelling() {
        let model = Model::default();
        let asked = fault(&model, "signal-fish", "delay=250@upstream", Some("3")).unwrap();
        assert_eq!(
            asked.question,
            "On every signal-fish peer: delay the next 3 frames toward the upstream by 250 ms? Real clients see it."
        );
        assert_eq!(
            asked.command,
            Command::ArmFault {
                target: FaultTarget::Dialect {
                    dialect: Dialect::SignalFish
                },
                code: "delay=250@upstream".into(),
                count: 3,
            }
        );
        let dropped = fault(&model, "pubsub", "drop", None).unwrap();
        assert!(matches!(dropped.command, Command::ArmFault { code, .. } if code == "drop@client"));
        assert!(fault(&model, "pubsub", "delay=0", None)
            .unwrap_err()
            .contains("milliseconds"));
    }
}

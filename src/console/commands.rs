//! The one table of console commands. The command line parses against it, Tab completes from
//! it, the help overlay lists it, and the keymap asks it which keys act on the server (and
//! so need a confirmation and are refused by `--readonly`).

use super::app::View;
use super::keymap::{Action, Keymap};
use super::model::{natural_cmp, Model};
use crate::catalog::Dialect;

/// What an argument names, which is what Tab completes it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    Peer,
    App,
    Room,
    /// A player of the room named by the argument before it.
    Player,
    /// A dialect, or a peer.
    FaultTarget,
    /// A code, as the catalog or a template names it.
    Code,
    Count,
    /// Free text to the end of the line.
    Reason,
    /// A session name.
    Name,
    /// `probe <dialect> [query]`, `peer <id>`, `url ws://…` (to the end of the line).
    Target,
    /// `10m`, `2h`, `1d`.
    Duration,
    /// A ban in force, by id.
    Ban,
    /// A code with a shipped session, or a session file.
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: Arg,
    pub required: bool,
}

/// What a command does; [`super::update`] carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id {
    Show(View),
    Compose,
    Target,
    Record,
    Fault,
    Kick,
    Suspend,
    Activate,
    Revoke,
    Expire,
    CloseRoom,
    Transfer,
    RevokeAuthority,
    Tap,
    Untap,
    Find,
    Ban,
    Unban,
    Export,
    Repro,
    Paste,
    Help,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub id: Id,
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub args: &'static [ArgSpec],
    pub help: &'static str,
    /// Changes the server: asks for confirmation, refused by `--readonly`.
    pub admin: bool,
    /// The key action that does the same to the selected row.
    pub action: Option<Action>,
}

const fn arg(name: &'static str, kind: Arg) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        required: true,
    }
}

const fn optional(name: &'static str, kind: Arg) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        required: false,
    }
}

const fn show(view: View, name: &'static str, help: &'static str, action: Action) -> Spec {
    Spec {
        id: Id::Show(view),
        name,
        aliases: &[],
        args: &[],
        help,
        admin: false,
        action: Some(action),
    }
}

pub const COMMANDS: &[Spec] = &[
    show(
        View::Overview,
        "overview",
        "counts, rates and top error codes",
        Action::ViewOverview,
    ),
    show(View::Peers, "peers", "live peers", Action::ViewPeers),
    show(
        View::Rooms,
        "rooms",
        "rooms and their authority holders",
        Action::ViewRooms,
    ),
    show(
        View::Channels,
        "channels",
        "channels and their members",
        Action::ViewChannels,
    ),
    Spec {
        aliases: &["subscriptions"],
        ..show(
            View::Subscriptions,
            "subs",
            "subscriptions of every dialect (Flow, pub/sub)",
            Action::ViewSubscriptions,
        )
    },
    show(
        View::Apps,
        "apps",
        "apps, their status and keys",
        Action::ViewApps,
    ),
    show(
        View::Log,
        "log",
        "errors (decoded), closes, taps",
        Action::ViewLog,
    ),
    Spec {
        aliases: &["codes"],
        ..show(
            View::Catalog,
            "catalog",
            "every documented code",
            Action::ViewCatalog,
        )
    },
    show(
        View::History,
        "history",
        "closed peers and rooms, decoded",
        Action::ViewHistory,
    ),
    show(
        View::Bans,
        "bans",
        "bans in force; a key lifts one",
        Action::ViewBans,
    ),
    show(
        View::Nodes,
        "nodes",
        "the cluster's nodes: liveness, peers, rates",
        Action::ViewNodes,
    ),
    Spec {
        id: Id::Find,
        name: "find",
        aliases: &[],
        args: &[arg("text…", Arg::Reason)],
        help: "search live peers, rooms and history",
        admin: false,
        action: None,
    },
    Spec {
        id: Id::Paste,
        name: "paste",
        aliases: &[],
        args: &[],
        help: "read a player's log into a timeline",
        admin: false,
        action: None,
    },
    Spec {
        id: Id::Export,
        name: "export",
        aliases: &[],
        args: &[arg("name", Arg::Name)],
        help: "save the selected peer as a session",
        admin: false,
        action: None,
    },
    Spec {
        id: Id::Compose,
        name: "compose",
        aliases: &[],
        args: &[optional("code", Arg::Code)],
        help: "composer; a code opens its template",
        admin: false,
        action: Some(Action::ViewComposer),
    },
    Spec {
        id: Id::Target,
        name: "target",
        aliases: &[],
        args: &[arg("probe|peer|url …", Arg::Target)],
        help: "where the composer sends",
        admin: false,
        action: None,
    },
    Spec {
        id: Id::Record,
        name: "record",
        aliases: &[],
        args: &[arg("name", Arg::Name)],
        help: "save the probe exchange as a session",
        admin: false,
        action: None,
    },
    Spec {
        id: Id::Kick,
        name: "kick",
        aliases: &[],
        args: &[arg("peer", Arg::Peer), optional("reason…", Arg::Reason)],
        help: "close a peer with 4020, saying why",
        admin: true,
        action: Some(Action::Kick),
    },
    Spec {
        id: Id::Tap,
        name: "tap",
        aliases: &[],
        args: &[arg("peer", Arg::Peer)],
        help: "show a peer's frames in the log",
        admin: true,
        action: Some(Action::Tap),
    },
    Spec {
        id: Id::Untap,
        name: "untap",
        aliases: &[],
        args: &[arg("peer", Arg::Peer)],
        help: "stop showing a peer's frames",
        admin: true,
        action: None,
    },
    Spec {
        id: Id::CloseRoom,
        name: "close-room",
        aliases: &[],
        args: &[arg("room", Arg::Room)],
        help: "close a room, removing every member",
        admin: true,
        action: Some(Action::CloseRoom),
    },
    Spec {
        id: Id::Transfer,
        name: "transfer",
        aliases: &[],
        args: &[arg("room", Arg::Room), arg("player", Arg::Player)],
        help: "give a room's authority to a player",
        admin: true,
        action: None,
    },
    Spec {
        id: Id::RevokeAuthority,
        name: "revoke-authority",
        aliases: &[],
        args: &[arg("room", Arg::Room)],
        help: "leave a room without authority",
        admin: true,
        action: None,
    },
    Spec {
        id: Id::Ban,
        name: "ban",
        aliases: &[],
        args: &[arg("duration", Arg::Duration), arg("reason…", Arg::Reason)],
        help: "ban the selected peer's player or IP",
        admin: true,
        action: None,
    },
    Spec {
        id: Id::Unban,
        name: "unban",
        aliases: &[],
        args: &[arg("id", Arg::Ban)],
        help: "lift a ban",
        admin: true,
        action: Some(Action::LiftBan),
    },
    Spec {
        id: Id::Repro,
        name: "repro",
        aliases: &[],
        args: &[arg("code|file", Arg::Session)],
        help: "run a code's session or a file here",
        admin: true,
        action: None,
    },
    Spec {
        id: Id::Suspend,
        name: "suspend",
        aliases: &[],
        args: &[arg("app", Arg::App)],
        help: "suspend an app, closing its peers",
        admin: true,
        action: Some(Action::SuspendApp),
    },
    Spec {
        id: Id::Activate,
        name: "activate",
        aliases: &[],
        args: &[arg("app", Arg::App)],
        help: "make an app active again",
        admin: true,
        action: Some(Action::ActivateApp),
    },
    Spec {
        id: Id::Revoke,
        name: "revoke",
        aliases: &[],
        args: &[arg("app", Arg::App)],
        help: "revoke an app",
        admin: true,
        action: None,
    },
    Spec {
        id: Id::Expire,
        name: "expire",
        aliases: &[],
        args: &[arg("app", Arg::App)],
        help: "mark an app expired",
        admin: true,
        action: None,
    },
    Spec {
        id: Id::Fault,
        name: "fault",
        aliases: &[],
        args: &[
            arg("dialect|peer", Arg::FaultTarget),
            arg("code", Arg::Code),
            optional("count", Arg::Count),
        ],
        help: "fail its next requests with a code",
        admin: true,
        action: None,
    },
    Spec {
        id: Id::Help,
        name: "help",
        aliases: &[],
        args: &[],
        help: "keys and commands",
        admin: false,
        action: Some(Action::Help),
    },
    Spec {
        id: Id::Quit,
        name: "quit",
        aliases: &["q"],
        args: &[],
        help: "leave the console",
        admin: false,
        action: Some(Action::Quit),
    },
];

/// The command named `name` (or one of its aliases).
pub fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

/// The command a key action stands for.
pub fn for_action(action: Action) -> Option<&'static Spec> {
    COMMANDS.iter().find(|c| c.action == Some(action))
}

/// `:kick <peer> [reason…]`
pub fn usage(spec: &Spec) -> String {
    let mut text = format!(":{}", spec.name);
    for arg in spec.args {
        if arg.required {
            text.push_str(&format!(" <{}>", arg.name));
        } else {
            text.push_str(&format!(" [{}]", arg.name));
        }
    }
    text
}

/// A parsed command line: the command and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub spec: &'static Spec,
    pub args: Vec<&'a str>,
}

/// Parse a command line against the table.
///
/// # Errors
/// An unknown command, or one missing a required argument, with what to type instead.
pub fn parse(line: &str) -> Result<Option<Parsed<'_>>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else {
        return Ok(None);
    };
    let spec = find(name).ok_or_else(|| format!("unknown command :{name}; press ? for help"))?;
    let required = spec.args.iter().filter(|a| a.required).count();
    if args.len() < required {
        return Err(format!("{} (Tab completes it)", usage(spec)));
    }
    Ok(Some(Parsed {
        spec,
        args: args.to_vec(),
    }))
}

/// Completion candidates for the word being typed. `readonly` leaves out what would be
/// refused anyway.
pub fn completions(line: &str, model: &Model, readonly: bool) -> Vec<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let fresh_word = line.ends_with(' ') || words.is_empty();
    if words.len() <= 1 && !fresh_word {
        let prefix = words.first().copied().unwrap_or("");
        return COMMANDS
            .iter()
            .filter(|c| !(readonly && c.admin))
            .map(|c| c.name)
            .filter(|name| name.starts_with(prefix))
            .map(str::to_owned)
            .collect();
    }
    if words.is_empty() {
        return COMMANDS
            .iter()
            .filter(|c| !(readonly && c.admin))
            .map(|c| c.name.to_owned())
            .collect();
    }
    let Some(spec) = words.first().and_then(|name| find(name)) else {
        return Vec::new();
    };
    let (position, prefix) = if fresh_word {
        (words.len() - 1, "")
    } else {
        (words.len() - 2, words.last().copied().unwrap_or(""))
    };
    let Some(arg) = spec.args.get(position) else {
        return Vec::new();
    };
    let mut pool: Vec<String> = match arg.kind {
        Arg::Peer => model.peers.keys().cloned().collect(),
        Arg::App => model.apps.iter().map(|a| a.id.clone()).collect(),
        Arg::Room => model.rooms.keys().cloned().collect(),
        Arg::Player => words
            .get(position)
            .and_then(|room| model.rooms.get(*room))
            .map(|room| room.players.iter().map(|p| p.player_id.clone()).collect())
            .unwrap_or_default(),
        Arg::FaultTarget => Dialect::ALL
            .iter()
            .map(|d| d.id().to_owned())
            .chain(model.peers.keys().cloned())
            .collect(),
        Arg::Target => ["probe", "peer", "url"].map(str::to_owned).to_vec(),
        Arg::Duration => ["10m", "1h", "1d"].map(str::to_owned).to_vec(),
        Arg::Ban => model.bans.keys().map(u64::to_string).collect(),
        Arg::Session => super::composer::session_codes(),
        Arg::Code | Arg::Count | Arg::Reason | Arg::Name => Vec::new(),
    };
    pool.retain(|c| c.starts_with(prefix));
    pool.sort_by(|a, b| natural_cmp(a, b));
    pool
}

/// One line of the help overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelpLine {
    Heading(&'static str),
    Item { keys: String, text: String },
}

/// The composer's own keys, which its editor takes before the keymap.
const COMPOSER_KEYS: [(&str, &str); 5] = [
    ("ctrl-s", "send the frames to the target"),
    ("ctrl-p", "pretty-print the JSON"),
    ("ctrl-n ctrl-b", "next, previous template"),
    ("ctrl-o", "command line (:target :record :fault)"),
    ("esc", "leave the composer"),
];

/// Everything the help overlay lists: the keys as bound now, the composer's keys, and this
/// table's commands; admin ones are left out of a read-only console.
pub fn help_lines(keymap: &Keymap, readonly: bool) -> Vec<HelpLine> {
    let mut lines = vec![HelpLine::Heading(
        "Keys (keymap.json in the config folder overrides them)",
    )];
    let bound = keymap.by_action();
    // Keys of one kind share a line (every view, every move), so that the whole list fits a
    // screen or two instead of three.
    let groups: [(&[Action], &str); 2] = [
        (
            &[
                Action::ViewOverview,
                Action::ViewPeers,
                Action::ViewRooms,
                Action::ViewChannels,
                Action::ViewSubscriptions,
                Action::ViewApps,
                Action::ViewLog,
                Action::ViewCatalog,
                Action::ViewComposer,
                Action::ViewHistory,
                Action::ViewBans,
                Action::ViewNodes,
            ],
            "views, in that order: overview, peers, rooms, channels, subs, apps, log, \
             catalog, compose, history, bans, nodes",
        ),
        (
            &[
                Action::Down,
                Action::Up,
                Action::PageDown,
                Action::PageUp,
                Action::Top,
                Action::Bottom,
            ],
            "move: next, previous, page down, page up, first, last (in a log: newer, \
             older, …, live)",
        ),
    ];
    let grouped: Vec<Action> = groups.iter().flat_map(|(g, _)| g.iter().copied()).collect();
    for (action, keys) in &bound {
        if (readonly && action.is_admin_action()) || grouped.contains(action) {
            continue;
        }
        lines.push(HelpLine::Item {
            keys: keys.join(" "),
            text: action.describe().to_owned(),
        });
    }
    lines.push(HelpLine::Heading("Views and moving"));
    for (actions, text) in groups {
        // The first key of each action, in the group's order; an unbound one is left out.
        let keys: Vec<&str> = actions
            .iter()
            .filter_map(|a| bound.get(a).and_then(|k| k.first()).map(String::as_str))
            .collect();
        if !keys.is_empty() {
            let keys = keys.join(" ").replace("1 2 3 4 5 6 7 8 9", "1–9");
            lines.push(HelpLine::Item {
                keys,
                text: text.to_owned(),
            });
        }
    }
    lines.push(HelpLine::Heading("In the composer"));
    for (keys, text) in COMPOSER_KEYS {
        lines.push(HelpLine::Item {
            keys: keys.to_owned(),
            text: text.to_owned(),
        });
    }
    lines.push(HelpLine::Heading("Commands (: then Tab completes)"));
    // The commands that only show a view share one line, as their keys do.
    let views: Vec<&str> = COMMANDS
        .iter()
        .filter(|c| matches!(c.id, Id::Show(_)))
        .map(|c| c.name)
        .collect();
    lines.push(HelpLine::Item {
        keys: ":VIEW".to_owned(),
        text: format!("show a view: {}", views.join(", ")),
    });
    for spec in COMMANDS
        .iter()
        .filter(|c| !matches!(c.id, Id::Show(_)))
        .filter(|c| !(readonly && c.admin))
    {
        lines.push(HelpLine::Item {
            keys: usage(spec),
            text: spec.help.to_owned(),
        });
    }
    lines
}

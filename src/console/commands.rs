//! The one table of console commands (with the views' own, from the view table). The command
//! line parses against it into an [`Action`], as a key press becomes one through the keymap;
//! Tab completes from it and the help overlay lists it.

use super::action::Action;
use super::keymap::Keymap;
use super::model::{natural_cmp, Model};
use super::views::{View, VIEWS};
use crate::catalog::Dialect;
use crate::protocol::admin::AppStatus;

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
    /// `probe <dialect> [query]`, `peer <id>`, `client <id>`, `url ws://…` (to the end of the line).
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

/// What a command line makes of its words.
#[derive(Clone, Copy)]
pub enum Build {
    /// `:peers` and the other views' names, from the view table.
    Show(View),
    /// The words after the command's name; the required ones are there.
    With(fn(&[&str]) -> Action),
}

#[derive(Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub args: &'static [ArgSpec],
    pub help: &'static str,
    pub build: Build,
}

impl Spec {
    pub fn action(&self, args: &[&str]) -> Action {
        match self.build {
            Build::Show(view) => Action::Show(view),
            Build::With(build) => build(args),
        }
    }

    /// Changes the server: asks for confirmation, refused by `--readonly`. The action it
    /// makes says so, whatever its words.
    pub fn admin(&self) -> bool {
        self.action(&[]).is_admin()
    }
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

const fn command(
    name: &'static str,
    args: &'static [ArgSpec],
    help: &'static str,
    build: fn(&[&str]) -> Action,
) -> Spec {
    Spec {
        name,
        aliases: &[],
        args,
        help,
        build: Build::With(build),
    }
}

fn word(args: &[&str], n: usize) -> String {
    args.get(n).copied().unwrap_or("").to_owned()
}

/// The words from the `n`th to the end, as one text.
fn rest(args: &[&str], n: usize) -> String {
    args.get(n..)
        .map(|words| words.join(" "))
        .unwrap_or_default()
}

fn app_status(args: &[&str], status: AppStatus) -> Action {
    Action::SetAppStatus {
        app: Some(word(args, 0)),
        status,
    }
}

/// The commands besides those that show a view (which the view table lists).
pub const COMMANDS: &[Spec] = &[
    command(
        "find",
        &[arg("text…", Arg::Reason)],
        "search live peers, rooms and history",
        |args| Action::Find {
            text: rest(args, 0),
        },
    ),
    command("paste", &[], "read a player's log into a timeline", |_| {
        Action::Paste
    }),
    command(
        "export",
        &[arg("name", Arg::Name)],
        "save the selected peer as a session",
        |args| Action::Export {
            name: word(args, 0),
        },
    ),
    command(
        "compose",
        &[optional("code", Arg::Code)],
        "composer; a code opens its template",
        |args| Action::Compose {
            code: args.first().map(|code| (*code).to_owned()),
        },
    ),
    command(
        "target",
        &[arg("probe|peer|url …", Arg::Target)],
        "where the composer sends",
        |args| Action::Target {
            words: args.iter().map(|w| (*w).to_owned()).collect(),
        },
    ),
    command(
        "record",
        &[arg("name", Arg::Name)],
        "save the probe exchange as a session",
        |args| Action::Record {
            name: word(args, 0),
        },
    ),
    command(
        "kick",
        &[arg("peer", Arg::Peer), optional("reason…", Arg::Reason)],
        "close a peer with 4020, saying why",
        |args| Action::Kick {
            peer: Some(word(args, 0)),
            reason: Some(rest(args, 1)).filter(|r| !r.is_empty()),
        },
    ),
    command(
        "tap",
        &[arg("peer", Arg::Peer)],
        "show a peer's frames in the log",
        |args| Action::Tap {
            peer: Some(word(args, 0)),
            on: Some(true),
        },
    ),
    command(
        "untap",
        &[arg("peer", Arg::Peer)],
        "stop showing a peer's frames",
        |args| Action::Tap {
            peer: Some(word(args, 0)),
            on: Some(false),
        },
    ),
    command(
        "close-room",
        &[arg("room", Arg::Room)],
        "close a room, removing every member",
        |args| Action::CloseRoom {
            room: Some(word(args, 0)),
        },
    ),
    command(
        "transfer",
        &[arg("room", Arg::Room), arg("player", Arg::Player)],
        "give a room's authority to a player",
        |args| Action::TransferAuthority {
            room: word(args, 0),
            player: word(args, 1),
        },
    ),
    command(
        "revoke-authority",
        &[arg("room", Arg::Room)],
        "leave a room without authority",
        |args| Action::RevokeAuthority {
            room: word(args, 0),
        },
    ),
    command(
        "ban",
        &[arg("duration", Arg::Duration), arg("reason…", Arg::Reason)],
        "ban the selected peer's player or IP",
        |args| Action::Ban {
            duration: word(args, 0),
            reason: rest(args, 1),
        },
    ),
    command("unban", &[arg("id", Arg::Ban)], "lift a ban", |args| {
        Action::Unban {
            ban: args.first().map(|id| (*id).to_owned()),
        }
    }),
    command(
        "repro",
        &[arg("code|file", Arg::Session)],
        "run a code's session or a file here",
        |args| Action::Repro {
            session: word(args, 0),
        },
    ),
    command(
        "suspend",
        &[arg("app", Arg::App)],
        "suspend an app, closing its peers",
        |args| app_status(args, AppStatus::Suspended),
    ),
    command(
        "activate",
        &[arg("app", Arg::App)],
        "make an app active again",
        |args| app_status(args, AppStatus::Active),
    ),
    command("revoke", &[arg("app", Arg::App)], "revoke an app", |args| {
        app_status(args, AppStatus::Revoked)
    }),
    command(
        "expire",
        &[arg("app", Arg::App)],
        "mark an app expired",
        |args| app_status(args, AppStatus::Expired),
    ),
    command(
        "fault",
        &[
            arg("dialect|peer", Arg::FaultTarget),
            arg("code", Arg::Code),
            optional("count", Arg::Count),
        ],
        "fail its next requests with a code",
        |args| Action::Fault {
            target: word(args, 0),
            code: word(args, 1),
            count: args.get(2).map(|n| (*n).to_owned()),
        },
    ),
    command("help", &[], "keys and commands", |_| Action::Help),
    Spec {
        aliases: &["q"],
        ..command("quit", &[], "leave the console", |_| Action::Quit)
    },
];

/// Every command: first those that show a view, in the view table's order, then the rest.
pub fn all() -> impl Iterator<Item = Spec> {
    VIEWS
        .iter()
        .filter_map(|view| {
            view.command.map(|(aliases, help)| Spec {
                name: view.name,
                aliases,
                args: &[],
                help,
                build: Build::Show(view.view),
            })
        })
        .chain(COMMANDS.iter().copied())
}

/// The command named `name` (or one of its aliases).
pub fn find(name: &str) -> Option<Spec> {
    all().find(|c| c.name == name || c.aliases.contains(&name))
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

/// Parse a command line against the table into the action it asks for.
///
/// # Errors
/// An unknown command, or one missing a required argument, with what to type instead.
pub fn parse(line: &str) -> Result<Option<Action>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else {
        return Ok(None);
    };
    let spec = find(name).ok_or_else(|| format!("unknown command :{name}; press ? for help"))?;
    let required = spec.args.iter().filter(|a| a.required).count();
    if args.len() < required {
        return Err(format!("{} (Tab completes it)", usage(&spec)));
    }
    Ok(Some(spec.action(args)))
}

/// Completion candidates for the word being typed. `readonly` leaves out what would be
/// refused anyway.
pub fn completions(line: &str, model: &Model, readonly: bool) -> Vec<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let fresh_word = line.ends_with(' ') || words.is_empty();
    if words.len() <= 1 && !fresh_word {
        let prefix = words.first().copied().unwrap_or("");
        return all()
            .filter(|c| !(readonly && c.admin()))
            .map(|c| c.name)
            .filter(|name| name.starts_with(prefix))
            .map(str::to_owned)
            .collect();
    }
    if words.is_empty() {
        return all()
            .filter(|c| !(readonly && c.admin()))
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
    let views: Vec<Action> = VIEWS
        .iter()
        .filter(|spec| spec.key.is_some())
        .map(|spec| Action::Show(spec.view))
        .collect();
    let views_text = format!(
        "views, in that order: {}",
        VIEWS
            .iter()
            .filter(|spec| spec.key.is_some())
            .map(|spec| spec.name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let groups: [(&[Action], &str); 2] = [
        (&views, &views_text),
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
    let grouped: Vec<&Action> = groups.iter().flat_map(|(g, _)| g.iter()).collect();
    // In the order the names are listed in, then what a file spelled out.
    let mut listed: Vec<(&Action, &Vec<String>)> = bound.iter().collect();
    listed.sort_by_key(|(action, _)| action.rank());
    for (action, keys) in listed {
        if (readonly && action.is_admin()) || grouped.contains(&action) {
            continue;
        }
        lines.push(HelpLine::Item {
            keys: keys.join(" "),
            text: action.describe(),
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
    let views: Vec<&str> = all()
        .filter(|c| matches!(c.build, Build::Show(_)))
        .map(|c| c.name)
        .collect();
    lines.push(HelpLine::Item {
        keys: ":VIEW".to_owned(),
        text: format!("show a view: {}", views.join(", ")),
    });
    for spec in COMMANDS.iter().filter(|c| !(readonly && c.admin())) {
        lines.push(HelpLine::Item {
            keys: usage(spec),
            text: spec.help.to_owned(),
        });
    }
    lines
}

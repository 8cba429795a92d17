//! Files the server and the console read back: the data folder's `state.json` and
//! `audit.jsonl` (`server::persist`), the console's `keymap.json` (`console::keymap`) and
//! theme files (`console::theme`). Each input is written to a file in a temporary folder and
//! read the way the program reads it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::str::FromStr;

use super::*;
use ratatui::style::Color;
use relaydeck::console::keymap::{Action, Keymap};
use relaydeck::console::theme::Theme;
use relaydeck::protocol::admin::{AppStatus, BanInfo, BanTarget};
use relaydeck::server::persist::{
    load_bans, load_statuses, read_audit, AuditPhase, AuditRecord, Persist,
};

fn status() -> BoxedStrategy<AppStatus> {
    proptest::sample::select(vec![
        AppStatus::Active,
        AppStatus::Suspended,
        AppStatus::Revoked,
        AppStatus::Expired,
    ])
    .boxed()
}

fn ban() -> BoxedStrategy<BanInfo> {
    let target = prop_oneof![
        (optional(short_text()), short_text())
            .prop_map(|(app, identity)| BanTarget::Identity { app, identity }),
        "[0-9.:a-f]{1,20}".prop_map(|ip| BanTarget::Address { ip }),
    ];
    (
        any::<u64>(),
        target,
        short_text(),
        short_text(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(id, target, reason, by, created_at_ms, until_ms)| BanInfo {
                id,
                target,
                reason,
                by,
                created_at_ms,
                until_ms,
            },
        )
        .boxed()
}

/// `state.json` as the server writes it: app statuses, the bans in force, the last ban id.
fn state() -> BoxedStrategy<String> {
    (
        btree_map(short_text(), status(), 0..4),
        optional(vec(ban(), 0..3)),
        optional(any::<u64>()),
    )
        .prop_map(|(statuses, bans, last)| {
            let mut file = Map::new();
            file.insert("app_status".into(), serde_json::to_value(statuses).unwrap());
            put(
                &mut file,
                "bans",
                bans.map(|b| serde_json::to_value(b).unwrap()),
            );
            put(&mut file, "last_ban_id", last.map(Value::from));
            serde_json::to_string_pretty(&Value::Object(file)).unwrap()
        })
        .boxed()
}

fn record() -> BoxedStrategy<AuditRecord> {
    (
        prop_oneof![6 => 0u64..1000, 2 => any::<u64>(), 1 => Just(u64::MAX)],
        any::<bool>(),
        short_text(),
        short_text(),
        short_text(),
        short_text(),
    )
        .prop_map(|(id, intent, who, action, target, result)| AuditRecord {
            time: "2026-01-01T00:00:00Z".to_owned(),
            id,
            phase: if intent {
                AuditPhase::Intent
            } else {
                AuditPhase::Outcome
            },
            who,
            action,
            target,
            result,
        })
        .boxed()
}

/// The bytes of a log, shown as text when a failure prints them.
#[derive(Clone)]
struct Log(Vec<u8>);

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// `audit.jsonl`: whole lines, some of them damaged, and maybe a torn last line.
fn audit() -> BoxedStrategy<Log> {
    let line = prop_oneof![
        4 => record().prop_map(|r| serde_json::to_string(&r).unwrap()),
        1 => (record(), vec((any::<u8>(), any::<usize>(), edit_byte()), 1..3)).prop_map(
            |(r, edits)| mutate(serde_json::to_string(&r).unwrap(), edits).replace('\n', " ")
        ),
    ];
    (vec(line, 0..5), optional((record(), any::<usize>())))
        .prop_map(|(lines, torn)| {
            let mut bytes = Vec::new();
            for line in lines {
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
            }
            if let Some((record, at)) = torn {
                let text = serde_json::to_string(&record).unwrap();
                bytes.extend_from_slice(&text.as_bytes()[..at % text.len()]);
            }
            Log(bytes)
        })
        .boxed()
}

/// A data folder read by the server: the state file as written, and the audit log.
struct Folder {
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Folder {
    fn new() -> Folder {
        Folder {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.dir.path().join(name);
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, bytes).expect("a file in the temporary folder");
    }
}

/// What loads from `state.json` is what the file says; what does not load is refused with the
/// file named; what loaded, written back in the same format, loads the same.
fn check_state(folder: &Folder, text: String) -> Result<(), TestCaseError> {
    folder.write("state.json", text.as_bytes());
    let dir = folder.dir.path();
    let (statuses, bans) = (load_statuses(dir), load_bans(dir));
    prop_assert_eq!(statuses.is_ok(), bans.is_ok());
    let (Ok(statuses), Ok((bans, last_ban_id))) = (statuses, bans) else {
        let message = load_statuses(dir).unwrap_err();
        prop_assert!(message.contains("state.json"), "{}", message);
        return Ok(());
    };
    // Fields the server does not know it skips unread, numbers no tree holds included; the
    // model reads a tree, so it judges only files it can read.
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        // serde reads a struct from an object, or from an array of its fields in order.
        let field = |name: &str, index: usize| match &value {
            Value::Array(fields) => fields.get(index).cloned(),
            other => other.get(name).cloned(),
        };
        prop_assert_eq!(
            field("app_status", 0).and_then(|s| s.as_object().map(Map::len)),
            Some(statuses.len())
        );
        prop_assert_eq!(
            field("last_ban_id", 2)
                .and_then(|id| id.as_u64())
                .unwrap_or(0),
            last_ban_id
        );
    }
    let written = json!({"app_status": statuses, "bans": bans, "last_ban_id": last_ban_id});
    folder.write("state.json", written.to_string().as_bytes());
    prop_assert_eq!(load_statuses(dir).ok(), Some(statuses));
    prop_assert_eq!(load_bans(dir).ok(), Some((bans, last_ban_id)));
    Ok(())
}

/// At start the server cuts a torn last line off the audit log and leaves every whole line as
/// it was; the next action gets an id above every id on record, so an id names one action.
fn check_audit(folder: &Folder, Log(bytes): Log) -> Result<(), TestCaseError> {
    folder.write("audit.jsonl", &bytes);
    let dir = folder.dir.path().to_path_buf();
    let whole = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |last| last + 1);
    let records: Vec<Option<AuditRecord>> = bytes[..whole]
        .split_inclusive(|&b| b == b'\n')
        .map(|line| serde_json::from_slice::<AuditRecord>(&line[..line.len() - 1]).ok())
        .collect();
    let highest = records.iter().flatten().map(|r| r.id).max().unwrap_or(0);
    let written = folder.runtime.block_on(async {
        let persist = Persist::start(dir.clone())?;
        persist
            .audit_intent("fuzz", "kick", "peer")
            .await
            .map(|_| ())
    });
    if highest == u64::MAX {
        // No id is left above it: the server refuses the log rather than reuse one.
        let message = written.err().map(|e| e.to_string()).unwrap_or_default();
        prop_assert!(message.contains("audit.jsonl"), "{}", message);
        return Ok(());
    }
    prop_assert!(written.is_ok(), "{:?}", written);
    let after = std::fs::read(dir.join("audit.jsonl")).unwrap();
    prop_assert!(
        after.starts_with(&bytes[..whole]),
        "whole lines were changed"
    );
    let last = &after[whole..];
    let record: AuditRecord = serde_json::from_slice(last.trim_ascii_end()).unwrap();
    prop_assert!(record.id > highest, "id {} after {}", record.id, highest);
    // The log reads back whole when every line was a record.
    let read = read_audit(&dir);
    let damaged = records.iter().any(Option::is_none);
    prop_assert_eq!(read.is_ok(), !damaged, "{:?}", read.err());
    Ok(())
}

/// Every action name the default keymap uses, two views' names, and `none` (unbind).
fn action_names() -> Vec<String> {
    let defaults: BTreeMap<String, String> =
        serde_json::from_str(include_str!("../../src/console/keymap.json")).unwrap();
    let mut names: Vec<String> = defaults.into_values().collect();
    names.push("none".to_owned());
    // The views' names come from the view table, not the file.
    names.extend(["view_peers", "view_nodes"].map(str::to_owned));
    names.sort();
    names.dedup();
    names
}

fn keymap() -> BoxedStrategy<String> {
    let key = prop_oneof![
        3 => proptest::sample::select(vec!["q", "ctrl-c", "x", "?", "enter", "f5", "j", "1"])
            .prop_map(str::to_owned),
        1 => short_text(),
    ];
    let action = prop_oneof![
        5 => proptest::sample::select(action_names()),
        1 => short_text(),
    ];
    btree_map(key, action, 0..6)
        .prop_map(|map| serde_json::to_string_pretty(&map).unwrap())
        .boxed()
}

/// Keys by action, inverted: the binding of each key.
fn bindings(keymap: &Keymap) -> BTreeMap<String, Action> {
    keymap
        .by_action()
        .into_iter()
        .flat_map(|(action, keys)| keys.into_iter().map(move |key| (key, action.clone())))
        .collect()
}

/// A user keymap is the defaults with the file's keys rebound (`none` unbinds); a file that
/// does not read as one changes nothing and says which file.
fn check_keymap(folder: &Folder, text: String) -> Result<(), TestCaseError> {
    folder.write("keymap.json", text.as_bytes());
    let (loaded, problem) = Keymap::load(Some(folder.dir.path()));
    let mut expected = bindings(&Keymap::defaults());
    // A binding is a name or an action spelled out; one that is neither spoils the file.
    let user = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(&text)
        .map_err(|e| e.to_string())
        .and_then(|raw| {
            raw.into_iter()
                .map(|(key, binding)| Action::from_binding(binding).map(|action| (key, action)))
                .collect::<Result<BTreeMap<String, Action>, String>>()
        });
    match user {
        Ok(user) => {
            prop_assert!(problem.is_none(), "{:?}", problem);
            for (key, action) in user {
                if action == Action::None {
                    expected.remove(&key);
                } else {
                    expected.insert(key, action);
                }
            }
        }
        Err(_) => {
            let problem = problem.unwrap_or_default();
            prop_assert!(problem.contains("keymap.json"), "{}", problem);
            prop_assert!(problem.contains("using the defaults"), "{}", problem);
        }
    }
    prop_assert_eq!(bindings(&loaded), expected);
    Ok(())
}

const DEFAULT_THEME: &str = include_str!("../../themes/default.json");

/// The roles a theme must give, in the order they are read.
const ROLES: [&str; 15] = [
    "text",
    "muted",
    "accent",
    "border",
    "title",
    "selection_fg",
    "selection_bg",
    "header_fg",
    "info",
    "warning",
    "error",
    "status_fg",
    "status_bg",
    "banner_fg",
    "banner_bg",
];

/// The default theme with roles removed or set to anything, and roles added.
fn theme() -> BoxedStrategy<String> {
    let colour = prop_oneof![
        2 => "#[0-9a-fA-F]{6}",
        1 => proptest::sample::select(vec!["red", "reset", "lightblue", "gray", "255", "0"])
            .prop_map(str::to_owned),
        1 => short_text(),
    ];
    let valid = vec(
        (
            prop_oneof![
                3 => proptest::sample::select(ROLES.to_vec()).prop_map(str::to_owned),
                1 => "[a-z_]{1,10}",
            ],
            optional(colour),
        ),
        0..4,
    )
    .prop_map(|edits| {
        let mut value: Value = serde_json::from_str(DEFAULT_THEME).unwrap();
        let roles = value["roles"].as_object_mut().unwrap();
        for (role, colour) in edits {
            match colour {
                Some(colour) => roles.insert(role, colour.into()),
                None => roles.remove(&role),
            };
        }
        serde_json::to_string_pretty(&value).unwrap()
    })
    .boxed();
    inputs(valid)
}

/// A theme loads when every role is a colour (or `reset`); otherwise the refusal names the
/// first role that is missing or not a colour. Without colour, any well-formed file loads.
fn check_theme(text: String) -> Result<(), TestCaseError> {
    let parsed = Theme::parse("fuzz", &text, false);
    let file = serde_json::from_str::<Value>(&text).ok();
    let roles = file
        .as_ref()
        .and_then(|f| f.get("roles"))
        .and_then(Value::as_object);
    let well_formed = roles.is_some_and(|r| r.values().all(Value::is_string))
        && file
            .as_ref()
            .and_then(|f| f.get("name"))
            .is_none_or(|n| n.is_string() || n.is_null())
        && file.as_ref().is_some_and(Value::is_object);
    if !well_formed {
        // Not a theme file at all (the model reads only the shape it knows).
        return Ok(());
    }
    prop_assert!(Theme::parse("fuzz", &text, true).is_ok());
    let roles = roles.unwrap();
    let first_bad = ROLES.iter().find(|role| {
        roles
            .get(**role)
            .and_then(Value::as_str)
            .is_none_or(|v| v != "reset" && Color::from_str(v).is_err())
    });
    match (first_bad, parsed) {
        (None, Ok(theme)) => prop_assert_eq!(theme.name.as_str(), "fuzz"),
        (Some(role), Err(message)) => {
            prop_assert!(message.contains(&format!("{role:?}")), "{}", message)
        }
        (expected, got) => {
            return Err(TestCaseError::fail(format!(
                "expected a refusal naming {expected:?}, got {got:?}"
            )))
        }
    }
    Ok(())
}

fn run(cases: u32) {
    let folder = RefCell::new(Folder::new());
    fuzz("files state.json", cases, inputs(state()), |text| {
        check_state(&folder.borrow(), text)
    });
    // Each input starts the audit writer and waits for an fsync: a tenth of the budget.
    fuzz("files audit.jsonl", cases / 10, audit(), |log| {
        check_audit(&folder.borrow(), log)
    });
    fuzz("files keymap.json", cases, inputs(keymap()), |text| {
        check_keymap(&folder.borrow(), text)
    });
    fuzz("files themes", cases, theme(), check_theme);
}

runs!();

/// Found by the fuzzer: a log holding id u64::MAX made the next id overflow (a panic at start
/// in a debug build, id 0 again in a release build).
#[test]
fn an_audit_log_at_the_largest_id_is_refused_not_wrapped() {
    let folder = Folder::new();
    let record = AuditRecord {
        time: "2026-01-01T00:00:00Z".to_owned(),
        id: u64::MAX,
        phase: AuditPhase::Outcome,
        who: "admin".to_owned(),
        action: "kick".to_owned(),
        target: "peer".to_owned(),
        result: "done".to_owned(),
    };
    let line = format!("{}\n", serde_json::to_string(&record).unwrap());
    check_audit(&folder, Log(line.into_bytes())).unwrap();
}

/// Found by the long run: a field the server skips may hold a number no tree holds.
#[test]
fn unknown_fields_of_the_state_file_are_skipped_whatever_they_hold() {
    let folder = Folder::new();
    check_state(
        &folder,
        "{\n  \"app_status\": {},\n  \"laslast_ban_id\": 1e000000000000000309\n}".to_owned(),
    )
    .unwrap();
}

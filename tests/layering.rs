//! The module graph stays a hierarchy: no circle of module-level `use` imports between
//! modules of `src/`. A module may use its ancestors (`super::…`) and its own children; two
//! modules that import each other, directly or around a circle, fail here with the circle
//! named, so that layering mistakes are caught when they are made.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, by module path (`crate::server::hub`).
fn modules(root: &Path, dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            modules(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let name = std::iter::once("crate".to_owned())
                .chain(parts)
                .collect::<Vec<_>>()
                .join("::");
            out.insert(name, path);
        }
    }
}

/// The paths a `use` item names, its braces expanded one level (`a::{b, c::d}` → `a::b`,
/// `a::c`): the module a path lands in is found by its longest known prefix anyway.
fn used_paths(item: &str) -> Vec<String> {
    let item = item.split_whitespace().collect::<Vec<_>>().join(" ");
    match item.split_once("::{") {
        Some((base, rest)) => rest
            .trim_end_matches('}')
            .split(',')
            .map(|part| part.trim().trim_start_matches('{'))
            .map(|part| part.split(" as ").next().unwrap_or(part))
            .map(|part| part.split("::").next().unwrap_or(part).trim())
            .filter(|part| !part.is_empty())
            .map(|part| format!("{base}::{part}"))
            .collect(),
        None => vec![item.split(" as ").next().unwrap_or(&item).to_owned()],
    }
}

/// The module `path` (as written in `module`) lands in, if it is one of the crate's.
fn resolve(module: &str, path: &str, known: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = match segments.first() {
        Some(&"crate") => {
            segments.remove(0);
            vec!["crate"]
        }
        Some(&"super") | Some(&"self") => module.split("::").collect(),
        _ => return None,
    };
    while let Some(first) = segments.first() {
        match *first {
            "super" => {
                base.pop();
            }
            "self" => {}
            _ => break,
        }
        segments.remove(0);
    }
    (0..=segments.len())
        .rev()
        .map(|n| {
            base.iter()
                .chain(&segments[..n])
                .copied()
                .collect::<Vec<_>>()
                .join("::")
        })
        .find(|candidate| known.contains_key(candidate))
}

/// Module → the other modules it imports (its ancestors left out), tests excluded.
fn import_graph(known: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, file) in known {
        let source = std::fs::read_to_string(file).unwrap();
        let source = source.split("#[cfg(test)]").next().unwrap_or(&source);
        let mut edges = BTreeSet::new();
        let mut rest = source;
        while let Some(at) = rest.find("use ") {
            let line_start = rest[..at].rfind('\n').map_or(0, |i| i + 1);
            let before = rest[line_start..at].trim();
            let is_item = before.is_empty() || before.starts_with("pub");
            let Some(end) = rest[at..].find(';') else {
                break;
            };
            if is_item {
                for path in used_paths(&rest[at + 4..at + end]) {
                    if let Some(target) = resolve(module, path.trim(), known) {
                        let ancestor = module.starts_with(&format!("{target}::"));
                        if target != *module && !ancestor {
                            edges.insert(target);
                        }
                    }
                }
            }
            rest = &rest[at + end..];
        }
        graph.insert(module.clone(), edges);
    }
    graph
}

/// A circle through `start`, if there is one.
fn circle_through(start: &str, graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                return Some(path.clone());
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_two_modules_import_each_other_around_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut known = BTreeMap::new();
    modules(&root, &root, &mut known);
    assert!(known.contains_key("crate::server::hub"), "{known:?}");
    let graph = import_graph(&known);
    let circles: Vec<String> = graph
        .keys()
        .filter_map(|module| circle_through(module, &graph))
        .map(|circle| circle.join(" → "))
        .collect();
    assert!(
        circles.is_empty(),
        "circles of imports:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_check_sees_a_circle_when_there_is_one() {
    let known: BTreeMap<String, PathBuf> = ["crate::a", "crate::b", "crate::a::child"]
        .into_iter()
        .map(|m| (m.to_owned(), PathBuf::new()))
        .collect();
    assert_eq!(
        resolve("crate::a", "crate::b::Thing", &known).as_deref(),
        Some("crate::b")
    );
    assert_eq!(
        resolve("crate::a::child", "super::super::b", &known).as_deref(),
        Some("crate::b")
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("crate::a", vec!["crate::b"]),
        ("crate::b", vec!["crate::a"]),
        ("crate::a::child", vec![]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_owned(), to.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        circle_through("crate::a", &graph),
        Some(vec!["crate::a".to_owned(), "crate::b".to_owned()])
    );
    assert_eq!(circle_through("crate::a::child", &graph), None);
    assert_eq!(
        used_paths("crate::x::{y, z::W as V, self}"),
        ["crate::x::y", "crate::x::z", "crate::x::self"]
    );
}

/// The dialects: the cluster carries their messages without naming them.
const DIALECTS: [&str; 4] = [
    "crate::server::pubsub",
    "crate::server::talo",
    "crate::server::signal_fish",
    "crate::server::flow",
];

/// `source` with a path split over lines or spaced out (`a::{\n    b, c}`) written on one
/// line: whitespace next to `:`, `{`, `}` or `,` goes, other whitespace becomes one space.
fn joined(source: &str) -> String {
    let spaced = source.split_whitespace().collect::<Vec<_>>().join(" ");
    let glue = |c: Option<char>| matches!(c, Some(':' | '{' | '}' | ','));
    let chars: Vec<char> = spaced.chars().collect();
    chars
        .iter()
        .enumerate()
        .filter(|&(i, &c)| {
            c != ' '
                || !(glue(i.checked_sub(1).map(|j| chars[j])) || glue(chars.get(i + 1).copied()))
        })
        .map(|(_, &c)| c)
        .collect()
}

/// Every path in `source` that starts at `crate`, `super` or `self` (a `use` item, a path in
/// code or in a doc link), its braces expanded one level, as written.
fn paths_in(source: &str) -> Vec<String> {
    let text = joined(source);
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start).map(|i| i + from) {
            from = at + start.len();
            if at > 0 && is_ident(bytes[at - 1]) {
                continue;
            }
            let mut end = at;
            while end < bytes.len() && (is_ident(bytes[end]) || bytes[end] == b':') {
                end += 1;
            }
            if text[..end].ends_with("::") && bytes.get(end) == Some(&b'{') {
                if let Some(close) = text[end..].find('}') {
                    end += close + 1;
                }
            }
            found.extend(used_paths(&text[at..end]));
        }
    }
    found
}

/// The dialect modules `source` (the file of `module`) names.
fn dialects_named(module: &str, source: &str, known: &BTreeMap<String, PathBuf>) -> Vec<String> {
    let mut named = Vec::new();
    for path in paths_in(source) {
        let target = resolve(module, path.trim_end_matches("::"), known);
        let dialect = target.as_deref().and_then(|target| {
            DIALECTS
                .iter()
                .find(|d| target == **d || target.starts_with(&format!("{d}::")))
        });
        if dialect.is_some() {
            named.push(path);
        }
    }
    // Through a shorter name (`use crate::server;` then `server::pubsub`).
    let text = joined(source);
    for dialect in DIALECTS {
        let short = dialect.trim_start_matches("crate::");
        if text.match_indices(short).any(|(at, _)| {
            !text[at + short.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        }) {
            named.push(short.to_owned());
        }
    }
    named.sort();
    named.dedup();
    named
}

#[test]
fn the_cluster_names_no_dialect() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut known = BTreeMap::new();
    modules(&root, &root, &mut known);
    let cluster: Vec<(&String, &PathBuf)> = known
        .iter()
        .filter(|(module, _)| {
            *module == "crate::server::cluster" || module.starts_with("crate::server::cluster::")
        })
        .collect();
    assert!(cluster.len() > 2, "{known:?}");
    let mut naming = Vec::new();
    for (module, file) in cluster {
        let source = std::fs::read_to_string(file).unwrap();
        for path in dialects_named(module, &source, &known) {
            let shown = file.strip_prefix(&root).unwrap_or(file);
            naming.push(format!("src/{}: {path}", shown.display()));
        }
    }
    assert!(
        naming.is_empty(),
        "the cluster carries the dialects' messages through the broker and must not name \
         them:\n{}",
        naming.join("\n")
    );
}

#[test]
fn the_check_sees_a_dialect_however_it_is_named() {
    let known: BTreeMap<String, PathBuf> = [
        "crate::server",
        "crate::server::cluster",
        "crate::server::cluster::bus",
        "crate::server::pubsub",
        "crate::server::talo",
        "crate::server::talo::socket",
        "crate::server::hub",
    ]
    .into_iter()
    .map(|m| (m.to_owned(), PathBuf::new()))
    .collect();
    let bus = "crate::server::cluster::bus";
    let named = |source: &str| dialects_named(bus, source, &known);
    assert_eq!(named("use crate::server::hub::Hub;"), Vec::<String>::new());
    assert_eq!(
        named("use super::Cluster; use super::super::hub;"),
        Vec::<String>::new()
    );
    assert_eq!(named("use crate::server::talo::socket::Audience;").len(), 2);
    assert_eq!(named("use super::super::pubsub;"), ["super::super::pubsub"]);
    assert_eq!(
        named("use crate::server::{hub::Hub,\n    talo};"),
        ["crate::server::talo"]
    );
    assert_eq!(
        dialects_named(
            "crate::server::cluster",
            "super::pubsub::announce(x)",
            &known
        ),
        ["super::pubsub::announce"]
    );
    assert_eq!(named("/// see [`crate::server::pubsub`]").len(), 2);
    assert_eq!(
        named("let pubsub = client.get_async_pubsub();"),
        Vec::<String>::new()
    );
}

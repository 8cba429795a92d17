//! The table of views: each view's title, name and command, default key, and — for a table
//! view — its columns, where its rows come from ([`super::rows`]) and which deltas it
//! follows. The tab bar, the `:` commands, the keymap's defaults and names, the help and the
//! tables all read it, so a new table view is one entry here and its row functions.

use serde::{Deserialize, Serialize};

use super::model::Applied;
use super::rows::{self, Keys, Opens, RowOf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Overview,
    Peers,
    Rooms,
    Channels,
    Subscriptions,
    Apps,
    Log,
    Catalog,
    Composer,
    /// Closed peers and rooms, newest first.
    History,
    Bans,
    /// The results of `:find`.
    Find,
    /// A pasted log's timeline.
    Timeline,
    /// The cluster's nodes (`serve --cluster`).
    Nodes,
}

/// A view drawn as a table of rows.
pub struct Table {
    pub columns: &'static [&'static str],
    pub keys: Keys,
    pub row: RowOf,
    /// What opening a row shows.
    pub opens: Opens,
    /// Deltas after which the table is built again. Peers and rooms are not rebuilt: their
    /// index moves one entry per delta (see [`super::tables::Tables::follow`]).
    pub rebuilt_on: fn(&Applied) -> bool,
    /// Columns that never shrink when the table is too wide (they name an object, and a cut
    /// id cannot be acted on), and those that shrink before the rest.
    pub keep: &'static [usize],
    pub shrink_first: &'static [usize],
    /// Columns of counts and rates: the first press of `s` on them sorts largest first.
    pub largest_first: &'static [usize],
    /// What an empty table means, where it could be mistaken for a fault.
    pub empty: Option<&'static str>,
}

pub struct ViewSpec {
    pub view: View,
    pub title: &'static str,
    /// How the help names it.
    pub name: &'static str,
    /// `:name` (and its aliases) shows the view, and the help says this of it; `None` for the
    /// views a command of their own opens (`:compose`, `:find`, `:paste`).
    pub command: Option<(&'static [&'static str], &'static str)>,
    /// It has a numbered tab; next and previous view move through the tabs.
    pub tab: bool,
    /// The key bound to it by default (keymap.json in the config folder overrides it), the
    /// binding's name in keymap files written before bindings had parameters, and what the
    /// help says the key does.
    pub key: Option<(&'static str, &'static str, &'static str)>,
    pub table: Option<Table>,
}

const fn never(_: &Applied) -> bool {
    false
}

pub const VIEWS: &[ViewSpec] = &[
    ViewSpec {
        view: View::Overview,
        title: "Overview",
        name: "overview",
        command: Some((&[], "counts, rates and top error codes")),
        tab: true,
        key: Some(("1", "view_overview", "overview")),
        table: None,
    },
    ViewSpec {
        view: View::Peers,
        title: "Peers",
        name: "peers",
        command: Some((&[], "live peers")),
        tab: true,
        key: Some(("2", "view_peers", "peers")),
        table: Some(Table {
            columns: &[
                "ID", "DIALECT", "APP", "IDENTITY", "ROOM", "IN", "OUT", "ERR", "ADDRESS",
            ],
            keys: rows::peer_keys,
            row: rows::peer_of,
            opens: rows::open_peer,
            rebuilt_on: never,
            keep: &[0, 1],
            shrink_first: &[8],
            largest_first: &[5, 6, 7],
            empty: None,
        }),
    },
    ViewSpec {
        view: View::Rooms,
        title: "Rooms",
        name: "rooms",
        command: Some((&[], "rooms and their authority holders")),
        tab: true,
        key: Some(("3", "view_rooms", "rooms")),
        table: Some(Table {
            columns: &[
                "CODE",
                "APP",
                "GAME",
                "PLAYERS",
                "SPECT",
                "LOBBY",
                "AUTHORITY",
            ],
            keys: rows::room_keys,
            row: rows::room_of,
            opens: rows::open_room,
            rebuilt_on: never,
            keep: &[0],
            shrink_first: &[],
            largest_first: &[3, 4],
            empty: None,
        }),
    },
    ViewSpec {
        view: View::Channels,
        title: "Channels",
        name: "channels",
        command: Some((&[], "channels and their members")),
        tab: true,
        key: Some(("4", "view_channels", "channels")),
        table: Some(Table {
            columns: &["DIALECT", "APP", "CHANNEL", "MEMBERS", "MESSAGES"],
            keys: rows::channel_keys,
            row: rows::channel_of,
            opens: rows::open_channel,
            rebuilt_on: |applied| applied.channels,
            keep: &[0],
            shrink_first: &[],
            largest_first: &[3, 4],
            empty: None,
        }),
    },
    ViewSpec {
        view: View::Subscriptions,
        title: "Subs",
        name: "subs",
        command: Some((
            &["subscriptions"],
            "subscriptions of every dialect (Flow, pub/sub)",
        )),
        tab: true,
        key: Some(("5", "view_subscriptions", "subscriptions")),
        table: Some(Table {
            columns: &["PEER", "DIALECT", "ID", "TOPIC", "ARGUMENTS"],
            keys: rows::subscription_keys,
            row: rows::subscription_of,
            opens: rows::open_subscription,
            rebuilt_on: |applied| applied.subscriptions,
            keep: &[0, 1, 2],
            shrink_first: &[4],
            largest_first: &[],
            empty: None,
        }),
    },
    ViewSpec {
        view: View::Apps,
        title: "Apps",
        name: "apps",
        command: Some((&[], "apps, their status and keys")),
        tab: true,
        key: Some(("6", "view_apps", "apps")),
        table: Some(Table {
            columns: &["APP", "NAME", "STATUS", "PEERS", "KEYS"],
            keys: rows::app_keys,
            row: rows::app_of,
            opens: rows::opens_nothing,
            // The PEERS column counts the app's live peers.
            rebuilt_on: |applied| applied.apps || applied.peer.is_some(),
            keep: &[0, 2],
            shrink_first: &[4],
            largest_first: &[3],
            empty: None,
        }),
    },
    ViewSpec {
        view: View::Log,
        title: "Log",
        name: "log",
        command: Some((&[], "errors (decoded), closes, taps")),
        tab: true,
        key: Some(("7", "view_log", "live log")),
        table: None,
    },
    ViewSpec {
        view: View::Catalog,
        title: "Catalog",
        name: "catalog",
        command: Some((&["codes"], "every documented code")),
        tab: true,
        key: Some(("8", "view_catalog", "catalog of codes")),
        table: Some(Table {
            columns: &["DIALECT", "CODE", "DELIVERY", "RETRY", "TITLE"],
            keys: rows::catalog_keys,
            row: rows::catalog_of,
            opens: rows::open_code,
            rebuilt_on: never,
            keep: &[0, 1],
            shrink_first: &[],
            largest_first: &[],
            empty: None,
        }),
    },
    ViewSpec {
        view: View::Composer,
        title: "Compose",
        name: "compose",
        command: None,
        tab: true,
        key: Some(("9", "view_composer", "composer")),
        table: None,
    },
    ViewSpec {
        view: View::History,
        title: "History",
        name: "history",
        command: Some((&[], "closed peers and rooms, decoded")),
        tab: false,
        key: Some(("h", "view_history", "history of closed peers and rooms")),
        table: Some(Table {
            columns: &[
                "CLOSED", "PEER", "DIALECT", "APP", "IDENTITY", "ROOMS", "CLOSE", "ERRORS",
                "ADDRESS",
            ],
            keys: rows::history_keys,
            row: rows::history_of,
            opens: rows::open_history,
            // Followed entry by entry when the model says which entries moved.
            rebuilt_on: |applied| applied.history && applied.history_moves.is_none(),
            keep: &[0, 1, 2],
            shrink_first: &[7, 8],
            largest_first: &[],
            empty: Some("Peers and rooms appear here when they close."),
        }),
    },
    ViewSpec {
        view: View::Bans,
        title: "Bans",
        name: "bans",
        command: Some((&[], "bans in force; a key lifts one")),
        tab: false,
        key: Some(("b", "view_bans", "bans in force")),
        table: Some(Table {
            columns: &["ID", "TARGET", "UNTIL", "REASON", "BY"],
            keys: rows::ban_keys,
            row: rows::ban_of,
            opens: rows::opens_nothing,
            rebuilt_on: |applied| applied.bans,
            keep: &[0],
            shrink_first: &[],
            largest_first: &[],
            empty: Some("No bans in force. :ban puts one on a peer's identity or address."),
        }),
    },
    ViewSpec {
        view: View::Find,
        title: "Find",
        name: "find",
        command: None,
        tab: false,
        key: None,
        table: None,
    },
    ViewSpec {
        view: View::Timeline,
        title: "Timeline",
        name: "timeline",
        command: None,
        tab: false,
        key: None,
        table: None,
    },
    ViewSpec {
        view: View::Nodes,
        title: "Nodes",
        name: "nodes",
        command: Some((&[], "the cluster's nodes: liveness, peers, rates")),
        tab: false,
        key: Some(("N", "view_nodes", "the cluster's nodes")),
        table: Some(Table {
            columns: &[
                "NODE",
                "STATE",
                "LISTEN",
                "PEERS",
                "FRAMES/S",
                "ERR/S",
                "REDIS",
                "HEARTBEAT",
            ],
            keys: rows::node_keys,
            row: rows::node_of,
            opens: rows::opens_nothing,
            rebuilt_on: |applied| applied.nodes,
            keep: &[0, 1],
            shrink_first: &[],
            largest_first: &[3, 4, 5],
            empty: Some(
                "This server runs alone: nodes appear here when servers share a cluster \
                 (relaydeck serve --cluster redis://HOST).",
            ),
        }),
    },
];

const TABS: usize = {
    let mut count = 0;
    let mut i = 0;
    while i < VIEWS.len() {
        if VIEWS[i].tab {
            count += 1;
        }
        i += 1;
    }
    count
};

const fn tabs() -> [View; TABS] {
    let mut tabs = [View::Overview; TABS];
    let (mut i, mut n) = (0, 0);
    while i < VIEWS.len() {
        if VIEWS[i].tab {
            tabs[n] = VIEWS[i].view;
            n += 1;
        }
        i += 1;
    }
    tabs
}

impl View {
    /// The views with a numbered tab, in the table's order.
    pub const ALL: [View; TABS] = tabs();

    pub fn spec(self) -> &'static ViewSpec {
        // Every view has an entry: a test walks them all.
        VIEWS
            .iter()
            .find(|spec| spec.view == self)
            .unwrap_or(&VIEWS[0])
    }

    pub fn title(self) -> &'static str {
        self.spec().title
    }

    pub fn table(self) -> Option<&'static Table> {
        self.spec().table.as_ref()
    }

    /// The columns of a table view; none for the others.
    pub fn columns(self) -> &'static [&'static str] {
        self.table().map_or(&[], |table| table.columns)
    }

    /// The view's place among the tabs; the others count as the first, so next and previous
    /// move on from there.
    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_has_one_entry_and_names_are_unique() {
        let every = [
            View::Overview,
            View::Peers,
            View::Rooms,
            View::Channels,
            View::Subscriptions,
            View::Apps,
            View::Log,
            View::Catalog,
            View::Composer,
            View::History,
            View::Bans,
            View::Find,
            View::Timeline,
            View::Nodes,
        ];
        for view in every {
            assert_eq!(
                VIEWS.iter().filter(|s| s.view == view).count(),
                1,
                "{view:?}"
            );
            assert_eq!(view.spec().view, view);
        }
        let mut names: Vec<&str> = VIEWS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VIEWS.len());
    }

    #[test]
    fn column_indexes_name_columns_of_their_own_table() {
        for spec in VIEWS {
            let Some(table) = &spec.table else { continue };
            for index in table
                .keep
                .iter()
                .chain(table.shrink_first)
                .chain(table.largest_first)
            {
                assert!(*index < table.columns.len(), "{:?}: {index}", spec.view);
            }
        }
        // Counts sort largest first; names do not.
        let peers = View::Peers.table().map(|t| t.largest_first);
        assert_eq!(peers, Some(&[5, 6, 7][..]));
    }
}

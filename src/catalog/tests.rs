use std::collections::HashSet;

use super::*;

#[test]
fn codes_are_unique_within_a_dialect() {
    let mut seen = HashSet::new();
    for entry in all() {
        assert!(
            seen.insert((entry.dialect, entry.code)),
            "duplicate entry {}",
            entry.qualified()
        );
    }
}

#[test]
fn window_is_set_exactly_for_after_window() {
    for entry in all() {
        assert_eq!(
            entry.window.is_some(),
            entry.retry == Retry::AfterWindow,
            "{}: window and retry policy disagree",
            entry.qualified()
        );
    }
}

#[test]
fn tables_follow_dialect_order() {
    for (table, dialect) in entries::TABLES.iter().zip(Dialect::ALL) {
        for entry in table.iter() {
            assert_eq!(
                entry.dialect,
                dialect,
                "{} is in the wrong table",
                entry.qualified()
            );
        }
    }
}

#[test]
fn close_entries_have_numeric_codes_and_http_entries_a_status() {
    for entry in all() {
        match entry.delivery {
            Delivery::Close => assert!(
                entry
                    .close_code()
                    .is_some_and(|c| (1000..=4999).contains(&c)),
                "{}: close code must be 1000..=4999",
                entry.qualified()
            ),
            Delivery::Http => assert!(entry.status.is_some(), "{}: no status", entry.qualified()),
            Delivery::Frame => {}
        }
    }
}

#[test]
fn every_entry_has_text_a_person_can_act_on() {
    for entry in all() {
        assert!(!entry.title.is_empty(), "{}: title", entry.qualified());
        assert!(
            entry.meaning.ends_with('.'),
            "{}: meaning must be a sentence",
            entry.qualified()
        );
        assert!(
            entry.guidance.ends_with('.'),
            "{}: guidance must be a sentence",
            entry.qualified()
        );
        assert!(!entry.example.is_empty(), "{}: example", entry.qualified());
    }
}

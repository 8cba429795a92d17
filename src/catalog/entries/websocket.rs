use super::*;

pub(super) static ENTRIES: &[Entry] = &[];

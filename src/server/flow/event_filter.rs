//! The `events` topic's filter, as flow-go's `state_stream.NewEventFilter` builds and checks it
//! (`engine/access/state_stream/filter.go`, `model/events/parse.go`): limits first, then each
//! event type, address and contract in that order, with flow-go's texts; an event matches
//! when there is no filter, or by its type, its contract, or its account's address. No I/O.

use std::collections::HashSet;

use super::address;

/// flow-go's `DefaultMaxEventTypes`, `DefaultMaxAddresses` and `DefaultMaxContracts`.
pub const MAX_FILTER_ENTRIES: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    event_types: HashSet<String>,
    addresses: HashSet<String>,
    contracts: HashSet<String>,
}

/// An event type's parts, as flow-go's `ParseEvent` splits `flow.Name` and
/// `A.<address>.<Contract>.<Name>`.
struct ParsedType<'a> {
    /// `Some` for an account (contract) event.
    address: Option<&'a str>,
    contract: String,
}

fn parse_type(event_type: &str) -> Option<ParsedType<'_>> {
    let parts: Vec<&str> = event_type.split('.').collect();
    match parts.first() {
        Some(&"flow") if parts.len() == 2 => Some(ParsedType {
            address: None,
            contract: "flow".to_owned(),
        }),
        Some(&"A") if parts.len() >= 4 => Some(ParsedType {
            address: Some(parts[1]),
            contract: format!("A.{}.{}", parts[1], parts[2]),
        }),
        _ => None,
    }
}

impl EventFilter {
    /// `NewEventFilter`, `Err` with flow-go's text.
    pub fn new(
        event_types: &[String],
        addresses: &[String],
        contracts: &[String],
    ) -> Result<EventFilter, String> {
        for (list, what) in [
            (event_types, "event types"),
            (addresses, "addresses"),
            (contracts, "contracts"),
        ] {
            if list.len() > MAX_FILTER_ENTRIES {
                return Err(format!(
                    "too many {what} in filter ({}). use {MAX_FILTER_ENTRIES} or fewer",
                    list.len()
                ));
            }
        }
        let mut filter = EventFilter::default();
        for event_type in event_types {
            let parsed = parse_type(event_type).ok_or_else(|| {
                format!("invalid event type {event_type}: invalid event type: {event_type}")
            })?;
            if let Some(account) = parsed.address {
                if !address::is_valid(address::from_hex_lenient(account)) {
                    return Err(format!(
                        "invalid event type {event_type}: invalid event contract address"
                    ));
                }
            }
            filter.event_types.insert(event_type.clone());
        }
        for text in addresses {
            let parsed = address::from_hex_lenient(text);
            if !address::is_valid(parsed) {
                return Err(format!(
                    "invalid address for chain: {}",
                    address::hex(parsed)
                ));
            }
            filter.addresses.insert(address::hex(parsed));
        }
        for contract in contracts {
            let parts: Vec<&str> = contract.split('.').collect();
            if contract != "flow" && (parts.len() != 3 || parts[0] != "A") {
                return Err(format!("invalid contract: {contract}"));
            }
            filter.contracts.insert(contract.clone());
        }
        Ok(filter)
    }

    /// flow-go's `Match`.
    pub fn matches(&self, event_type: &str) -> bool {
        if self.event_types.is_empty() && self.addresses.is_empty() && self.contracts.is_empty() {
            return true;
        }
        if self.event_types.contains(event_type) {
            return true;
        }
        let Some(parsed) = parse_type(event_type) else {
            return false;
        };
        if self.contracts.contains(&parsed.contract) {
            return true;
        }
        parsed
            .address
            .is_some_and(|account| self.addresses.contains(account))
    }
}

/// flow-go's core account events (`account_status_filter.go`), the only types the
/// `account_statuses` topic takes.
pub const CORE_ACCOUNT_EVENTS: [&str; 9] = [
    "flow.AccountCreated",
    "flow.AccountKeyAdded",
    "flow.AccountKeyRemoved",
    "flow.AccountContractAdded",
    "flow.AccountContractUpdated",
    "flow.AccountContractRemoved",
    "flow.InboxValuePublished",
    "flow.InboxValueUnpublished",
    "flow.InboxValueClaimed",
];

/// flow-go's `DefaultMaxAccountAddresses`.
pub const MAX_ACCOUNT_ADDRESSES: usize = 100;

/// `NewAccountStatusFilter`'s checks, in its order and with its texts. No transaction on the
/// simulated chain touches an account, so the filter itself is not kept.
pub fn check_account_status_filter(
    event_types: &[String],
    account_addresses: &[String],
) -> Result<(), String> {
    let core = |t: &String| CORE_ACCOUNT_EVENTS.contains(&t.as_str());
    if account_addresses.is_empty() {
        if !event_types.iter().all(core) {
            return Err("invalid provided event types for filter".to_owned());
        }
    } else if account_addresses.len() > MAX_ACCOUNT_ADDRESSES {
        return Err(format!(
            "account limit exceeds, the limit is {MAX_ACCOUNT_ADDRESSES}"
        ));
    }
    if account_addresses.is_empty() {
        EventFilter::new(event_types, &[], &[])?;
    }
    for text in account_addresses {
        let parsed = address::from_hex_lenient(text);
        if !address::is_valid(parsed) {
            return Err(format!(
                "invalid address for chain: {}",
                address::hex(parsed)
            ));
        }
        if let Some(unsupported) = event_types.iter().find(|t| !core(t)) {
            return Err(format!("unsupported event type: {unsupported}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn refusal(types: &[&str], addresses: &[&str], contracts: &[&str]) -> String {
        EventFilter::new(&strings(types), &strings(addresses), &strings(contracts)).unwrap_err()
    }

    #[test]
    fn filters_are_checked_with_flow_go_texts() {
        assert_eq!(
            refusal(&["Nope"], &[], &[]),
            "invalid event type Nope: invalid event type: Nope"
        );
        assert_eq!(
            refusal(&["A.1654653399040a61.FlowToken.TokensWithdrawn"], &[], &[]),
            "invalid event type A.1654653399040a61.FlowToken.TokensWithdrawn: invalid event contract address"
        );
        assert_eq!(
            refusal(&[], &["0x1654653399040a61"], &[]),
            "invalid address for chain: 1654653399040a61"
        );
        assert_eq!(
            refusal(&[], &["xyz"], &[]),
            "invalid address for chain: 0000000000000000"
        );
        assert_eq!(refusal(&[], &[], &["A.x"]), "invalid contract: A.x");
        let many = vec!["flow.X".to_owned(); MAX_FILTER_ENTRIES + 1];
        assert_eq!(
            EventFilter::new(&[], &many, &[]).unwrap_err(),
            "too many addresses in filter (1001). use 1000 or fewer"
        );
    }

    #[test]
    fn account_status_filters_are_checked_with_flow_go_texts() {
        let check = |types: &[&str], addresses: &[&str]| {
            check_account_status_filter(&strings(types), &strings(addresses))
        };
        assert_eq!(check(&["flow.AccountCreated"], &[]), Ok(()));
        assert_eq!(
            check(&["flow.X"], &[]),
            Err("invalid provided event types for filter".to_owned())
        );
        assert_eq!(
            check(&["flow.X"], &["0xf8d6e0586b0a20c7"]),
            Err("unsupported event type: flow.X".to_owned())
        );
        assert_eq!(
            check(&[], &["0x01"]),
            Err("invalid address for chain: 0000000000000001".to_owned())
        );
        let many = vec!["0xf8d6e0586b0a20c7"; MAX_ACCOUNT_ADDRESSES + 1];
        assert_eq!(
            check(&[], &many),
            Err("account limit exceeds, the limit is 100".to_owned())
        );
    }

    #[test]
    fn events_match_by_type_contract_or_address() {
        let withdrawn = "A.0ae53cb6e3f42a79.FlowToken.TokensWithdrawn";
        let fees = "A.e5a8b7f23e8b548f.FlowFees.FeesDeducted";
        assert!(EventFilter::default().matches(withdrawn));
        let by_type = EventFilter::new(&strings(&[withdrawn]), &[], &[]).unwrap();
        assert!(by_type.matches(withdrawn) && !by_type.matches(fees));
        let by_contract =
            EventFilter::new(&[], &[], &strings(&["A.e5a8b7f23e8b548f.FlowFees"])).unwrap();
        assert!(by_contract.matches(fees) && !by_contract.matches(withdrawn));
        let by_address = EventFilter::new(&[], &strings(&["0x0ae53cb6e3f42a79"]), &[]).unwrap();
        assert!(by_address.matches(withdrawn) && !by_address.matches(fees));
        let flow = EventFilter::new(&[], &[], &strings(&["flow"])).unwrap();
        assert!(flow.matches("flow.AccountCreated") && !flow.matches(fees));
    }
}

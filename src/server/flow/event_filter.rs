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

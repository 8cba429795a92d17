//! Transactions on the simulated chain: the ledger of sent transactions and the block each is
//! in, flow-go's validation of a send, the lifecycle and the `TransactionResult` model the
//! status topics send. Reading the body is [`super::transaction_body`]'s. No I/O.
//!
//! A transaction sent at some moment goes into the next block; it is pending until that block
//! is finalized, executed one block later and sealed with its block ([`super::ids::SEAL_LAG`]
//! blocks later). Executing it emits the emulator's fee events: FlowToken's `TokensWithdrawn`
//! from the payer, `TokensDeposited` to FlowFees, and FlowFees' `FeesDeducted`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use super::address;
use super::ids;
pub use super::transaction_body::{parse, parse_uint, Transaction};

/// flow-go's `DefaultTransactionExpiry`: blocks after its reference block a transaction may be
/// included, and blocks a status stream waits for a transaction it has never seen.
pub const TRANSACTION_EXPIRY: u64 = 600;
/// flow-go's `DefaultTransactionExpiryBuffer`.
const EXPIRY_BUFFER: u64 = 30;
/// Sent transactions the ledger remembers; the oldest blocks' are forgotten first.
pub const MAX_TRANSACTIONS: usize = 10_000;
/// The emulator's FlowToken and FlowFees contract accounts.
const FLOW_TOKEN: u64 = 0x0ae5_3cb6_e3f4_2a79;
const FLOW_FEES: u64 = 0xe5a8_b7f2_3e8b_548f;
/// What every simulated transaction costs and uses.
const FEE: &str = "0.00001000";
const COMPUTATION_USED: &str = "9";

/// flow-go's transaction statuses, in lifecycle order (`flow.TransactionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TxStatus {
    Unknown,
    Pending,
    Finalized,
    Executed,
    Sealed,
    Expired,
}

impl TxStatus {
    fn wire(self) -> &'static str {
        match self {
            TxStatus::Unknown => "",
            TxStatus::Pending => "Pending",
            TxStatus::Finalized => "Finalized",
            TxStatus::Executed => "Executed",
            TxStatus::Sealed => "Sealed",
            TxStatus::Expired => "Expired",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, TxStatus::Sealed | TxStatus::Expired)
    }

    /// The statuses after `self`, up to and including `to`, that a stream reports in order
    /// (flow-go's `generateResultsStatuses`: every step, except that expiry comes alone).
    pub fn steps_to(self, to: TxStatus) -> Vec<TxStatus> {
        if to <= self {
            return Vec::new();
        }
        if to == TxStatus::Expired {
            return vec![TxStatus::Expired];
        }
        [
            TxStatus::Pending,
            TxStatus::Finalized,
            TxStatus::Executed,
            TxStatus::Sealed,
        ]
        .into_iter()
        .filter(|s| *s > self && *s <= to)
        .collect()
    }
}

/// Where a sent transaction is: its block and its place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Included {
    pub height: u64,
    pub index: u32,
    pub payer: u64,
}

impl Included {
    /// The status at a finalized head.
    pub fn status(&self, finalized_head: u64) -> TxStatus {
        if finalized_head < self.height {
            TxStatus::Pending
        } else if finalized_head < self.height + 1 {
            TxStatus::Finalized
        } else if finalized_head < self.height + ids::SEAL_LAG {
            TxStatus::Executed
        } else {
            TxStatus::Sealed
        }
    }

    /// The finalized height at which the status after `status` is reached.
    pub fn next_change(&self, status: TxStatus) -> Option<u64> {
        match status {
            TxStatus::Unknown | TxStatus::Pending => Some(self.height),
            TxStatus::Finalized => Some(self.height + 1),
            TxStatus::Executed => Some(self.height + ids::SEAL_LAG),
            TxStatus::Sealed | TxStatus::Expired => None,
        }
    }
}

/// Why a parsed transaction is not accepted (flow-go's `TransactionValidator`).
pub fn validate(transaction: &Transaction, finalized_head: u64) -> Result<(), String> {
    let reference = ids::height_of(&transaction.reference_block_id)
        .filter(|height| *height <= finalized_head)
        .ok_or("unknown reference block")?;
    if finalized_head.saturating_sub(reference) > TRANSACTION_EXPIRY - EXPIRY_BUFFER {
        return Err(format!(
            "transaction is expired: ref_height={reference} final_height={finalized_head}"
        ));
    }
    Ok(())
}

/// The text of a send that the validator refused, as the stream fails with it.
pub fn send_failure(problem: &str) -> String {
    format!(
        "internal error: subscription finished with error: rpc error: code = InvalidArgument desc = failed to send transaction: invalid transaction: {problem}"
    )
}

#[derive(Default)]
struct LedgerState {
    by_id: HashMap<String, Included>,
    by_height: BTreeMap<u64, Vec<String>>,
}

/// The server's sent transactions, shared by every Flow stream.
#[derive(Default)]
pub struct Ledger {
    state: Mutex<LedgerState>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, LedgerState> {
        // The state is consistent after every statement, so a panic elsewhere leaves it usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Put a transaction into the block after `finalized_head`, or find where it already is.
    pub fn submit(&self, transaction: &Transaction, finalized_head: u64) -> Included {
        let mut state = self.lock();
        if let Some(included) = state.by_id.get(&transaction.id) {
            return *included;
        }
        while state.by_id.len() >= MAX_TRANSACTIONS {
            let Some((_, ids)) = state.by_height.pop_first() else {
                break;
            };
            for id in ids {
                state.by_id.remove(&id);
            }
        }
        let height = finalized_head.saturating_add(1);
        let block = state.by_height.entry(height).or_default();
        let included = Included {
            height,
            index: u32::try_from(block.len()).unwrap_or(u32::MAX),
            payer: transaction.payer,
        };
        block.push(transaction.id.clone());
        state.by_id.insert(transaction.id.clone(), included);
        included
    }

    pub fn find(&self, id: &str) -> Option<Included> {
        self.lock().by_id.get(&id.to_ascii_lowercase()).copied()
    }

    /// The events block `height` emitted, in transaction then event order.
    pub fn events_at(&self, height: u64) -> Vec<Event> {
        let state = self.lock();
        let Some(ids) = state.by_height.get(&height) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| {
                state
                    .by_id
                    .get(id)
                    .map(|included| transaction_events(id, included))
            })
            .flatten()
            .collect()
    }
}

/// flow-go's REST `Event` model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub event_type: String,
    pub transaction_id: String,
    pub transaction_index: String,
    pub event_index: String,
    /// JSON-CDC, base64.
    pub payload: String,
}

fn cadence_address(account: u64) -> Value {
    serde_json::json!({"type": "Optional", "value": {"type": "Address", "value": format!("0x{}", address::hex(account))}})
}

fn ufix64(value: &str) -> Value {
    serde_json::json!({"type": "UFix64", "value": value})
}

/// The fee events of one executed transaction.
fn transaction_events(id: &str, included: &Included) -> Vec<Event> {
    let token = address::hex(FLOW_TOKEN);
    let fees = address::hex(FLOW_FEES);
    let events = [
        (
            format!("A.{token}.FlowToken.TokensWithdrawn"),
            vec![
                ("amount", ufix64(FEE)),
                ("from", cadence_address(included.payer)),
            ],
        ),
        (
            format!("A.{token}.FlowToken.TokensDeposited"),
            vec![("amount", ufix64(FEE)), ("to", cadence_address(FLOW_FEES))],
        ),
        (
            format!("A.{fees}.FlowFees.FeesDeducted"),
            vec![
                ("amount", ufix64(FEE)),
                ("inclusionEffort", ufix64("1.00000000")),
                ("executionEffort", ufix64("0.00000009")),
            ],
        ),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(index, (event_type, fields))| {
            let fields: Vec<Value> = fields
                .into_iter()
                .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
                .collect();
            let cdc =
                serde_json::json!({"type": "Event", "value": {"id": event_type, "fields": fields}});
            Event {
                payload: base64::engine::general_purpose::STANDARD
                    .encode(format!("{cdc}\n").as_bytes()),
                event_type,
                transaction_id: id.to_owned(),
                transaction_index: included.index.to_string(),
                event_index: index.to_string(),
            }
        })
        .collect()
}

/// flow-go's REST `TransactionResult` model.
#[derive(Debug, Clone, Serialize)]
pub struct TransactionResult {
    pub block_id: String,
    pub collection_id: String,
    pub execution: &'static str,
    pub status: &'static str,
    pub status_code: u32,
    pub error_message: String,
    pub computation_used: String,
    pub events: Vec<Event>,
    #[serde(rename = "_links")]
    pub links: ids::Links,
}

/// flow-go's `TransactionStatusesResponse`.
#[derive(Debug, Clone, Serialize)]
pub struct TransactionStatusesMessage {
    pub transaction_result: TransactionResult,
    pub message_index: u64,
}

/// The result a status stream reports for `status` (flow-go fills a skipped finalized status
/// with the block and collection only, and an executed one with the whole result).
pub fn result(id: &str, included: Option<&Included>, status: TxStatus) -> TransactionResult {
    let in_block =
        included.filter(|_| status >= TxStatus::Finalized && status != TxStatus::Expired);
    let executed = included.filter(|_| matches!(status, TxStatus::Executed | TxStatus::Sealed));
    TransactionResult {
        block_id: in_block
            .map(|i| ids::block_id(i.height))
            .unwrap_or_default(),
        collection_id: in_block
            .map(|i| ids::collection_id(i.height))
            .unwrap_or_default(),
        execution: match status {
            TxStatus::Sealed => "Success",
            TxStatus::Expired => "Failure",
            _ => "Pending",
        },
        status: status.wire(),
        status_code: 0,
        error_message: String::new(),
        computation_used: if executed.is_some() {
            COMPUTATION_USED.to_owned()
        } else {
            "0".to_owned()
        },
        events: executed
            .map(|i| transaction_events(id, i))
            .unwrap_or_default(),
        links: ids::Links {
            self_link: format!("/v1/transaction_results/{id}"),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::server::flow::transaction_body::example_body;

    #[test]
    fn statuses_step_through_the_lifecycle() {
        let included = Included {
            height: 10,
            index: 0,
            payer: 1,
        };
        assert_eq!(included.status(9), TxStatus::Pending);
        assert_eq!(included.status(10), TxStatus::Finalized);
        assert_eq!(included.status(11), TxStatus::Executed);
        assert_eq!(included.status(12), TxStatus::Sealed);
        assert_eq!(
            TxStatus::Unknown.steps_to(TxStatus::Sealed),
            [
                TxStatus::Pending,
                TxStatus::Finalized,
                TxStatus::Executed,
                TxStatus::Sealed
            ]
        );
        assert_eq!(
            TxStatus::Unknown.steps_to(TxStatus::Expired),
            [TxStatus::Expired]
        );
        assert!(TxStatus::Sealed.steps_to(TxStatus::Sealed).is_empty());
    }

    #[test]
    fn the_ledger_puts_transactions_in_the_next_block_with_fee_events() {
        let ledger = Ledger::default();
        let tx = parse(&example_body(&ids::block_id(3))).unwrap();
        let included = ledger.submit(&tx, 7);
        assert_eq!((included.height, included.index), (8, 0));
        assert_eq!(ledger.submit(&tx, 9), included);
        assert_eq!(ledger.find(&tx.id), Some(included));
        let events = ledger.events_at(8);
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0].event_type,
            "A.0ae53cb6e3f42a79.FlowToken.TokensWithdrawn"
        );
        let payload = base64::engine::general_purpose::STANDARD
            .decode(&events[0].payload)
            .unwrap();
        let cdc: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            cdc["value"]["fields"][1]["value"]["value"]["value"],
            "0xf8d6e0586b0a20c7"
        );
        let sealed =
            serde_json::to_string(&result(&tx.id, Some(&included), TxStatus::Sealed)).unwrap();
        assert!(sealed.starts_with(&format!(
            r#"{{"block_id":"{}","collection_id":"{}","execution":"Success","status":"Sealed","status_code":0,"error_message":"","computation_used":"9","events":[{{"type":"#,
            ids::block_id(8),
            ids::collection_id(8)
        )), "{sealed}");
        let pending =
            serde_json::to_string(&result(&tx.id, Some(&included), TxStatus::Pending)).unwrap();
        assert!(pending.starts_with(r#"{"block_id":"","collection_id":"","execution":"Pending","status":"Pending","status_code":0,"error_message":"","computation_used":"0","events":[],"_links":{"_self":"/v1/transaction_results/"#), "{pending}");
    }

    #[test]
    fn sends_are_validated_against_the_chain() {
        let tx = parse(&example_body(&ids::block_id(3))).unwrap();
        assert_eq!(validate(&tx, 2), Err("unknown reference block".to_owned()));
        assert_eq!(validate(&tx, 3), Ok(()));
        assert_eq!(
            validate(&tx, 600),
            Err("transaction is expired: ref_height=3 final_height=600".to_owned())
        );
    }
}

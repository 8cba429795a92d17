//! A simulated Flow chain for flow-go's seven chain topics, so that a real Flow client gets
//! data from relaydeck. No I/O.
//!
//! The blocks are a pure function of the height: block `h` is finalized `h` block intervals
//! after the process's genesis, executed [`EXECUTION_LAG`] and sealed [`SEAL_LAG`] blocks later;
//! its id, parent, signatures, collection and seal are hashes of the height, so every stream
//! sees the same chain, and a block id names its height (the last eight bytes), which is how
//! `start_block_id` is found. What is stored is the transactions clients send
//! ([`super::transactions`]): each goes into the collection of the next block, and its events
//! are that block's. Payloads use flow-go's REST models (`engine/access/rest/common/models`): heights
//! as decimal strings, ids as 64 hex digits, signatures as standard base64, timestamps as Go's
//! RFC 3339 with trailing zeros of the fraction trimmed.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::event_filter::EventFilter;
use super::ids::{base64, block_id, collection_id, hash, height_of, hex, Links, SEAL_LAG};
use super::transactions::{parse_uint, Event, Transaction};

/// The chain topics this module feeds.
pub const CHAIN_TOPICS: [&str; 7] = [
    "blocks",
    "block_headers",
    "block_digests",
    "events",
    "account_statuses",
    "transaction_statuses",
    "send_and_get_transaction_statuses",
];

/// flow-go's `subscription.DefaultHeartbeatInterval`: a message every block.
pub const DEFAULT_HEARTBEAT_INTERVAL: u64 = 1;

/// The moment block 0 was finalized: when the process first needed the chain.
static GENESIS: LazyLock<(Instant, u64)> = LazyLock::new(|| {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    (Instant::now(), unix_ms)
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStatus {
    Finalized,
    /// Events are streamed once their block is executed, a block after its finalization.
    Executed,
    Sealed,
}

/// How many blocks a block waits after its finalization to be executed.
pub const EXECUTION_LAG: u64 = 1;

impl BlockStatus {
    fn wire(self) -> &'static str {
        match self {
            BlockStatus::Finalized => "BLOCK_FINALIZED",
            BlockStatus::Executed => "BLOCK_EXECUTED",
            BlockStatus::Sealed => "BLOCK_SEALED",
        }
    }
}

/// A chain-topic subscription's arguments, as flow-go's `parseBlocksArguments` reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockArguments {
    pub status: BlockStatus,
    /// Where to start; `None` starts at the latest block of that status.
    pub start_height: Option<u64>,
    /// For events and account statuses: a message at least every this many blocks.
    pub heartbeat_interval: Option<u64>,
    /// For events: which events the stream sends.
    pub filter: Option<EventFilter>,
    /// For the transaction topics: the transaction to watch or to send.
    pub transaction: Option<TransactionArgument>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionArgument {
    /// `transaction_statuses`: a transaction id (lowercase hex).
    Watch(String),
    /// `send_and_get_transaction_statuses`: a body to send.
    Send(Transaction),
}

/// The arguments of any chain topic, `Err` with flow-go's words when they do not fit, prefixed
/// as each of flow-go's providers prefixes them.
pub fn parse_arguments(
    topic: &str,
    arguments: &Map<String, Value>,
) -> Result<BlockArguments, String> {
    let prefix = match topic {
        "events" => "invalid arguments for events data provider: ",
        "account_statuses" => "invalid arguments for account statuses data provider: ",
        "transaction_statuses" => "invalid arguments for tx statuses data provider: ",
        "send_and_get_transaction_statuses" => {
            "invalid arguments for send tx statuses data provider: "
        }
        _ => "invalid arguments: ",
    };
    parse_topic_arguments(topic, arguments).map_err(|problem| format!("{prefix}{problem}"))
}

fn parse_topic_arguments(
    topic: &str,
    arguments: &Map<String, Value>,
) -> Result<BlockArguments, String> {
    match topic {
        "transaction_statuses" => parse_transaction_id(arguments),
        "send_and_get_transaction_statuses" => Ok(BlockArguments {
            status: BlockStatus::Finalized,
            start_height: None,
            heartbeat_interval: None,
            filter: None,
            transaction: Some(TransactionArgument::Send(super::transactions::parse(
                arguments,
            )?)),
        }),
        "events" => parse_state_arguments(
            arguments,
            &[
                "start_block_id",
                "start_block_height",
                "event_types",
                "addresses",
                "contracts",
                "heartbeat_interval",
            ],
            &["event_types", "addresses", "contracts"],
        ),
        "account_statuses" => parse_state_arguments(
            arguments,
            &[
                "start_block_id",
                "start_block_height",
                "event_types",
                "account_addresses",
                "heartbeat_interval",
            ],
            &["event_types", "account_addresses"],
        ),
        _ => parse_block_arguments(arguments),
    }
}

/// flow-go's `parseTransactionStatusesArguments`.
fn parse_transaction_id(arguments: &Map<String, Value>) -> Result<BlockArguments, String> {
    if let Some(key) = arguments.keys().find(|k| k.as_str() != "tx_id") {
        return Err(format!("unexpected field: '{key}'"));
    }
    let id = match arguments.get("tx_id") {
        None => return Err("missing 'tx_id' field".into()),
        Some(Value::String(id)) => id,
        Some(_) => return Err("'tx_id' must be a string".into()),
    };
    if id.is_empty() {
        return Err("'tx_id' must not be empty".into());
    }
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("invalid 'tx_id': invalid ID format".into());
    }
    Ok(BlockArguments {
        status: BlockStatus::Finalized,
        start_height: None,
        heartbeat_interval: None,
        filter: None,
        transaction: Some(TransactionArgument::Watch(id.to_ascii_lowercase())),
    })
}

/// Go's `%T` of a decoded JSON value, as flow-go's messages name types.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// `parseEventsArguments` and `parseAccountStatusesArguments`: allowed fields, the start,
/// `heartbeat_interval`, the string arrays, then (for events) the event filter.
fn parse_state_arguments(
    arguments: &Map<String, Value>,
    allowed: &[&str],
    arrays: &[&str],
) -> Result<BlockArguments, String> {
    if let Some(key) = arguments.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unexpected field: '{key}'"));
    }
    let start_height = parse_start(arguments)?;
    let heartbeat_interval = match arguments.get("heartbeat_interval") {
        None => DEFAULT_HEARTBEAT_INTERVAL,
        Some(Value::String(text)) => parse_uint(text, 64).map_err(|e| {
            let why = if e.contains("overflows") { "value out of range" } else { "invalid syntax" };
            format!("'heartbeat_interval' must be convertible to uint64: strconv.ParseUint: parsing {text:?}: {why}")
        })?,
        Some(_) => return Err("'heartbeat_interval' must be a string".into()),
    };
    let mut lists: Vec<Vec<String>> = Vec::new();
    for name in arrays {
        match arguments.get(*name) {
            None => lists.push(Vec::new()),
            Some(Value::Array(items)) => {
                if let Some(item) = items.iter().find(|i| !i.is_string()) {
                    return Err(format!(
                        "'{name}' must be an array of strings: value must be an array of strings. got {}",
                        go_type(item)
                    ));
                }
                lists.push(
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect(),
                );
            }
            Some(other) => {
                return Err(format!(
                    "'{name}' must be an array of strings: value must be an array. got {}",
                    go_type(other)
                ))
            }
        }
    }
    // Events' lists are types, addresses and contracts; account statuses' types and accounts.
    let filter = match lists.as_slice() {
        [types, addresses, contracts] => Some(
            EventFilter::new(types, addresses, contracts)
                .map_err(|e| format!("error creating event filter: {e}"))?,
        ),
        [types, accounts] => {
            super::event_filter::check_account_status_filter(types, accounts)
                .map_err(|e| format!("failed to create event filter: {e}"))?;
            None
        }
        _ => None,
    };
    Ok(BlockArguments {
        status: BlockStatus::Executed,
        start_height,
        heartbeat_interval: Some(heartbeat_interval),
        filter,
        transaction: None,
    })
}

/// Parse and validate the arguments of `blocks`, `block_headers` and `block_digests`, with
/// flow-go's checks in its order and its texts.
pub fn parse_block_arguments(arguments: &Map<String, Value>) -> Result<BlockArguments, String> {
    for key in arguments.keys() {
        if !matches!(
            key.as_str(),
            "start_block_id" | "start_block_height" | "block_status"
        ) {
            return Err(format!("unexpected field: '{key}'"));
        }
    }
    let start_height = parse_start(arguments)?;
    let status = match arguments.get("block_status") {
        None => return Err("missing 'block_status' field".into()),
        Some(Value::String(s)) if s.is_empty() => {
            return Err("'block_status' field must not be empty".into())
        }
        Some(Value::String(s)) if s == "finalized" => BlockStatus::Finalized,
        Some(Value::String(s)) if s == "sealed" => BlockStatus::Sealed,
        Some(Value::String(_)) => {
            return Err("invalid 'block_status', must be 'finalized' or 'sealed'".into())
        }
        Some(_) => return Err("'block_status' must be string".into()),
    };
    Ok(BlockArguments {
        status,
        start_height,
        heartbeat_interval: None,
        filter: None,
        transaction: None,
    })
}

/// flow-go's `parseStartBlock`: at most one of `start_block_id` and `start_block_height`.
fn parse_start(arguments: &Map<String, Value>) -> Result<Option<u64>, String> {
    let by_id = arguments.get("start_block_id");
    let by_height = arguments.get("start_block_height");
    let start_height = match (by_id, by_height) {
        (Some(_), Some(_)) => {
            return Err("can only provide either 'start_block_id' or 'start_block_height'".into())
        }
        (Some(id), None) => {
            let id = id.as_str().ok_or("'start_block_id' must be a string")?;
            // flow-go takes an empty id as none given.
            if id.is_empty() {
                None
            } else if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("invalid 'start_block_id': invalid ID format".into());
            } else {
                Some(height_of(id).ok_or_else(|| format!("block {id} is not on this chain"))?)
            }
        }
        (None, Some(height)) => {
            let height = height
                .as_str()
                .ok_or("'start_block_height' must be a string")?;
            Some(parse_uint(height, 64).map_err(|why| {
                format!("'start_block_height' must be convertible to uint64: {why}")
            })?)
        }
        (None, None) => None,
    };
    Ok(start_height)
}

/// The simulated chain, one block every `interval`.
#[derive(Debug, Clone, Copy)]
pub struct Chain {
    interval: Duration,
    genesis: Instant,
    genesis_unix_ms: u64,
}

impl Chain {
    pub fn new(interval_ms: u64) -> Chain {
        let (genesis, genesis_unix_ms) = *GENESIS;
        Chain {
            interval: Duration::from_millis(interval_ms.max(1)),
            genesis,
            genesis_unix_ms,
        }
    }

    fn interval_ms(&self) -> u64 {
        u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX)
    }

    /// The latest finalized height at `now`.
    pub fn finalized_head(&self, now: Instant) -> u64 {
        let elapsed = u64::try_from(now.saturating_duration_since(self.genesis).as_millis())
            .unwrap_or(u64::MAX);
        elapsed / self.interval_ms()
    }

    /// The latest height of `status` at `now`, `None` before any block has it.
    pub fn head(&self, status: BlockStatus, now: Instant) -> Option<u64> {
        let finalized = self.finalized_head(now);
        match status {
            BlockStatus::Finalized => Some(finalized),
            BlockStatus::Executed => finalized.checked_sub(EXECUTION_LAG),
            BlockStatus::Sealed => finalized.checked_sub(SEAL_LAG),
        }
    }

    /// When block `height` reaches `status`.
    pub fn due(&self, height: u64, status: BlockStatus) -> Instant {
        let lag = match status {
            BlockStatus::Finalized => 0,
            BlockStatus::Executed => EXECUTION_LAG,
            BlockStatus::Sealed => SEAL_LAG,
        };
        let steps = u32::try_from(height.saturating_add(lag)).unwrap_or(u32::MAX);
        self.genesis + self.interval.saturating_mul(steps)
    }

    fn timestamp(&self, height: u64) -> String {
        go_time(
            self.genesis_unix_ms
                .saturating_add(height.saturating_mul(self.interval_ms())),
        )
    }

    /// flow-go's `BlockHeader` model.
    pub fn header(&self, height: u64) -> Header {
        Header {
            id: block_id(height),
            parent_id: parent_id(height),
            height: height.to_string(),
            timestamp: self.timestamp(height),
            parent_voter_signature: base64(&hash("parent voter signature", height)),
        }
    }

    /// flow-go's `BlockDigest` model (the `block_digests` payload).
    pub fn digest(&self, height: u64) -> BlockDigest {
        BlockDigest {
            block_id: block_id(height),
            height: height.to_string(),
            timestamp: self.timestamp(height),
        }
    }

    /// flow-go's `Block` model with its payload expanded, as the `blocks` topic sends it.
    pub fn block(&self, height: u64, status: BlockStatus) -> Block {
        let block_seals = height
            .checked_sub(SEAL_LAG)
            .map(|sealed| BlockSeal {
                block_id: block_id(sealed),
                result_id: hex(&hash("execution result", sealed)),
                final_state: hex(&hash("final state", sealed)),
                aggregated_approval_signatures: Vec::new(),
            })
            .into_iter()
            .collect();
        let id = block_id(height);
        Block {
            header: self.header(height),
            payload: Payload {
                collection_guarantees: vec![CollectionGuarantee {
                    collection_id: collection_id(height),
                    signer_indices: String::new(),
                    signature: base64(&hash("collection signature", height)),
                    reference_block_id: parent_id(height),
                    cluster_chain_id: "relaydeck-cluster".to_owned(),
                }],
                block_seals,
            },
            expandable: Map::new(),
            links: Links {
                self_link: format!("/v1/blocks/{id}"),
            },
            block_status: status.wire(),
        }
    }

    /// The payload of a chain topic for block `height`, or `None` for another topic.
    /// `message_index` counts the messages of an events or account-statuses stream.
    pub fn payload(
        &self,
        topic: &str,
        height: u64,
        status: BlockStatus,
        message_index: u64,
        events: Vec<Event>,
    ) -> Option<ChainPayload> {
        Some(match topic {
            "blocks" => ChainPayload::Block(Box::new(self.block(height, status))),
            "block_headers" => ChainPayload::Header(self.header(height)),
            "block_digests" => ChainPayload::Digest(self.digest(height)),
            "events" => ChainPayload::Events(EventsMessage {
                block_id: block_id(height),
                block_height: height.to_string(),
                block_timestamp: self.timestamp(height),
                events,
                message_index,
            }),
            "account_statuses" => ChainPayload::AccountStatuses(AccountStatusesMessage {
                block_id: block_id(height),
                height: height.to_string(),
                account_events: Map::new(),
                message_index,
            }),
            _ => return None,
        })
    }
}

/// flow-go's `EventResponse` (its `events` is omitted when empty).
#[derive(Debug, Clone, Serialize)]
pub struct EventsMessage {
    pub block_id: String,
    pub block_height: String,
    pub block_timestamp: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    pub message_index: u64,
}

/// flow-go's `AccountStatusesResponse`.
#[derive(Debug, Clone, Serialize)]
pub struct AccountStatusesMessage {
    pub block_id: String,
    pub height: String,
    pub account_events: Map<String, Value>,
    pub message_index: u64,
}

/// One chain topic's payload, written as the model itself.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ChainPayload {
    Block(Box<Block>),
    Header(Header),
    Digest(BlockDigest),
    Events(EventsMessage),
    AccountStatuses(AccountStatusesMessage),
}

// The payload models, fields in flow-go's order (the order its encoder writes them).

#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub id: String,
    pub parent_id: String,
    pub height: String,
    pub timestamp: String,
    pub parent_voter_signature: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockDigest {
    pub block_id: String,
    pub height: String,
    pub timestamp: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Block {
    pub header: Header,
    pub payload: Payload,
    #[serde(rename = "_expandable")]
    pub expandable: Map<String, Value>,
    #[serde(rename = "_links")]
    pub links: Links,
    pub block_status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Payload {
    pub collection_guarantees: Vec<CollectionGuarantee>,
    pub block_seals: Vec<BlockSeal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionGuarantee {
    pub collection_id: String,
    pub signer_indices: String,
    pub signature: String,
    pub reference_block_id: String,
    pub cluster_chain_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockSeal {
    pub block_id: String,
    pub result_id: String,
    pub final_state: String,
    pub aggregated_approval_signatures: Vec<Value>,
}

fn parent_id(height: u64) -> String {
    height
        .checked_sub(1)
        .map(block_id)
        .unwrap_or_else(|| "0".repeat(64))
}

/// A Unix time in milliseconds as Go's `time.Time` marshals it in UTC (RFC 3339, fraction
/// without trailing zeros).
pub fn go_time(unix_ms: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(unix_ms);
    let text = humantime::format_rfc3339_millis(time).to_string();
    // "….123Z": drop the fraction's trailing zeros, and the dot with them.
    match text.strip_suffix('Z').and_then(|t| t.rsplit_once('.')) {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                format!("{whole}Z")
            } else {
                format!("{whole}.{fraction}Z")
            }
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn ids_lead_back_to_their_height() {
        for height in [0, 1, 77, u64::from(u32::MAX) + 5] {
            let id = block_id(height);
            assert_eq!(id.len(), 64);
            assert_eq!(height_of(&id), Some(height));
            assert_eq!(height_of(&id.to_uppercase()), Some(height));
        }
        let mut forged = block_id(5);
        forged.replace_range(0..1, if forged.starts_with('0') { "1" } else { "0" });
        assert_eq!(height_of(&forged), None);
    }

    #[test]
    fn go_times_trim_the_fraction() {
        assert_eq!(go_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(go_time(1_500), "1970-01-01T00:00:01.5Z");
        assert_eq!(go_time(1_123), "1970-01-01T00:00:01.123Z");
    }

    #[test]
    fn arguments_in_flow_go_order_and_words() {
        let bad = |value: Value| parse_block_arguments(&args(value)).unwrap_err();
        assert_eq!(bad(json!({"x": 1})), "unexpected field: 'x'");
        assert_eq!(
            bad(json!({"start_block_id": "", "start_block_height": "1"})),
            "can only provide either 'start_block_id' or 'start_block_height'"
        );
        assert_eq!(
            bad(json!({"start_block_id": 5})),
            "'start_block_id' must be a string"
        );
        assert_eq!(
            bad(json!({"start_block_id": "abc"})),
            "invalid 'start_block_id': invalid ID format"
        );
        assert_eq!(
            bad(json!({"start_block_height": 5})),
            "'start_block_height' must be a string"
        );
        assert_eq!(
            bad(json!({"start_block_height": "-1", "block_status": "sealed"})),
            "'start_block_height' must be convertible to uint64: value must be an unsigned 64 bit integer"
        );
        assert_eq!(bad(json!({})), "missing 'block_status' field");
        assert_eq!(
            bad(json!({"block_status": 1})),
            "'block_status' must be string"
        );
        assert_eq!(
            bad(json!({"block_status": ""})),
            "'block_status' field must not be empty"
        );
        assert_eq!(
            bad(json!({"block_status": "executed"})),
            "invalid 'block_status', must be 'finalized' or 'sealed'"
        );
        assert_eq!(
            parse_block_arguments(&args(
                json!({"block_status": "sealed", "start_block_id": block_id(9)})
            )),
            Ok(BlockArguments {
                status: BlockStatus::Sealed,
                start_height: Some(9),
                heartbeat_interval: None,
                filter: None,
                transaction: None,
            })
        );
        let state = |topic, value: Value| parse_arguments(topic, &args(value));
        let events = "invalid arguments for events data provider: ";
        let statuses = "invalid arguments for account statuses data provider: ";
        assert_eq!(
            state("events", json!({"account_addresses": []})).unwrap_err(),
            format!("{events}unexpected field: 'account_addresses'")
        );
        assert_eq!(
            state("events", json!({"heartbeat_interval": 3})).unwrap_err(),
            format!("{events}'heartbeat_interval' must be a string")
        );
        assert_eq!(
            state("events", json!({"heartbeat_interval": "+3"})).unwrap_err(),
            format!("{events}'heartbeat_interval' must be convertible to uint64: strconv.ParseUint: parsing \"+3\": invalid syntax")
        );
        assert_eq!(
            state("account_statuses", json!({"event_types": "x"})).unwrap_err(),
            format!("{statuses}'event_types' must be an array of strings: value must be an array. got string")
        );
        assert_eq!(
            state("events", json!({"contracts": ["A.1.X", 2]})).unwrap_err(),
            format!("{events}'contracts' must be an array of strings: value must be an array of strings. got float64")
        );
        assert_eq!(
            state(
                "events",
                json!({"event_types": ["flow.X"], "contracts": ["A.1"]})
            )
            .unwrap_err(),
            format!("{events}error creating event filter: invalid contract: A.1")
        );
        assert_eq!(
            state("events", json!({"heartbeat_interval": "5"}))
                .unwrap()
                .heartbeat_interval,
            Some(5)
        );
        let tx = "invalid arguments for tx statuses data provider: ";
        for (value, problem) in [
            (json!({}), "missing 'tx_id' field"),
            (json!({"tx_id": 1}), "'tx_id' must be a string"),
            (json!({"tx_id": ""}), "'tx_id' must not be empty"),
            (json!({"tx_id": "ab"}), "invalid 'tx_id': invalid ID format"),
            (json!({"tx_id": "ab", "x": 1}), "unexpected field: 'x'"),
        ] {
            assert_eq!(
                state("transaction_statuses", value).unwrap_err(),
                format!("{tx}{problem}")
            );
        }
        assert_eq!(
            state("send_and_get_transaction_statuses", json!({})).unwrap_err(),
            "invalid arguments for send tx statuses data provider: failed to parse transaction: proposal key not provided"
        );
    }

    #[test]
    fn blocks_use_flow_go_field_names() {
        let chain = Chain::new(1_000);
        let block =
            serde_json::to_value(chain.payload("blocks", 3, BlockStatus::Finalized, 0, Vec::new()))
                .unwrap();
        let events = serde_json::to_string(&chain.payload(
            "events",
            3,
            BlockStatus::Finalized,
            7,
            Vec::new(),
        ))
        .unwrap();
        assert!(events.starts_with(r#"{"block_id":""#), "{events}");
        assert!(events.ends_with(r#"","message_index":7}"#), "{events}");
        assert_eq!(block["header"]["height"], "3");
        assert_eq!(block["header"]["parent_id"], block_id(2));
        assert_eq!(block["payload"]["block_seals"][0]["block_id"], block_id(1));
        assert_eq!(block["block_status"], "BLOCK_FINALIZED");
        assert_eq!(chain.digest(3).block_id, block_id(3));
        assert_eq!(chain.header(0).parent_id, "0".repeat(64));
        let text = serde_json::to_string(&chain.digest(3)).unwrap();
        assert!(text.starts_with(r#"{"block_id":""#), "{text}");
    }
}

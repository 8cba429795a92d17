//! Transactions on the simulated chain: the body `send_and_get_transaction_statuses` takes,
//! read and checked as flow-go's REST parser reads it (`engine/access/rest/common/parser/
//! transaction.go`, through `common.ParseBody`), the ledger of sent transactions and the block
//! each is in, their lifecycle and the `TransactionResult` model the status topics send. No I/O.
//!
//! A transaction sent at some moment goes into the next block; it is pending until that block
//! is finalized, executed one block later and sealed with its block ([`super::chain::SEAL_LAG`]
//! blocks later). Executing it emits the emulator's fee events: FlowToken's `TokensWithdrawn`
//! from the payer, `TokensDeposited` to FlowFees, and FlowFees' `FeesDeducted`.
//!
//! A transaction's id is a hash of its body as sent, not flow-go's RLP hash.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::address;
use super::chain;

/// flow-go's `DefaultTransactionExpiry`: blocks after its reference block a transaction may be
/// included, and blocks a status stream waits for a transaction it has never seen.
pub const TRANSACTION_EXPIRY: u64 = 600;
/// flow-go's `DefaultTransactionExpiryBuffer`.
const EXPIRY_BUFFER: u64 = 30;
/// flow-go's `maxAuthorizers` and `MaxAllowedScriptArguments`.
const MAX_AUTHORIZERS: usize = 100;
const MAX_ARGUMENTS: usize = 100;
/// Sent transactions the ledger remembers; the oldest blocks' are forgotten first.
pub const MAX_TRANSACTIONS: usize = 10_000;
/// The emulator's FlowToken and FlowFees contract accounts.
const FLOW_TOKEN: u64 = 0x0ae5_3cb6_e3f4_2a79;
const FLOW_FEES: u64 = 0xe5a8_b7f2_3e8b_548f;
/// What every simulated transaction costs and uses.
const FEE: &str = "0.00001000";
const COMPUTATION_USED: &str = "9";

/// A transaction body that passed flow-go's parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub id: String,
    pub reference_block_id: String,
    pub payer: u64,
}

/// One field of flow-go's `TransactionsBody` (and its nested models): its JSON name and shape.
#[derive(Clone, Copy)]
enum Shape {
    Text,
    Texts,
    ProposalKey,
    Signatures,
}

const BODY_FIELDS: [(&str, Shape); 9] = [
    ("script", Shape::Text),
    ("arguments", Shape::Texts),
    ("reference_block_id", Shape::Text),
    ("gas_limit", Shape::Text),
    ("payer", Shape::Text),
    ("proposal_key", Shape::ProposalKey),
    ("authorizers", Shape::Texts),
    ("payload_signatures", Shape::Signatures),
    ("envelope_signatures", Shape::Signatures),
];
const PROPOSAL_KEY_FIELDS: [&str; 3] = ["address", "key_index", "sequence_number"];
const SIGNATURE_FIELDS: [&str; 4] = ["address", "key_index", "signature", "extension_data"];

/// Go's `json.Marshal` of the decoded arguments (keys sorted, compact, HTML characters
/// escaped) walked as `json.Decoder` with `DisallowUnknownFields` reads it into flow-go's
/// structs: the first unknown field or ill-typed value is the error, at its offset in that text.
struct GoDecode {
    text: String,
    first_error: Option<String>,
}

impl GoDecode {
    fn literal(&mut self, value: &Value) {
        let written = serde_json::to_string(value).unwrap_or_default();
        let encoded = super::encoding::go_encoded(&written);
        self.text.push_str(encoded.trim_end_matches('\n'));
    }

    fn fail(&mut self, error: String) {
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }

    /// A value of the wrong type. Go reports the offset just past an opening `{` or `[`, and
    /// just past a literal.
    fn type_error(&mut self, value: &Value, path: &str) {
        let start = self.text.len();
        self.literal(value);
        let offset = if value.is_object() || value.is_array() {
            start + 1
        } else {
            self.text.len()
        };
        self.fail(format!(
            "request body contains an invalid value for the {path:?} field (at position {offset})"
        ));
    }

    /// A Go string field: a string or null.
    fn text(&mut self, value: &Value, path: &str) {
        match value {
            Value::String(_) | Value::Null => self.literal(value),
            other => self.type_error(other, path),
        }
    }

    /// A Go `[]string` field.
    fn texts(&mut self, value: &Value, path: &str) {
        match value {
            Value::Array(items) => {
                self.text.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.text.push(',');
                    }
                    self.text(item, path);
                }
                self.text.push(']');
            }
            Value::Null => self.literal(value),
            other => self.type_error(other, path),
        }
    }

    /// A Go struct (or pointer to one) with these fields, matched without regard to case.
    fn object(&mut self, value: &Value, path: &str, fields: &[(&str, Shape)]) {
        let object = match value {
            Value::Object(object) => object,
            Value::Null => return self.literal(value),
            other => return self.type_error(other, path),
        };
        self.text.push('{');
        for (i, (key, item)) in object.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.literal(&Value::String(key.clone()));
            self.text.push(':');
            let field = fields.iter().find(|(name, _)| *name == key).or_else(|| {
                fields
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(key))
            });
            let Some((name, shape)) = field else {
                self.fail(format!("request body contains unknown field {key:?}"));
                self.literal(item);
                continue;
            };
            let path = if path.is_empty() {
                (*name).to_owned()
            } else {
                format!("{path}.{name}")
            };
            match shape {
                Shape::Text => self.text(item, &path),
                Shape::Texts => self.texts(item, &path),
                Shape::ProposalKey => self.object(item, &path, &text_fields(&PROPOSAL_KEY_FIELDS)),
                Shape::Signatures => match item {
                    Value::Array(items) => {
                        self.text.push('[');
                        for (i, signature) in items.iter().enumerate() {
                            if i > 0 {
                                self.text.push(',');
                            }
                            self.object(signature, &path, &text_fields(&SIGNATURE_FIELDS));
                        }
                        self.text.push(']');
                    }
                    Value::Null => self.literal(item),
                    other => self.type_error(other, &path),
                },
            }
        }
        self.text.push('}');
    }
}

fn text_fields<'a>(names: &[&'a str]) -> Vec<(&'a str, Shape)> {
    names.iter().map(|name| (*name, Shape::Text)).collect()
}

/// The value of a field as Go's decoder leaves it: the last spelling of it in key order.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .max_by_key(|(key, _)| (key.as_str() == name, key.as_str()))
        .map(|(_, value)| value)
        .filter(|value| !value.is_null())
}

fn text<'a>(object: &'a Map<String, Value>, name: &str) -> &'a str {
    field(object, name).and_then(Value::as_str).unwrap_or("")
}

fn texts<'a>(object: &'a Map<String, Value>, name: &str) -> Vec<&'a str> {
    field(object, name)
        .and_then(Value::as_array)
        .map(|items| items.iter().map(|i| i.as_str().unwrap_or("")).collect())
        .unwrap_or_default()
}

/// Go's `strconv.ParseUint(text, 10, bits)` with flow-go's `util.ToUint…` texts.
pub fn parse_uint(text: &str, bits: u32) -> Result<u64, String> {
    let overflow = format!("value overflows uint{bits} range");
    let invalid = format!("value must be an unsigned {bits} bit integer");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid);
    }
    let value = text.parse::<u64>().map_err(|_| overflow.clone())?;
    if bits < 64 && value >> bits != 0 {
        return Err(overflow);
    }
    Ok(value)
}

/// Go's `base64.StdEncoding.DecodeString` error text, where one occurs. Go skips line breaks
/// and keeps the unused bits of the last symbol.
fn base64_problem(text: &str) -> Option<String> {
    use base64::engine::{general_purpose::GeneralPurpose, GeneralPurposeConfig};
    const GO_STD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let joined: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let error = GO_STD.decode(&joined).err()?;
    let at = match error {
        base64::DecodeError::InvalidByte(at, _)
        | base64::DecodeError::InvalidLastSymbol { offset: at, .. } => at,
        base64::DecodeError::InvalidLength(length) => length,
        base64::DecodeError::InvalidPadding => joined.len(),
    };
    Some(format!("illegal base64 data at input byte {at}"))
}

fn signatures(object: &Map<String, Value>, name: &str) -> Result<(), String> {
    let Some(items) = field(object, name).and_then(Value::as_array) else {
        return Ok(());
    };
    for item in items {
        let Some(signature) = item.as_object() else {
            continue;
        };
        address::parse_strict(text(signature, "address"))?;
        parse_uint(text(signature, "key_index"), 32)
            .map_err(|e| format!("invalid key index: {e}"))?;
        let raw = text(signature, "signature");
        if raw.is_empty() {
            return Err("invalid signature: missing value".to_owned());
        }
        if base64_problem(raw).is_some() {
            return Err("invalid signature: invalid encoding".to_owned());
        }
        if base64_problem(text(signature, "extension_data")).is_some() {
            return Err("invalid extension data: invalid encoding".to_owned());
        }
    }
    Ok(())
}

/// flow-go's `parseSendAndGetTransactionStatusesArguments`: the arguments are the body.
pub fn parse(arguments: &Map<String, Value>) -> Result<Transaction, String> {
    parse_body(arguments).map_err(|problem| format!("failed to parse transaction: {problem}"))
}

fn parse_body(arguments: &Map<String, Value>) -> Result<Transaction, String> {
    let mut decode = GoDecode {
        text: String::new(),
        first_error: None,
    };
    decode.object(&Value::Object(arguments.clone()), "", &BODY_FIELDS);
    if let Some(error) = decode.first_error {
        return Err(error);
    }
    let proposal_key = field(arguments, "proposal_key").and_then(Value::as_object);
    let Some(proposal_key) = proposal_key else {
        return Err("proposal key not provided".to_owned());
    };
    let script = text(arguments, "script");
    if script.is_empty() {
        return Err("script not provided".to_owned());
    }
    let payer = text(arguments, "payer");
    if payer.is_empty() {
        return Err("payer not provided".to_owned());
    }
    let authorizers = texts(arguments, "authorizers");
    if authorizers.len() > MAX_AUTHORIZERS {
        return Err(format!(
            "too many authorizers. Maximum authorizers allowed: {MAX_AUTHORIZERS}"
        ));
    }
    let script_arguments = texts(arguments, "arguments");
    if script_arguments.len() > MAX_ARGUMENTS {
        return Err(format!(
            "too many arguments. Maximum arguments allowed: {MAX_ARGUMENTS}"
        ));
    }
    let reference_block_id = text(arguments, "reference_block_id");
    if reference_block_id.is_empty() {
        return Err("reference block not provided".to_owned());
    }
    if field(arguments, "envelope_signatures")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Err("envelope signatures not provided".to_owned());
    }
    for argument in script_arguments.iter().filter(|a| !a.is_empty()) {
        if let Some(problem) = base64_problem(argument) {
            return Err(format!("invalid argument encoding: {problem}"));
        }
    }
    let payer = address::parse_strict(payer).map_err(|e| format!("invalid payer: {e}"))?;
    for authorizer in &authorizers {
        address::parse_strict(authorizer)?;
    }
    address::parse_strict(text(proposal_key, "address"))?;
    parse_uint(text(proposal_key, "key_index"), 32)
        .map_err(|e| format!("invalid key index: {e}"))?;
    parse_uint(text(proposal_key, "sequence_number"), 64)
        .map_err(|e| format!("invalid sequence number: {e}"))?;
    signatures(arguments, "payload_signatures")?;
    signatures(arguments, "envelope_signatures")?;
    if base64_problem(script).is_some() {
        return Err("invalid transaction script encoding".to_owned());
    }
    if reference_block_id.len() != 64 || !reference_block_id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err("invalid reference block ID: invalid ID format".to_owned());
    }
    parse_uint(text(arguments, "gas_limit"), 64).map_err(|e| format!("invalid gas limit: {e}"))?;
    let mut hasher = Sha256::new();
    hasher.update(b"relaydeck flow transaction ");
    hasher.update(decode.text.as_bytes());
    let id = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Transaction {
        id,
        reference_block_id: reference_block_id.to_ascii_lowercase(),
        payer,
    })
}

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
        } else if finalized_head < self.height + chain::SEAL_LAG {
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
            TxStatus::Executed => Some(self.height + chain::SEAL_LAG),
            TxStatus::Sealed | TxStatus::Expired => None,
        }
    }
}

/// Why a parsed transaction is not accepted (flow-go's `TransactionValidator`).
pub fn validate(transaction: &Transaction, finalized_head: u64) -> Result<(), String> {
    let reference = chain::height_of(&transaction.reference_block_id)
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
    pub links: chain::Links,
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
            .map(|i| chain::block_id(i.height))
            .unwrap_or_default(),
        collection_id: in_block
            .map(|i| chain::collection_id(i.height))
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
        links: chain::Links {
            self_link: format!("/v1/transaction_results/{id}"),
        },
    }
}

/// The body a client would send: a valid transaction referencing `reference_block_id`.
#[cfg(test)]
pub fn example_body(reference_block_id: &str) -> Map<String, Value> {
    let service = format!("0x{}", address::hex(address::account(1)));
    let body = serde_json::json!({
        "script": base64::engine::general_purpose::STANDARD.encode("transaction { prepare(signer: &Account) {} }"),
        "arguments": [],
        "reference_block_id": reference_block_id,
        "gas_limit": "9999",
        "payer": service,
        "proposal_key": {"address": service, "key_index": "0", "sequence_number": "0"},
        "authorizers": [service],
        "payload_signatures": [],
        "envelope_signatures": [{"address": service, "key_index": "0", "signature": "AAEC"}],
    });
    body.as_object().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    /// The refusal of the example body with `key` set to `value` (removed when `None`).
    fn refusal(key: &str, value: Option<Value>) -> String {
        let mut body = example_body(&chain::block_id(3));
        match value {
            Some(value) => body.insert(key.to_owned(), value),
            None => body.remove(key),
        };
        parse(&body).unwrap_err()
    }

    #[test]
    fn a_good_body_parses_and_its_id_is_stable() {
        let body = example_body(&chain::block_id(3));
        let first = parse(&body).unwrap();
        assert_eq!(first, parse(&body).unwrap());
        assert_eq!(first.id.len(), 64);
        assert_eq!(first.payer, address::account(1));
        assert_eq!(first.reference_block_id, chain::block_id(3));
    }

    #[test]
    fn bodies_are_refused_in_flow_go_order_with_its_texts() {
        let cases = [
            (
                "nonce",
                Some(json!(1)),
                "request body contains unknown field \"nonce\"",
            ),
            ("proposal_key", None, "proposal key not provided"),
            ("script", Some(json!("")), "script not provided"),
            ("payer", None, "payer not provided"),
            (
                "reference_block_id",
                Some(Value::Null),
                "reference block not provided",
            ),
            (
                "envelope_signatures",
                Some(json!([])),
                "envelope signatures not provided",
            ),
            (
                "arguments",
                Some(json!(["!!"])),
                "invalid argument encoding: illegal base64 data at input byte 0",
            ),
            (
                "payer",
                Some(json!("0x12")),
                "invalid payer: invalid address",
            ),
            (
                "gas_limit",
                Some(json!("-1")),
                "invalid gas limit: value must be an unsigned 64 bit integer",
            ),
            (
                "gas_limit",
                Some(json!("+1")),
                "invalid gas limit: value must be an unsigned 64 bit integer",
            ),
            (
                "reference_block_id",
                Some(json!("abc")),
                "invalid reference block ID: invalid ID format",
            ),
            (
                "script",
                Some(json!("%%")),
                "invalid transaction script encoding",
            ),
        ];
        for (key, value, expected) in cases {
            assert_eq!(
                refusal(key, value),
                format!("failed to parse transaction: {expected}")
            );
        }
        assert!(refusal("gas_limit", Some(json!(5))).starts_with(
            "failed to parse transaction: request body contains an invalid value for the \"gas_limit\" field (at position "
        ));
    }

    #[test]
    fn the_type_error_names_the_position_after_the_value() {
        let mut body = Map::new();
        body.insert("gas_limit".into(), json!(5));
        // {"gas_limit":5  -> the value ends at byte 14.
        assert_eq!(
            parse(&body).unwrap_err(),
            "failed to parse transaction: request body contains an invalid value for the \"gas_limit\" field (at position 14)"
        );
        let mut body = Map::new();
        body.insert("proposal_key".into(), json!({"key_index": 0}));
        assert_eq!(
            parse(&body).unwrap_err(),
            "failed to parse transaction: request body contains an invalid value for the \"proposal_key.key_index\" field (at position 30)"
        );
    }

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
        let tx = parse(&example_body(&chain::block_id(3))).unwrap();
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
            chain::block_id(8),
            chain::collection_id(8)
        )), "{sealed}");
        let pending =
            serde_json::to_string(&result(&tx.id, Some(&included), TxStatus::Pending)).unwrap();
        assert!(pending.starts_with(r#"{"block_id":"","collection_id":"","execution":"Pending","status":"Pending","status_code":0,"error_message":"","computation_used":"0","events":[],"_links":{"_self":"/v1/transaction_results/"#), "{pending}");
    }

    #[test]
    fn sends_are_validated_against_the_chain() {
        let tx = parse(&example_body(&chain::block_id(3))).unwrap();
        assert_eq!(validate(&tx, 2), Err("unknown reference block".to_owned()));
        assert_eq!(validate(&tx, 3), Ok(()));
        assert_eq!(
            validate(&tx, 600),
            Err("transaction is expired: ref_height=3 final_height=600".to_owned())
        );
    }
}

//! The body `send_and_get_transaction_statuses` takes, read and checked as flow-go's REST
//! parser reads it (`engine/access/rest/common/parser/transaction.go`, through
//! `common.ParseBody`): Go's decoder first (unknown fields, types), then the parser's checks in
//! its order and with its texts. A transaction's id is a hash of its body as sent, not
//! flow-go's RLP hash. No I/O.

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::address;

/// flow-go's `maxAuthorizers` and `MaxAllowedScriptArguments`.
const MAX_AUTHORIZERS: usize = 100;
const MAX_ARGUMENTS: usize = 100;

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
    use crate::server::flow::ids;
    use serde_json::json;

    /// The refusal of the example body with `key` set to `value` (removed when `None`).
    fn refusal(key: &str, value: Option<Value>) -> String {
        let mut body = example_body(&ids::block_id(3));
        match value {
            Some(value) => body.insert(key.to_owned(), value),
            None => body.remove(key),
        };
        parse(&body).unwrap_err()
    }

    #[test]
    fn a_good_body_parses_and_its_id_is_stable() {
        let body = example_body(&ids::block_id(3));
        let first = parse(&body).unwrap();
        assert_eq!(first, parse(&body).unwrap());
        assert_eq!(first.id.len(), 64);
        assert_eq!(first.payer, address::account(1));
        assert_eq!(first.reference_block_id, ids::block_id(3));
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
}

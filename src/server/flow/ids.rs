//! The simulated chain's identifiers: block and collection ids derived from heights (so an id
//! leads back to its block), and the hashes the blocks' other fields are made of. Both the
//! chain and the transactions it carries name blocks by these.

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How many blocks a block waits after its finalization to be sealed.
pub const SEAL_LAG: u64 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct Links {
    #[serde(rename = "_self")]
    pub self_link: String,
}

pub fn hash(label: &str, height: u64) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"relaydeck flow ");
    hasher.update(label.as_bytes());
    hasher.update(height.to_be_bytes());
    hasher.finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The id of the one collection block `height` has; the transactions sent into the block are in it.
pub fn collection_id(height: u64) -> String {
    hex(&hash("collection", height))
}

/// A block's id: 24 bytes of hash, then the height, so that an id leads back to its block.
pub fn block_id(height: u64) -> String {
    let digest = hash("block", height);
    format!("{}{height:016x}", hex(&digest[..24]))
}

/// The height a block id names, if it is one of this chain's ids.
pub fn height_of(id: &str) -> Option<u64> {
    let height = u64::from_str_radix(id.get(48..)?, 16).ok()?;
    (block_id(height) == id.to_ascii_lowercase()).then_some(height)
}

//! MessagePack game data, as signal-fish-server 0.12 puts it on the wire: the binary envelope
//! a member that negotiated `message_pack` receives (the payload's bytes untouched inside it),
//! and the payload decoded to JSON for a member that negotiated JSON.
//!
//! The v3 envelope is a map `{from_player, encoding, payload, seq, epoch}`; the v2 one lacks
//! the two delivery stamps. `from_player` is the UUID's 16 bytes, `payload` a bin.

use serde_json::Value;

/// 0.12's bound on MessagePack nesting before a decode (the same as serde_json's for JSON).
pub const MAX_NESTING_DEPTH: usize = 128;

/// The envelope around `payload`; `stamp` (sequence number, epoch) for v3 recipients. None
/// when `from_player` is not a UUID (every player id minted here is one).
pub fn envelope(from_player: &str, payload: &[u8], stamp: Option<(u64, u32)>) -> Option<Vec<u8>> {
    let id = uuid::Uuid::parse_str(from_player).ok()?;
    let mut out = Vec::with_capacity(payload.len() + 96);
    let fields = if stamp.is_some() { 5 } else { 3 };
    // Writing into a Vec cannot fail.
    let written = (|| -> Result<(), rmp::encode::ValueWriteError> {
        rmp::encode::write_map_len(&mut out, fields)?;
        rmp::encode::write_str(&mut out, "from_player")?;
        rmp::encode::write_bin(&mut out, id.as_bytes())?;
        rmp::encode::write_str(&mut out, "encoding")?;
        rmp::encode::write_str(&mut out, "message_pack")?;
        rmp::encode::write_str(&mut out, "payload")?;
        rmp::encode::write_bin(&mut out, payload)?;
        if let Some((seq, epoch)) = stamp {
            rmp::encode::write_str(&mut out, "seq")?;
            rmp::encode::write_uint(&mut out, seq)?;
            rmp::encode::write_str(&mut out, "epoch")?;
            rmp::encode::write_uint(&mut out, u64::from(epoch))?;
        }
        Ok(())
    })();
    written.ok().map(|()| out)
}

/// The payload as JSON, or why it cannot be (too deep, not MessagePack, or holding what JSON
/// has no form for, such as bins): such a frame reaches no JSON member, as upstream.
pub fn to_json(payload: &[u8]) -> Result<Value, String> {
    if !depth_within(payload, MAX_NESTING_DEPTH) {
        return Err(format!(
            "MessagePack nesting exceeds the {MAX_NESTING_DEPTH}-level decode limit"
        ));
    }
    let mut reader = payload;
    let value: Value = rmp_serde::from_read(&mut reader).map_err(|e| e.to_string())?;
    if !reader.is_empty() {
        return Err("trailing bytes after the MessagePack value".to_owned());
    }
    Ok(value)
}

/// How a MessagePack payload reads in the flight recorder and to an admin tapping the peer.
pub fn describe(payload: &[u8]) -> String {
    match to_json(payload) {
        Ok(value) => format!("<{} bytes of MessagePack> {value}", payload.len()),
        Err(_) => format!("<{} binary bytes>", payload.len()),
    }
}

/// Whether no container in `bytes` nests deeper than `limit`, scanned with an explicit stack
/// so that hostile input cannot exhaust ours. Malformed input passes: the decoder refuses it.
fn depth_within(bytes: &[u8], limit: usize) -> bool {
    use rmp::Marker;
    // Each entry: values still to read in an open container.
    let mut open: Vec<u64> = Vec::new();
    let mut rest = bytes;
    loop {
        let Some((&first, tail)) = rest.split_first() else {
            return true;
        };
        rest = tail;
        let take = |rest: &mut &[u8], n: usize| -> Option<u64> {
            let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
            *rest = tail;
            Some(head.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
        };
        let skip = |rest: &mut &[u8], n: u64| -> bool {
            match usize::try_from(n).ok().and_then(|n| rest.get(n..)) {
                Some(tail) => {
                    *rest = tail;
                    true
                }
                None => false,
            }
        };
        let children = match Marker::from_u8(first) {
            Marker::FixArray(n) => Some(u64::from(n)),
            Marker::FixMap(n) => Some(u64::from(n) * 2),
            Marker::Array16 => take(&mut rest, 2),
            Marker::Array32 => take(&mut rest, 4),
            Marker::Map16 => take(&mut rest, 2).map(|n| n * 2),
            Marker::Map32 => take(&mut rest, 4).map(|n| n * 2),
            marker => {
                let length = match marker {
                    Marker::U8 | Marker::I8 => Some(1),
                    Marker::U16 | Marker::I16 => Some(2),
                    Marker::U32 | Marker::I32 | Marker::F32 => Some(4),
                    Marker::U64 | Marker::I64 | Marker::F64 => Some(8),
                    Marker::FixStr(n) => Some(u64::from(n)),
                    Marker::Str8 | Marker::Bin8 => take(&mut rest, 1),
                    Marker::Str16 | Marker::Bin16 => take(&mut rest, 2),
                    Marker::Str32 | Marker::Bin32 => take(&mut rest, 4),
                    Marker::FixExt1 => Some(2),
                    Marker::FixExt2 => Some(3),
                    Marker::FixExt4 => Some(5),
                    Marker::FixExt8 => Some(9),
                    Marker::FixExt16 => Some(17),
                    Marker::Ext8 => take(&mut rest, 1).map(|n| n + 1),
                    Marker::Ext16 => take(&mut rest, 2).map(|n| n + 1),
                    Marker::Ext32 => take(&mut rest, 4).map(|n| n + 1),
                    _ => Some(0),
                };
                match length {
                    Some(n) if skip(&mut rest, n) => None,
                    _ => return true,
                }
            }
        };
        match children {
            Some(0) | None => {}
            Some(n) => {
                open.push(n);
                if open.len() > limit {
                    return false;
                }
                continue;
            }
        }
        // A scalar (or an empty container) was read: it fills a slot of the innermost one.
        while let Some(remaining) = open.last_mut() {
            *remaining -= 1;
            if *remaining > 0 {
                break;
            }
            open.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALICE: &str = "5f0c2f3e-8a49-4b8e-9d61-0f7d3c2a1b00";

    #[test]
    fn the_v3_envelope_carries_the_payload_untouched_and_the_sdk_reads_it() {
        let payload = rmp_serde::to_vec_named(&json!({"x": 1, "name": "move"})).unwrap();
        let frame = envelope(ALICE, &payload, Some((7, 2))).unwrap();
        let decoded = signal_fish_client::decode_v3_binary_game_data(&frame).unwrap();
        assert_eq!(decoded.payload, payload);
        assert_eq!((decoded.seq, decoded.epoch), (7, 2));
        assert_eq!(decoded.from_player.to_string(), ALICE);
        assert!(envelope("not-a-uuid", &payload, None).is_none());
    }

    #[test]
    fn payloads_decode_to_json_within_the_nesting_limit() {
        let payload = rmp_serde::to_vec_named(&json!({"a": [1, "two", null]})).unwrap();
        assert_eq!(to_json(&payload).unwrap(), json!({"a": [1, "two", null]}));
        assert!(describe(&payload).contains(r#"{"a":[1,"two",null]}"#));

        let deep = |levels: usize| {
            let mut bytes = vec![0x91; levels];
            bytes.push(0x01);
            bytes
        };
        assert!(to_json(&deep(MAX_NESTING_DEPTH)).is_ok());
        assert!(to_json(&deep(MAX_NESTING_DEPTH + 1)).is_err());
        assert!(to_json(&[0xc4, 0x01, 0xff]).is_err(), "JSON has no bins");
        assert!(to_json(&[0x01, 0x02]).is_err(), "one value only");
        assert!(to_json(&[0xdc, 0xff]).is_err(), "truncated");
        assert_eq!(describe(&[0xc1]), "<1 binary bytes>");
    }
}

//! Flow account addresses of the simulated chain, which is an emulator network
//! (`flow-emulator`): flow-go's `[64,45]` linear code with the transient networks' code word
//! (`model/flow/address.go`, `chain.go`). An address is valid when, XORed with that word, it is
//! a non-zero code word. No I/O.

/// The emulator networks' code word (flow-go's `invalidCodeTransientNetwork`).
const TRANSIENT_CODE_WORD: u64 = 0x1cb1_5985_7af0_2018;

/// The name flow-go gives the simulated chain in its messages.
pub const CHAIN_ID: &str = "flow-emulator";

/// Rows of the generator matrix: the code word of index `i` is the XOR of the rows of its set bits.
const GENERATOR_ROWS: [u64; 45] = [
    0xe467b9dd11fa00df,
    0xf233dcee88fe0abe,
    0xf919ee77447b7497,
    0xfc8cf73ba23a260d,
    0xfe467b9dd11ee2a1,
    0xff233dcee888d807,
    0xff919ee774476ce6,
    0x7fc8cf73ba231d10,
    0x3fe467b9dd11b183,
    0x1ff233dcee8f96d6,
    0x8ff919ee774757ba,
    0x47fc8cf73ba2b331,
    0x23fe467b9dd27f6c,
    0x11ff233dceee8e82,
    0x88ff919ee775dd8f,
    0x447fc8cf73b905e4,
    0xa23fe467b9de0d83,
    0xd11ff233dce8d5a7,
    0xe88ff919ee73c38a,
    0x7447fc8cf73f171f,
    0xba23fe467b9dcb2b,
    0xdd11ff233dcb0cb4,
    0xee88ff919ee26c5d,
    0x77447fc8cf775dd3,
    0x3ba23fe467b9b5a1,
    0x9dd11ff233d9117a,
    0xcee88ff919efa640,
    0xe77447fc8cf3e297,
    0x73ba23fe467fabd2,
    0xb9dd11ff233fb16c,
    0xdcee88ff919adde7,
    0xee77447fc8ceb196,
    0xf73ba23fe4621cd0,
    0x7b9dd11ff2379ac3,
    0x3dcee88ff91df46c,
    0x9ee77447fc88e702,
    0xcf73ba23fe4131b6,
    0x67b9dd11ff240f9a,
    0x33dcee88ff90f9e0,
    0x19ee77447fcff4e3,
    0x8cf73ba23fe64091,
    0x467b9dd11ff115c7,
    0x233dcee88ffdb735,
    0x919ee77447fe2309,
    0xc8cf73ba23fdc736,
];

/// Columns of the parity-check matrix, bit 0 of the word first.
const PARITY_COLUMNS: [u32; 64] = [
    0x00001, 0x00002, 0x00004, 0x00008, 0x00010, 0x00020, 0x00040, 0x00080, 0x00100, 0x00200,
    0x00400, 0x00800, 0x01000, 0x02000, 0x04000, 0x08000, 0x10000, 0x20000, 0x40000, 0x7328d,
    0x6689a, 0x6112f, 0x6084b, 0x433fd, 0x42aab, 0x41951, 0x233ce, 0x22a81, 0x21948, 0x1ef60,
    0x1deca, 0x1c639, 0x1bdd8, 0x1a535, 0x194ac, 0x18c46, 0x1632b, 0x1529b, 0x14a43, 0x13184,
    0x12942, 0x118c1, 0x0f812, 0x0e027, 0x0d00e, 0x0c83c, 0x0b01d, 0x0a831, 0x0982b, 0x07034,
    0x0682a, 0x05819, 0x03807, 0x007d2, 0x00727, 0x0068e, 0x0067c, 0x0059d, 0x004eb, 0x003b4,
    0x0036a, 0x002d9, 0x001c7, 0x0003f,
];

/// The emulator's `index`-th account address (1 is the service account).
pub fn account(index: u64) -> u64 {
    let mut word = index;
    let mut code = 0;
    for row in GENERATOR_ROWS {
        if word & 1 == 1 {
            code ^= row;
        }
        word >>= 1;
    }
    code ^ TRANSIENT_CODE_WORD
}

/// flow-go's `chain.IsValid` for the emulator network.
pub fn is_valid(address: u64) -> bool {
    let mut code = address ^ TRANSIENT_CODE_WORD;
    if code == 0 {
        return false;
    }
    let mut parity = 0;
    for column in PARITY_COLUMNS {
        if code & 1 == 1 {
            parity ^= column;
        }
        code >>= 1;
    }
    parity == 0
}

/// flow-go's lenient `flow.HexToAddress`: an optional `0x`, an odd length padded with a zero,
/// the last eight bytes kept; text that is not hex reads as the empty address (zero).
pub fn from_hex_lenient(text: &str) -> u64 {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return 0;
    }
    // The last sixteen digits are the last eight bytes; a longer prefix is dropped.
    let tail = &digits[digits.len().saturating_sub(16)..];
    u64::from_str_radix(tail, 16).unwrap_or(0)
}

/// An address as flow-go's `Address.String()` writes it: sixteen lowercase hex digits.
pub fn hex(address: u64) -> String {
    format!("{address:016x}")
}

/// flow-go's strict `parser.ParseAddress` (transactions): sixteen hex digits after an optional
/// `0x`, valid on the chain, with flow-go's texts.
pub fn parse_strict(text: &str) -> Result<u64, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("invalid address".to_owned());
    }
    let address = from_hex_lenient(digits);
    if !is_valid(address) {
        return Err(format!(
            "rpc error: code = InvalidArgument desc = address {} is invalid for chain {CHAIN_ID}",
            hex(address)
        ));
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emulator_accounts_are_the_ones_flow_tools_print() {
        assert_eq!(hex(account(1)), "f8d6e0586b0a20c7");
        assert_eq!(hex(account(2)), "ee82856bf20e2aa6");
        assert_eq!(hex(account(3)), "0ae53cb6e3f42a79");
        assert_eq!(hex(account(4)), "e5a8b7f23e8b548f");
        for index in 1..50 {
            assert!(is_valid(account(index)), "{index}");
        }
        assert!(!is_valid(0));
        assert!(!is_valid(account(1) ^ 1));
        // A mainnet address is not an emulator address.
        assert!(!is_valid(0x1654653399040a61));
    }

    #[test]
    fn hex_is_read_as_flow_go_reads_it() {
        assert_eq!(from_hex_lenient("0xf8d6e0586b0a20c7"), account(1));
        assert_eq!(from_hex_lenient("1"), 1);
        assert_eq!(from_hex_lenient("zz"), 0);
        assert_eq!(from_hex_lenient("00f8d6e0586b0a20c7"), account(1));
        assert_eq!(parse_strict("f8d6e0586b0a20c7"), Ok(account(1)));
        assert_eq!(parse_strict("f8d6"), Err("invalid address".to_owned()));
        assert_eq!(
            parse_strict("0x1654653399040a61").unwrap_err(),
            "rpc error: code = InvalidArgument desc = address 1654653399040a61 is invalid for chain flow-emulator"
        );
    }
}

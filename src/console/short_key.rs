//! A table row's key as the index holds it: inline when short, as peer ids and room codes
//! are, so that indexing 100,000 rows allocates nothing and dropping the index frees nothing.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;

/// Keys up to this many bytes are kept inline; with the length and the tag, a key takes
/// three words, as a boxed one would with its tag.
const INLINE: usize = 22;

#[derive(Clone)]
pub enum ShortKey {
    Inline { len: u8, bytes: [u8; INLINE] },
    Boxed(Box<str>),
}

impl ShortKey {
    pub fn new(key: &str) -> ShortKey {
        let source = key.as_bytes();
        match u8::try_from(source.len()) {
            Ok(len) if source.len() <= INLINE => {
                let mut bytes = [0u8; INLINE];
                for (slot, byte) in bytes.iter_mut().zip(source) {
                    *slot = *byte;
                }
                ShortKey::Inline { len, bytes }
            }
            _ => ShortKey::Boxed(key.into()),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ShortKey::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(&[]),
            ShortKey::Boxed(key) => key.as_bytes(),
        }
    }
}

impl Deref for ShortKey {
    type Target = str;

    fn deref(&self) -> &str {
        // The inline bytes are a whole `&str` copied, so they are always UTF-8.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl PartialEq for ShortKey {
    fn eq(&self, other: &ShortKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ShortKey {}

impl PartialOrd for ShortKey {
    fn partial_cmp(&self, other: &ShortKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// As `str` orders: byte by byte.
impl Ord for ShortKey {
    fn cmp(&self, other: &ShortKey) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for ShortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_keys_read_back_and_order_as_text() {
        let keys = [
            "",
            "p1",
            "p10",
            "é-ü",
            "exactly-twenty-two-by",
            "twenty-three-bytes-key!",
            "a much longer key that cannot be kept inline",
        ];
        for a in keys {
            let short = ShortKey::new(a);
            assert_eq!(&*short, a);
            for b in keys {
                assert_eq!(short.cmp(&ShortKey::new(b)), a.cmp(b), "{a} vs {b}");
                assert_eq!(short == ShortKey::new(b), a == b);
            }
        }
        assert!(matches!(ShortKey::new("p12345"), ShortKey::Inline { .. }));
        assert!(matches!(
            ShortKey::new("twenty-three-bytes-key!"),
            ShortKey::Boxed(_)
        ));
    }
}

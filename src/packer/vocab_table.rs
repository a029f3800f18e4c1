//! The layout of a vocabulary's lookup table, shared by `build.rs` (which builds the table) and
//! [`bpe`](super::bpe) (which reads it): open addressing with linear probing over little-endian
//! u32 entries, each `(token id + 1) << TAG_BITS | tag` (0: empty), where the tag is the low
//! bits of the token's hash and the slot is found from its high bits.

/// Bits of an entry that hold the hash tag; the rest hold the token id + 1.
pub const TAG_BITS: u32 = 14;
pub const TAG_MASK: u32 = (1 << TAG_BITS) - 1;

/// How many slots a table for `tokens` tokens has (a power of two, at most 4/5 full).
pub const fn slots(tokens: usize) -> usize {
    (tokens + tokens / 4).next_power_of_two()
}

/// The first slot to probe for a hash, in a table of `slots` slots.
pub fn home(hash: u64, slots: usize) -> usize {
    (hash >> (64 - slots.trailing_zeros())) as usize
}

/// A 64-bit hash of a short byte string (a multiply-rotate over 8-byte words).
pub fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut state = (bytes.len() as u64).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        state = (state.rotate_left(23) ^ word).wrapping_mul(K);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        state = (state.rotate_left(23) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    state ^ (state >> 29)
}

//! Exact token counts for OpenAI's o200k_base and cl100k_base encodings, as tiktoken computes
//! them: cut the text into pieces ([`pretokenize`](super::pretokenize)), then count each piece
//! as one token when it is in the vocabulary, else by tiktoken's byte-pair merge (repeatedly
//! join the adjacent pair whose joined bytes have the lowest rank, leftmost first).
//!
//! The vocabulary is compact and needs no loading: every token's bytes back to back, where each
//! starts, and an open-addressing table from bytes to token id, all built by `build.rs` and
//! compiled into the binary. A token's id is its merge rank. Code repeats its words, so
//! each thread remembers the counts of the pieces it had to merge, in a small bounded table.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::pretokenize::{Rules, pieces};
use super::vocab_table::{self, TAG_BITS, TAG_MASK, hash};

/// One encoding's tokens, as `build.rs` laid them out in the binary: nothing is loaded, and
/// only the pages a pack touches are read in.
pub struct Vocabulary {
    rules: Rules,
    /// Every token's bytes, by id.
    bytes: &'static [u8],
    /// Where token `id` starts in `bytes` (u32 at `4 * id`); the next one is where it ends.
    starts: &'static [u8],
    /// The lookup table ([`vocab_table`]).
    table: &'static [u8],
    slots: usize,
}

macro_rules! vocabulary {
    ($rules:expr, $name:literal) => {
        Vocabulary::new(
            $rules,
            include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".bytes")),
            include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".starts")),
            include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".table")),
        )
    };
}

static O200K: Vocabulary = vocabulary!(Rules::O200k, "o200k_base");
static CL100K: Vocabulary = vocabulary!(Rules::Cl100k, "cl100k_base");

/// o200k_base.
pub fn o200k_base() -> &'static Vocabulary {
    &O200K
}

/// cl100k_base.
pub fn cl100k_base() -> &'static Vocabulary {
    &CL100K
}

fn u32_at(bytes: &[u8], index: usize) -> u32 {
    let at = index * 4;
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl Vocabulary {
    const fn new(
        rules: Rules,
        bytes: &'static [u8],
        starts: &'static [u8],
        table: &'static [u8],
    ) -> Self {
        let slots = vocab_table::slots(starts.len() / 4 - 1);
        // Checked when compiling: the statics are built by this function.
        assert!(
            table.len() == slots * 4,
            "the table has the layout of vocab_table"
        );
        Self {
            rules,
            bytes,
            starts,
            table,
            slots,
        }
    }

    /// How many tokens there are.
    pub fn tokens(&self) -> usize {
        self.starts.len() / 4 - 1
    }

    fn token(&self, id: u32) -> &'static [u8] {
        let id = id as usize;
        &self.bytes[u32_at(self.starts, id) as usize..u32_at(self.starts, id + 1) as usize]
    }

    /// The rank (id) of the token whose bytes are `bytes`, if there is one.
    pub fn rank(&self, bytes: &[u8]) -> Option<u32> {
        self.rank_hashed(bytes, hash(bytes))
    }

    fn rank_hashed(&self, bytes: &[u8], hash: u64) -> Option<u32> {
        let tag = hash as u32 & TAG_MASK;
        let mut slot = vocab_table::home(hash, self.slots);
        loop {
            let entry = u32_at(self.table, slot);
            if entry == 0 {
                return None;
            }
            if entry & TAG_MASK == tag {
                let id = (entry >> TAG_BITS) - 1;
                if self.token(id) == bytes {
                    return Some(id);
                }
            }
            slot = (slot + 1) & (self.slots - 1);
        }
    }

    /// The number of tokens tiktoken encodes `text` into (no special tokens).
    pub fn count(&self, text: &str) -> u64 {
        MEMO.with(|memo| {
            let mut memo = memo.borrow_mut();
            pieces(self.rules, text)
                .map(|piece| self.count_piece(piece.as_bytes(), &mut memo) as u64)
                .sum()
        })
    }

    fn count_piece(&self, piece: &[u8], memo: &mut Memo) -> usize {
        let hash = hash(piece);
        if self.rank_hashed(piece, hash).is_some() {
            return 1;
        }
        if let Some(count) = memo.get(self.rules, piece, hash) {
            return count;
        }
        let count = if piece.len() <= 256 {
            self.merge_small(piece, &mut memo.parts)
        } else {
            self.merge_large(piece)
        };
        memo.put(self.rules, piece, hash, count);
        count
    }

    /// The rank of `piece[from..to]`, or `u32::MAX` when it is not a token.
    fn pair_rank(&self, piece: &[u8], from: usize, to: usize) -> u32 {
        self.rank(&piece[from..to]).unwrap_or(u32::MAX)
    }

    /// tiktoken's merge as tiktoken writes it: a scan for the lowest rank per merge, quadratic
    /// but quicker than a heap up to a few hundred bytes. `parts` holds (start, rank of the part joined with the next).
    fn merge_small(&self, piece: &[u8], parts: &mut Vec<(usize, u32)>) -> usize {
        parts.clear();
        for start in 0..piece.len() - 1 {
            parts.push((start, self.pair_rank(piece, start, start + 2)));
        }
        parts.push((piece.len() - 1, u32::MAX));
        parts.push((piece.len(), u32::MAX));
        // The rank of part `index` joined with the next one, once they are adjacent.
        let rank_after = |parts: &[(usize, u32)], index: usize| {
            if index + 3 < parts.len() {
                self.pair_rank(piece, parts[index].0, parts[index + 3].0)
            } else {
                u32::MAX
            }
        };
        loop {
            let (mut best, mut best_rank) = (0, u32::MAX);
            for (index, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
                if rank < best_rank {
                    (best, best_rank) = (index, rank);
                }
            }
            if best_rank == u32::MAX {
                break;
            }
            if best > 0 {
                parts[best - 1].1 = rank_after(parts, best - 1);
            }
            parts[best].1 = rank_after(parts, best);
            parts.remove(best + 1);
        }
        parts.len() - 1
    }

    /// The same merge with a heap and a linked list, for long pieces (runs of symbols or
    /// spaces, long words): the lowest (rank, start) is the pair tiktoken's scan would pick.
    fn merge_large(&self, piece: &[u8]) -> usize {
        let len = piece.len();
        // Parts are named by their start; `next[start]` is the next part's start.
        let mut next: Vec<usize> = (1..=len).collect();
        let mut previous: Vec<usize> = (0..len).map(|start| start.wrapping_sub(1)).collect();
        let mut alive = vec![true; len];
        let mut rank: Vec<u32> = vec![u32::MAX; len];
        let mut heap = BinaryHeap::with_capacity(len);
        for (start, pair) in rank.iter_mut().enumerate().take(len - 1) {
            *pair = self.pair_rank(piece, start, start + 2);
            if *pair != u32::MAX {
                heap.push(Reverse((*pair, start)));
            }
        }
        let mut parts = len;
        while let Some(Reverse((found, start))) = heap.pop() {
            if !alive[start] || rank[start] != found {
                continue;
            }
            // Join `start` with the part after it.
            let gone = next[start];
            alive[gone] = false;
            next[start] = next[gone];
            if next[start] < len {
                previous[next[start]] = start;
            }
            parts -= 1;
            let after = next[start];
            rank[start] = if after < len {
                self.pair_rank(piece, start, next[after])
            } else {
                u32::MAX
            };
            if rank[start] != u32::MAX {
                heap.push(Reverse((rank[start], start)));
            }
            if start > 0 {
                let before = previous[start];
                rank[before] = self.pair_rank(piece, before, next[start]);
                if rank[before] != u32::MAX {
                    heap.push(Reverse((rank[before], before)));
                }
            }
        }
        parts
    }
}

/// Pieces up to this long are remembered in fixed slots; longer ones in a map.
const MEMO_KEY: usize = 26;
const MEMO_SLOTS: usize = 1 << 13;
/// The long pieces remembered hold at most this many bytes (then the map starts again).
const MEMO_LONG_BYTES: usize = 256 << 10;

/// Counts of pieces that are not tokens. Short pieces take one slot per hash (a newer piece
/// takes the slot); long ones (runs of symbols or spaces repeated from file to file) go in a
/// map that is emptied when full: under 1 MiB per thread, whatever the repository.
struct Memo {
    slots: Vec<MemoSlot>,
    /// One map per encoding (indexed by `o200k as usize`).
    long: [HashMap<Box<[u8]>, u32>; 2],
    long_bytes: usize,
    /// Scratch space for [`Vocabulary::merge_small`].
    parts: Vec<(usize, u32)>,
}

#[derive(Clone, Copy)]
struct MemoSlot {
    len: u8,
    o200k: bool,
    count: u32,
    key: [u8; MEMO_KEY],
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo {
        slots: Vec::new(),
        long: [HashMap::new(), HashMap::new()],
        long_bytes: 0,
        parts: Vec::new(),
    });
}

impl Memo {
    fn slot(hash: u64) -> usize {
        (hash >> 40) as usize & (MEMO_SLOTS - 1)
    }

    fn get(&self, rules: Rules, piece: &[u8], hash: u64) -> Option<usize> {
        let o200k = rules == Rules::O200k;
        if piece.len() > MEMO_KEY {
            return self.long[o200k as usize]
                .get(piece)
                .map(|count| *count as usize);
        }
        let slot = self.slots.get(Self::slot(hash))?;
        (slot.len as usize == piece.len()
            && slot.o200k == o200k
            && &slot.key[..piece.len()] == piece)
            .then_some(slot.count as usize)
    }

    fn put(&mut self, rules: Rules, piece: &[u8], hash: u64, count: usize) {
        let o200k = rules == Rules::O200k;
        if piece.len() > MEMO_KEY {
            if piece.len() > MEMO_LONG_BYTES / 16 {
                return;
            }
            if self.long_bytes + piece.len() > MEMO_LONG_BYTES {
                self.long.iter_mut().for_each(HashMap::clear);
                self.long_bytes = 0;
            }
            self.long_bytes += piece.len();
            self.long[o200k as usize].insert(Box::from(piece), count as u32);
            return;
        }
        if self.slots.is_empty() {
            let empty = MemoSlot {
                len: 0,
                o200k: false,
                count: 0,
                key: [0; MEMO_KEY],
            };
            self.slots = vec![empty; MEMO_SLOTS];
        }
        let slot = &mut self.slots[Self::slot(hash)];
        slot.len = piece.len() as u8;
        slot.o200k = o200k;
        slot.count = count as u32;
        slot.key[..piece.len()].copy_from_slice(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_is_found_by_its_bytes() {
        for vocabulary in [o200k_base(), cl100k_base()] {
            for id in 0..vocabulary.tokens() as u32 {
                assert_eq!(vocabulary.rank(vocabulary.token(id)), Some(id));
            }
        }
    }

    #[test]
    fn both_merges_agree_on_long_pieces() {
        let vocabulary = o200k_base();
        let mut parts = Vec::new();
        for piece in [
            "=".repeat(300),
            " ".repeat(200),
            "abcdefghijklmnopqrstuvwxyz".repeat(7),
            "QmFzZTY0IGVuY29kZWQgdGV4dCBnb2VzIGhlcmU".repeat(5),
            "ü→ß".repeat(40),
        ] {
            assert_eq!(
                vocabulary.merge_small(piece.as_bytes(), &mut parts),
                vocabulary.merge_large(piece.as_bytes()),
                "{piece}"
            );
        }
    }
}

//! Dumps the vocabularies of OpenAI's o200k_base and cl100k_base encodings for the packer's
//! token counter (`src/packer/bpe.rs`), ready to use from the binary without loading: for each
//! encoding, every token's bytes back to back (`<name>.bytes`), where each token starts
//! (`<name>.starts`: little-endian u32, one more than there are tokens), and the lookup table
//! from bytes to token id (`<name>.table`, laid out as `src/packer/vocab_table.rs` says). A
//! token's id is its merge rank. The `bpe-openai` crate supplies the vocabularies at build
//! time only.
//!
//! It also tells cargo to rebuild when a migration is added or changed: `sqlx::migrate!`
//! embeds the `migrations/` folders but does not track them itself.

use std::path::Path;

#[path = "src/packer/vocab_table.rs"]
mod vocab_table;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    dump(Path::new(&out), "o200k_base", &bpe_openai::o200k_base().bpe);
    dump(
        Path::new(&out),
        "cl100k_base",
        &bpe_openai::cl100k_base().bpe,
    );
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/packer/vocab_table.rs");
    println!("cargo::rerun-if-changed=migrations");
}

fn dump(out: &Path, name: &str, bpe: &bpe_openai::byte_pair_encoding::BytePairEncoding) {
    let count = bpe.num_tokens();
    let slots = vocab_table::slots(count);
    assert!(
        count < 1 << (32 - vocab_table::TAG_BITS),
        "token ids fit an entry"
    );
    let mut bytes = Vec::new();
    let mut starts = Vec::with_capacity((count + 1) * 4);
    let mut table = vec![0u32; slots];
    for id in 0..count {
        let token = bpe.token_bytes(id as u32);
        starts.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        bytes.extend_from_slice(token);
        let hash = vocab_table::hash(token);
        let mut slot = vocab_table::home(hash, slots);
        while table[slot] != 0 {
            slot = (slot + 1) % slots;
        }
        table[slot] =
            (id as u32 + 1) << vocab_table::TAG_BITS | (hash as u32 & vocab_table::TAG_MASK);
    }
    starts.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    let table: Vec<u8> = table.iter().flat_map(|entry| entry.to_le_bytes()).collect();
    for (suffix, data) in [("bytes", bytes), ("starts", starts), ("table", table)] {
        std::fs::write(out.join(format!("{name}.{suffix}")), data).expect("OUT_DIR is writable");
    }
}

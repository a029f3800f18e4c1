//! Dumps the vocabularies of OpenAI's o200k_base and cl100k_base encodings for the packer's
//! token counter (`src/packer/bpe.rs`): for each encoding, every token's bytes back to back
//! (`<name>.bytes`) and where each token starts (`<name>.starts`, little-endian u32, one more
//! than there are tokens). A token's id is its merge rank, so the position is all the rank
//! the counter needs. The `bpe-openai` crate supplies the vocabularies at build time only.

use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    dump(Path::new(&out), "o200k_base", &bpe_openai::o200k_base().bpe);
    dump(
        Path::new(&out),
        "cl100k_base",
        &bpe_openai::cl100k_base().bpe,
    );
    println!("cargo::rerun-if-changed=build.rs");
}

fn dump(out: &Path, name: &str, bpe: &bpe_openai::byte_pair_encoding::BytePairEncoding) {
    let count = bpe.num_tokens();
    let mut bytes = Vec::new();
    let mut starts = Vec::with_capacity((count + 1) * 4);
    for id in 0..count {
        starts.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        bytes.extend_from_slice(bpe.token_bytes(id as u32));
    }
    starts.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    std::fs::write(out.join(format!("{name}.bytes")), bytes).expect("OUT_DIR is writable");
    std::fs::write(out.join(format!("{name}.starts")), starts).expect("OUT_DIR is writable");
}

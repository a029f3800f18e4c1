//! The speed floor for `codifier pack`, used by `scripts/bench-pack.sh`: walk a directory with
//! the same walker (no ignore rules beyond `.git`), read every file, count o200k_base tokens in
//! parallel with the packer's own counter (`codifier::packer::bpe`, the fastest exact one we
//! have), and write the texts out. No secret scan, no binary checks, no rendering.
//!
//! `cargo run --release --example pack_floor -- <dir> <output>`

use std::io::Write;

use rayon::prelude::*;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(output)) = (args.next(), args.next()) else {
        eprintln!("usage: pack_floor <dir> <output>");
        std::process::exit(2);
    };
    let mut paths: Vec<_> = ignore::WalkBuilder::new(&root)
        .standard_filters(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .build()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_some_and(|kind| kind.is_file()))
        .map(|entry| entry.into_path())
        .collect();
    paths.sort();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(output)?);
    let encoding = codifier::packer::Encoding::O200kBase;
    let mut total = 0u64;
    for chunk in paths.chunks(512) {
        let texts: Vec<(String, u64)> = chunk
            .par_iter()
            .map(|path| {
                let text =
                    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
                let tokens = encoding.count(&text);
                (text, tokens)
            })
            .collect();
        for (path, (text, tokens)) in chunk.iter().zip(texts) {
            total += tokens;
            writeln!(out, "<file path=\"{}\">\n{text}\n</file>", path.display())?;
        }
    }
    out.flush()?;
    eprintln!("{} files, {total} tokens", paths.len());
    Ok(())
}

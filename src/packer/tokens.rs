//! Exact token counts with OpenAI's byte-pair encodings (o200k_base by default, cl100k_base on
//! request; counted by [`bpe`](super::bpe)), and the cache that makes a re-pack cheap: counts
//! are keyed by the git blob id of the text counted, so an unchanged file is never tokenized
//! twice.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha1::Digest;

/// A tokenizer's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, o-series models.
    #[default]
    O200kBase,
    /// GPT-4, GPT-3.5 and the text-embedding-3 models.
    Cl100kBase,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "o200k_base" | "o200k" => Some(Encoding::O200kBase),
            "cl100k_base" | "cl100k" => Some(Encoding::Cl100kBase),
            _ => None,
        }
    }

    /// The exact number of tokens of `text`.
    pub fn count(self, text: &str) -> u64 {
        let vocabulary = match self {
            Encoding::O200kBase => super::bpe::o200k_base(),
            Encoding::Cl100kBase => super::bpe::cl100k_base(),
        };
        vocabulary.count(text)
    }
}

/// The git blob id of `bytes` (what `git hash-object` prints), hex.
pub fn blob_id(bytes: &[u8]) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(bytes);
    hex::encode(hasher.finalize())
}

/// Token counts remembered across packs, keyed by blob id and encoding. A count reveals nothing
/// about a text that its blob id (a hash of the text) does not already.
pub trait TokenCache: Send + Sync {
    /// The counts known for these blob ids.
    fn lookup(&self, encoding: Encoding, blob_ids: &[String]) -> HashMap<String, u64>;
    /// Remembers new counts. Failing to remember is not an error: the next pack counts again.
    fn record(&self, encoding: Encoding, counts: &[(String, u64)]);
    /// Whether there is a cache at all: without one, files are counted as they are read and
    /// their text is not kept for a lookup.
    fn enabled(&self) -> bool {
        true
    }
}

/// No cache: every pack counts every file.
pub struct NoCache;

impl TokenCache for NoCache {
    fn lookup(&self, _: Encoding, _: &[String]) -> HashMap<String, u64> {
        HashMap::new()
    }
    fn record(&self, _: Encoding, _: &[(String, u64)]) {}
    fn enabled(&self) -> bool {
        false
    }
}

/// An optional cache: none means counting every file.
impl<T: TokenCache> TokenCache for Option<T> {
    fn lookup(&self, encoding: Encoding, blob_ids: &[String]) -> HashMap<String, u64> {
        self.as_ref()
            .map(|cache| cache.lookup(encoding, blob_ids))
            .unwrap_or_default()
    }
    fn record(&self, encoding: Encoding, counts: &[(String, u64)]) {
        if let Some(cache) = self {
            cache.record(encoding, counts);
        }
    }
    fn enabled(&self) -> bool {
        self.as_ref().is_some_and(|cache| cache.enabled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_the_reference_tokenizers() {
        // Reference values from OpenAI's tiktoken.
        assert_eq!(Encoding::O200kBase.count("Hello, world!"), 4);
        assert_eq!(Encoding::Cl100kBase.count("Hello, world!"), 4);
        assert_eq!(Encoding::O200kBase.count("hello world"), 2);
        assert_eq!(Encoding::O200kBase.count(""), 0);
    }

    #[test]
    fn blob_ids_are_the_ones_git_computes() {
        // `printf 'hello\n' | git hash-object --stdin`, and the empty blob
        assert_eq!(
            blob_id(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(blob_id(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }
}

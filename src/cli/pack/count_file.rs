//! The command line's token-count cache: one file of fixed-size records in the data directory,
//! so `codifier pack` re-packs an unchanged repository without counting again and without
//! opening the database. (The server's `pack_repo` keeps its counts in the store.)
//!
//! A record is a blob id (20 bytes), the encoding (1 byte) and the count (8 bytes, little
//! endian). Records are only appended, each batch in one write on a file opened for appending,
//! so packs running at once do not interleave records. A record cut short by a crash is dropped
//! before the next append; a file that grew past [`MAX_RECORDS`] is rewritten (through a
//! temporary file and a rename) with only the counts the current pack used.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::packer::{Encoding, TokenCache};

const RECORD: usize = 20 + 1 + 8;
/// 1.9 MB of records (two repositories of biome's 28,000 files); past this the file keeps only
/// the current pack's counts. Every pack reads the whole file into memory, so this bounds what
/// the cache adds to a pack: about 6 MB and 20 ms when full (at 2^18 records it was 33 MB).
pub const MAX_RECORDS: u64 = 1 << 16;

type Key = ([u8; 20], u8);

/// Token counts in `<dir>/token-counts.v1`. Failing to read or write the file only costs
/// counting again: it prints a note on stderr and carries on.
pub struct FileTokenCache {
    path: PathBuf,
    known: OnceLock<HashMap<Key, u64>>,
    /// The counts this pack looked up or recorded: what a rewrite keeps.
    used: Mutex<HashMap<Key, u64>>,
}

impl FileTokenCache {
    /// The cache in `dir` (created on the first write).
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("token-counts.v1"),
            known: OnceLock::new(),
            used: Mutex::new(HashMap::new()),
        }
    }

    fn known(&self) -> &HashMap<Key, u64> {
        self.known.get_or_init(|| match std::fs::read(&self.path) {
            Ok(bytes) => {
                let mut known = HashMap::with_capacity(bytes.len() / RECORD);
                known.extend(bytes.chunks_exact(RECORD).filter_map(|record| {
                    let id: [u8; 20] = record[..20].try_into().ok()?;
                    let count = u64::from_le_bytes(record[21..].try_into().ok()?);
                    Some(((id, record[20]), count))
                }));
                known
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(error) => {
                eprintln!(
                    "note: cannot read the token-count cache {}: {error}; counting every file",
                    self.path.display()
                );
                HashMap::new()
            }
        })
    }

    fn append(&self, records: &[u8]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let length = file.metadata()?.len();
        if length / RECORD as u64 + (records.len() / RECORD) as u64 > MAX_RECORDS {
            drop(file);
            return self.rewrite();
        }
        if length % RECORD as u64 != 0 {
            // A record cut short: drop it, or every later record would be misread.
            file.set_len(length - length % RECORD as u64)?;
        }
        file.write_all(records)
    }

    /// Replaces the file with the counts this pack used.
    fn rewrite(&self) -> std::io::Result<()> {
        let used = self
            .used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut bytes = Vec::with_capacity(used.len() * RECORD);
        for (key, count) in used.iter() {
            push_record(&mut bytes, key, *count);
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
        temporary.write_all(&bytes)?;
        temporary.persist(&self.path).map_err(|error| error.error)?;
        Ok(())
    }
}

fn key(encoding: Encoding, blob_id: &str) -> Option<Key> {
    let mut id = [0u8; 20];
    hex::decode_to_slice(blob_id, &mut id).ok()?;
    let encoding = match encoding {
        Encoding::O200kBase => 0,
        Encoding::Cl100kBase => 1,
    };
    Some((id, encoding))
}

fn push_record(bytes: &mut Vec<u8>, (id, encoding): &Key, count: u64) {
    bytes.extend_from_slice(id);
    bytes.push(*encoding);
    bytes.extend_from_slice(&count.to_le_bytes());
}

impl TokenCache for FileTokenCache {
    fn lookup(&self, encoding: Encoding, blob_ids: &[String]) -> HashMap<String, u64> {
        let known = self.known();
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        blob_ids
            .iter()
            .filter_map(|blob_id| {
                let key = key(encoding, blob_id)?;
                let count = *known.get(&key)?;
                used.insert(key, count);
                Some((blob_id.clone(), count))
            })
            .collect()
    }

    fn record(&self, encoding: Encoding, counts: &[(String, u64)]) {
        let mut records = Vec::with_capacity(counts.len() * RECORD);
        {
            let mut used = self
                .used
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (blob_id, count) in counts {
                if let Some(key) = key(encoding, blob_id) {
                    used.insert(key, *count);
                    push_record(&mut records, &key, *count);
                }
            }
        }
        if records.is_empty() {
            return;
        }
        if let Err(error) = self.append(&records) {
            eprintln!(
                "note: cannot write the token-count cache {}: {error}",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ce013625030ba8dba906f756967f9e9ca394464a";
    const B: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn counts_recorded_by_one_pack_are_found_by_the_next_for_the_same_encoding_only() {
        let dir = tempfile::tempdir().unwrap();
        let first = FileTokenCache::new(dir.path());
        assert!(first.lookup(Encoding::O200kBase, &ids(&[A])).is_empty());
        first.record(Encoding::O200kBase, &[(A.into(), 7), ("not hex".into(), 3)]);
        let next = FileTokenCache::new(dir.path());
        assert_eq!(
            next.lookup(Encoding::O200kBase, &ids(&[A, B])),
            HashMap::from([(A.to_string(), 7)])
        );
        assert!(next.lookup(Encoding::Cl100kBase, &ids(&[A])).is_empty());
    }

    #[test]
    fn a_record_cut_short_is_dropped_and_later_records_still_read_back() {
        let dir = tempfile::tempdir().unwrap();
        FileTokenCache::new(dir.path()).record(Encoding::O200kBase, &[(A.into(), 7)]);
        let path = dir.path().join("token-counts.v1");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&[1, 2, 3]).unwrap();
        drop(file);
        FileTokenCache::new(dir.path()).record(Encoding::O200kBase, &[(B.into(), 9)]);
        let found = FileTokenCache::new(dir.path()).lookup(Encoding::O200kBase, &ids(&[A, B]));
        assert_eq!(
            found,
            HashMap::from([(A.to_string(), 7), (B.to_string(), 9)])
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * RECORD as u64);
    }

    #[test]
    fn a_full_file_is_rewritten_with_the_counts_the_pack_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-counts.v1");
        // A full file of records nobody uses any more, plus the one this pack will look up.
        let mut bytes = vec![0u8; MAX_RECORDS as usize * RECORD];
        push_record(&mut bytes, &key(Encoding::O200kBase, A).unwrap(), 7);
        std::fs::write(&path, bytes).unwrap();
        let cache = FileTokenCache::new(dir.path());
        assert_eq!(cache.lookup(Encoding::O200kBase, &ids(&[A])).len(), 1);
        cache.record(Encoding::O200kBase, &[(B.into(), 9)]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * RECORD as u64);
        let found = FileTokenCache::new(dir.path()).lookup(Encoding::O200kBase, &ids(&[A, B]));
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn an_unreadable_cache_only_means_counting_again() {
        let dir = tempfile::tempdir().unwrap();
        // The cache's path is a directory: reading and appending both fail.
        std::fs::create_dir(dir.path().join("token-counts.v1")).unwrap();
        let cache = FileTokenCache::new(dir.path());
        assert!(cache.lookup(Encoding::O200kBase, &ids(&[A])).is_empty());
        cache.record(Encoding::O200kBase, &[(A.into(), 7)]);
    }
}

//! One project's vectors in memory and the scan over them: each vector scaled into int8 codes
//! (one byte per dimension), filters applied to each entry, and the nearest codes kept in a
//! top-k heap. The scan is compiled twice, for the x86-64 baseline and for AVX2, and the AVX2
//! build is picked at run time on CPUs that have it; both give the same integer dot products.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Utc};

use crate::domain::MemoryType;
use crate::store::MemoryFilter;

/// What a scan filters on, for one memory.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) rowid: i64,
    pub(super) kind: MemoryType,
    pub(super) created_at: DateTime<Utc>,
    pub(super) tags: Box<[Box<str>]>,
    /// The vector's largest absolute component / 127: code × scale ≈ component.
    pub(super) scale: f32,
}

/// The vectors of one project and model.
#[derive(Debug, Default)]
pub(super) struct VectorSet {
    pub(super) dimensions: usize,
    pub(super) entries: Vec<Entry>,
    /// `dimensions` codes per entry, in entry order.
    pub(super) codes: Vec<i8>,
    position: HashMap<i64, usize>,
}

/// Scales a vector into int8 codes; the scale maps them back.
fn quantize(vector: &[f32]) -> (Vec<i8>, f32) {
    let largest = vector.iter().fold(0f32, |m, x| m.max(x.abs()));
    if largest == 0.0 || !largest.is_finite() {
        return (vec![0; vector.len()], 0.0);
    }
    let scale = largest / 127.0;
    let codes = vector
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (codes, scale)
}

/// The dot product of two code vectors, shaped so the compiler vectorises it: 32 lanes of
/// i16 products (each at most 127², which fits) widened into i32 sums, the shape of x86's
/// `pmaddwd`. An i32 lane cannot overflow below 2^17 dimensions.
#[inline(always)]
fn dot(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 32];
    let (chunks_a, tail_a) = a.as_chunks::<32>();
    let (chunks_b, tail_b) = b.as_chunks::<32>();
    for (x, y) in chunks_a.iter().zip(chunks_b) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += i32::from(i16::from(*x) * i16::from(*y));
        }
    }
    let tail: i32 = tail_a
        .iter()
        .zip(tail_b)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    lanes.iter().sum::<i32>() + tail
}

impl VectorSet {
    /// An empty set of vectors of `dimensions` components.
    pub(super) fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            ..Self::default()
        }
    }

    pub(super) fn insert(&mut self, entry: Entry, vector: &[f32]) {
        self.remove(entry.rowid);
        let (codes, scale) = quantize(vector);
        self.position.insert(entry.rowid, self.entries.len());
        self.entries.push(Entry { scale, ..entry });
        self.codes.extend_from_slice(&codes);
    }

    pub(super) fn remove(&mut self, rowid: i64) {
        let Some(index) = self.position.remove(&rowid) else {
            return;
        };
        let last = self.entries.len() - 1;
        self.entries.swap_remove(index);
        let dims = self.dimensions;
        if index != last {
            self.codes
                .copy_within(last * dims..(last + 1) * dims, index * dims);
            self.position.insert(self.entries[index].rowid, index);
        }
        self.codes.truncate(last * dims);
    }

    fn accepts(entry: &Entry, filter: &MemoryFilter) -> bool {
        filter.memory_type.is_none_or(|kind| kind == entry.kind)
            && filter.since.is_none_or(|since| entry.created_at >= since)
            && filter.until.is_none_or(|until| entry.created_at < until)
            && filter
                .tags
                .iter()
                .all(|tag| entry.tags.iter().any(|have| **have == **tag))
    }

    /// The row ids of the `n` entries passing `filter` whose codes are nearest `query`.
    pub(super) fn nearest(&self, query: &[f32], filter: &MemoryFilter, n: usize) -> Vec<i64> {
        let (query, _) = quantize(query);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.nearest_avx2(&query, filter, n) };
        }
        self.nearest_codes(&query, filter, n)
    }

    /// [`Self::nearest_codes`] compiled for AVX2 (sign-extending loads and 256-bit multiply-adds).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn nearest_avx2(&self, query: &[i8], filter: &MemoryFilter, n: usize) -> Vec<i64> {
        self.nearest_codes(query, filter, n)
    }

    /// The scan itself, for query codes. Inlined into each build of it, so the dot product is
    /// compiled (and vectorised) for that build's instructions.
    #[inline(always)]
    fn nearest_codes(&self, query: &[i8], filter: &MemoryFilter, n: usize) -> Vec<i64> {
        let mut best: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::with_capacity(n + 1);
        if self.dimensions == 0 {
            return Vec::new();
        }
        let everything = filter.memory_type.is_none()
            && filter.tags.is_empty()
            && filter.since.is_none()
            && filter.until.is_none();
        for (index, (entry, codes)) in self
            .entries
            .iter()
            .zip(self.codes.chunks_exact(self.dimensions))
            .enumerate()
        {
            if !everything && !Self::accepts(entry, filter) {
                continue;
            }
            // Scaled to an integer so the heap orders it; the query's own scale is common to all.
            let score = (f64::from(dot(query, codes)) * f64::from(entry.scale) * 1e6) as i64;
            if best.len() < n {
                best.push(Reverse((score, index)));
            } else if best.peek().is_some_and(|worst| worst.0.0 < score) {
                best.pop();
                best.push(Reverse((score, index)));
            }
        }
        best.into_iter()
            .map(|Reverse((_, index))| self.entries[index].rowid)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rowid: i64) -> Entry {
        Entry {
            rowid,
            kind: MemoryType::Rule,
            created_at: Utc::now(),
            tags: Box::new([]),
            scale: 0.0,
        }
    }

    #[test]
    fn codes_rank_vectors_as_their_cosine_does() {
        let mut set = VectorSet {
            dimensions: 20,
            ..VectorSet::default()
        };
        let vectors: Vec<Vec<f32>> = (0..50)
            .map(|n| {
                (0..20)
                    .map(|d| ((n * 7 + d * 3) % 11) as f32 - 5.0)
                    .collect()
            })
            .collect();
        for (n, vector) in vectors.iter().enumerate() {
            set.insert(entry(n as i64), vector);
        }
        let query: Vec<f32> = (0..20).map(|d| (d % 5) as f32 - 2.0).collect();
        let mut exact: Vec<(f32, i64)> = vectors
            .iter()
            .enumerate()
            .map(|(n, v)| (crate::domain::cosine(&query, v), n as i64))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let found = set.nearest(&query, &MemoryFilter::default(), 5);
        for (_, rowid) in &exact[..3] {
            assert!(found.contains(rowid), "{rowid} missing from {found:?}");
        }
    }

    #[test]
    fn a_filtered_scan_finds_the_exact_neighbours_among_the_memories_that_pass() {
        let mut set = VectorSet {
            dimensions: 48,
            ..VectorSet::default()
        };
        let vectors: Vec<Vec<f32>> = (0..400)
            .map(|n| {
                (0..48)
                    .map(|d| (((n * 31 + d * 17) % 23) as f32 - 11.0) / 7.0)
                    .collect()
            })
            .collect();
        for (n, vector) in vectors.iter().enumerate() {
            let kind = MemoryType::KNOWLEDGE[n % 5];
            set.insert(
                Entry {
                    kind,
                    ..entry(n as i64)
                },
                vector,
            );
        }
        let query: Vec<f32> = (0..48).map(|d| ((d * 5) % 9) as f32 - 4.0).collect();
        let by_type = MemoryFilter {
            memory_type: Some(MemoryType::KNOWLEDGE[2]),
            ..MemoryFilter::default()
        };
        let mut exact: Vec<(f32, i64)> = vectors
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 5 == 2)
            .map(|(n, v)| (crate::domain::cosine(&query, v), n as i64))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let found = set.nearest(&query, &by_type, 20);
        assert_eq!(found.len(), 20);
        assert!(found.iter().all(|rowid| rowid % 5 == 2), "{found:?}");
        for (_, rowid) in &exact[..10] {
            assert!(found.contains(rowid), "{rowid} missing from {found:?}");
        }
    }

    #[test]
    fn the_scan_built_for_the_cpu_agrees_with_the_baseline_build() {
        let mut set = VectorSet {
            dimensions: 384,
            ..VectorSet::default()
        };
        for n in 0..300i64 {
            let vector: Vec<f32> = (0..384)
                .map(|d| (((n * 13 + d * 7) % 29) as f32 - 14.0) / 3.0)
                .collect();
            set.insert(entry(n), &vector);
        }
        let (query, _) = quantize(&(0..384).map(|d| (d % 11) as f32 - 5.0).collect::<Vec<_>>());
        let mut baseline = set.nearest_codes(&query, &MemoryFilter::default(), 25);
        let mut dispatched = set.nearest(
            &(0..384).map(|d| (d % 11) as f32 - 5.0).collect::<Vec<_>>(),
            &MemoryFilter::default(),
            25,
        );
        baseline.sort_unstable();
        dispatched.sort_unstable();
        assert_eq!(baseline, dispatched);
        let (a, b) = (&set.codes[..384], &set.codes[384..768]);
        let plain: i32 = a
            .iter()
            .zip(b)
            .map(|(x, y)| i32::from(*x) * i32::from(*y))
            .sum();
        assert_eq!(dot(a, b), plain);
    }

    #[test]
    fn removing_an_entry_keeps_the_others_codes_with_them() {
        let mut set = VectorSet {
            dimensions: 2,
            ..VectorSet::default()
        };
        set.insert(entry(1), &[1.0, 0.0]);
        set.insert(entry(2), &[0.0, 1.0]);
        set.insert(entry(3), &[-1.0, 0.0]);
        set.remove(1);
        assert_eq!(set.entries.len(), 2);
        assert_eq!(set.nearest(&[-1.0, 0.0], &MemoryFilter::default(), 1), [3]);
        assert_eq!(set.nearest(&[0.0, 1.0], &MemoryFilter::default(), 1), [2]);
        set.insert(entry(2), &[1.0, 0.0]);
        assert_eq!(set.nearest(&[1.0, 0.0], &MemoryFilter::default(), 1), [2]);
        assert_eq!(set.codes.len(), 4);
    }
}

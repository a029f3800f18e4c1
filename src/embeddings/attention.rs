//! One head of self-attention over one text, on AVX-512 (f32 FMA), in blocks of six query
//! rows: the head's keys (transposed) and values are first copied into small contiguous
//! buffers, then each block's scores, softmax and weighted values are computed while they are
//! in the L1 cache. The `gemm` crate, which the fallback path uses, spends most of a head's
//! time packing operands this small (32 columns, tens to hundreds of rows) and runs its whole
//! `len × len` scores through memory.

#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Query rows per block: 6 rows × up to 4 vectors = 24 accumulators.
const ROWS: usize = 6;

/// Buffers reused across heads and layers of one forward pass.
#[derive(Default)]
pub struct Scratch {
    /// The head's keys, transposed: `head_size × len`.
    keys: Vec<f32>,
    /// The head's values: `len × head_size`.
    values: Vec<f32>,
    /// One block's scores: `ROWS × len`.
    scores: Vec<f32>,
}

/// Whether this CPU runs [`attend`].
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The shape of one head's attention over one text.
pub struct Head {
    /// Tokens of the text.
    pub len: usize,
    /// Model width: `rows` holds `3·hidden` values per token, `out` `hidden`.
    pub hidden: usize,
    /// The head's first column within the query (and key, value) block.
    pub offset: usize,
    pub head_size: usize,
    /// Applied to the scores before the softmax.
    pub scale: f32,
}

/// Writes the head's columns of `out` (`len` rows of `hidden`): `softmax(q·kᵀ·scale)·v`, with
/// `q`, `k` and `v` the head's columns of `rows` (`len` rows of query, key and value).
/// `softmax` normalises one row in place. Panics unless [`supported`]. Inlined, so that the
/// copies and `softmax` are compiled for the caller's instruction set.
#[inline(always)]
pub fn attend(
    rows: &[f32],
    out: &mut [f32],
    head: &Head,
    scratch: &mut Scratch,
    softmax: impl Fn(&mut [f32]),
) {
    assert!(supported(), "attention: needs AVX-512");
    let Head {
        len,
        hidden,
        offset,
        head_size,
        scale,
    } = *head;
    assert!(offset + head_size <= hidden, "attention: head out of range");
    assert!(rows.len() >= len * 3 * hidden, "attention: rows too small");
    assert!(out.len() >= len * hidden, "attention: out too small");
    scratch.keys.resize(head_size * len, 0.0);
    scratch.values.resize(len * head_size, 0.0);
    scratch.scores.resize(ROWS * len, 0.0);
    for (j, row) in rows.chunks_exact(3 * hidden).take(len).enumerate() {
        let key = &row[hidden + offset..][..head_size];
        for (d, &k) in key.iter().enumerate() {
            scratch.keys[d * len + j] = k;
        }
        scratch.values[j * head_size..(j + 1) * head_size]
            .copy_from_slice(&row[2 * hidden + offset..][..head_size]);
    }
    let mut start = 0;
    while start < len {
        let block = (len - start).min(ROWS);
        let scores = &mut scratch.scores[..block * len];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `supported` checked the CPU; the block's query rows lie within `rows`
        // (start + block ≤ len rows of 3·hidden, columns offset..offset + head_size < hidden),
        // `keys` is head_size × len, `scores` block × len.
        unsafe {
            product(
                Operand {
                    at: rows.as_ptr().add(start * 3 * hidden + offset),
                    stride: 3 * hidden,
                },
                Operand {
                    at: scratch.keys.as_ptr(),
                    stride: len,
                },
                (block, head_size, len),
                scores.as_mut_ptr(),
                len,
                scale,
            );
        }
        for row in scores.chunks_exact_mut(len) {
            softmax(row);
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above; `values` is len × head_size and the block's output rows lie
        // within `out` (start + block ≤ len rows of hidden, columns within the head's).
        unsafe {
            product(
                Operand {
                    at: scores.as_ptr(),
                    stride: len,
                },
                Operand {
                    at: scratch.values.as_ptr(),
                    stride: head_size,
                },
                (block, len, head_size),
                out.as_mut_ptr().add(start * hidden + offset),
                hidden,
                1.0,
            );
        }
        start += block;
    }
}

/// A row-major matrix operand: its first element and its row stride.
#[derive(Clone, Copy)]
struct Operand {
    at: *const f32,
    stride: usize,
}

/// `c = scale · a·b` for `a` of `m × k` and `b` of `k × n` (columns in chunks of 64, the
/// last masked), `c` rows at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
unsafe fn product(
    a: Operand,
    b: Operand,
    (m, k, n): (usize, usize, usize),
    c: *mut f32,
    ldc: usize,
    scale: f32,
) {
    let mut col = 0;
    while col < n {
        let width = (n - col).min(64);
        let masks: [__mmask16; 4] = std::array::from_fn(|v| {
            let valid = width.saturating_sub(v * 16).min(16);
            ((1u32 << valid) - 1) as __mmask16
        });
        let b = Operand {
            at: unsafe { b.at.add(col) },
            ..b
        };
        let mut row = 0;
        while row < m {
            let a = Operand {
                at: unsafe { a.at.add(row * a.stride) },
                ..a
            };
            let c = unsafe { c.add(row * ldc + col) };
            macro_rules! block {
                ($vectors:literal) => {{
                    let masks: &[__mmask16; $vectors] = masks[..$vectors].try_into().unwrap();
                    // SAFETY (all arms): rows row..row + R of `a` and `c` exist.
                    unsafe {
                        match m - row {
                            1 => block::<1, $vectors>(a, b, k, c, ldc, masks, scale),
                            2 => block::<2, $vectors>(a, b, k, c, ldc, masks, scale),
                            3 => block::<3, $vectors>(a, b, k, c, ldc, masks, scale),
                            4 => block::<4, $vectors>(a, b, k, c, ldc, masks, scale),
                            5 => block::<5, $vectors>(a, b, k, c, ldc, masks, scale),
                            _ => block::<ROWS, $vectors>(a, b, k, c, ldc, masks, scale),
                        }
                    }
                }};
            }
            match width.div_ceil(16) {
                1 => block!(1),
                2 => block!(2),
                3 => block!(3),
                _ => block!(4),
            }
            row += ROWS;
        }
        col += 64;
    }
}

/// `R` rows × `V` vectors of `c = scale · a·b`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn block<const R: usize, const V: usize>(
    a: Operand,
    b: Operand,
    k: usize,
    c: *mut f32,
    ldc: usize,
    masks: &[__mmask16; V],
    scale: f32,
) {
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for p in 0..k {
            let at = b.at.add(p * b.stride);
            let w: [__m512; V] =
                std::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], at.add(v * 16)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.at.add(r * a.stride + p));
                for (acc, w) in acc.iter_mut().zip(&w) {
                    *acc = _mm512_fmadd_ps(x, *w, *acc);
                }
            }
        }
        let scale = _mm512_set1_ps(scale);
        for (r, acc) in acc.iter().enumerate() {
            for (v, (acc, &mask)) in acc.iter().zip(masks).enumerate() {
                _mm512_mask_storeu_ps(c.add(r * ldc + v * 16), mask, _mm512_mul_ps(*acc, scale));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same head written plainly in f64.
    fn naive(rows: &[f32], head: &Head) -> Vec<f64> {
        let Head {
            len,
            hidden,
            offset,
            head_size,
            scale,
        } = *head;
        let at = |t: usize, part: usize, d: usize| {
            f64::from(rows[t * 3 * hidden + part * hidden + offset + d])
        };
        let mut out = vec![0f64; len * head_size];
        for i in 0..len {
            let scores: Vec<f64> = (0..len)
                .map(|j| {
                    (0..head_size)
                        .map(|d| at(i, 0, d) * at(j, 1, d))
                        .sum::<f64>()
                        * f64::from(scale)
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            for (j, s) in scores.iter().enumerate() {
                for d in 0..head_size {
                    out[i * head_size + d] += (s - max).exp() / total * at(j, 2, d);
                }
            }
        }
        out
    }

    #[test]
    fn a_head_matches_a_plain_attention_for_short_and_long_texts() {
        if !supported() {
            eprintln!("skipping: this CPU has no AVX-512");
            return;
        }
        let softmax = |row: &mut [f32]| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            row.iter_mut().for_each(|v| *v = (*v - max).exp());
            let total: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= total);
        };
        let mut scratch = Scratch::default();
        // One token, a block and a tail, more than 64 keys (masked column chunks), 130 keys.
        for len in [1, 7, 13, 70, 130] {
            let (hidden, head_size) = (96, 32);
            let rows: Vec<f32> = (0..len * 3 * hidden)
                .map(|i| (i as f32 * 0.37).sin())
                .collect();
            let head = Head {
                len,
                hidden,
                offset: 32,
                head_size,
                scale: 0.3,
            };
            let mut out = vec![7f32; len * hidden];
            attend(&rows, &mut out, &head, &mut scratch, softmax);
            let want = naive(&rows, &head);
            for i in 0..len {
                for d in 0..head_size {
                    let got = f64::from(out[i * hidden + 32 + d]);
                    let diff = (got - want[i * head_size + d]).abs();
                    assert!(
                        diff < 1e-5,
                        "len {len}, ({i}, {d}): {got} vs {}",
                        want[i * head_size + d]
                    );
                }
                assert_eq!(out[i * hidden], 7.0, "wrote outside the head's columns");
                assert_eq!(
                    out[i * hidden + 64],
                    7.0,
                    "wrote outside the head's columns"
                );
            }
        }
    }
}

//! Matrix products in bfloat16 with f32 accumulation, for CPUs with AVX-512 BF16 (`vdpbf16ps`:
//! 32 multiply-adds per instruction, twice the f32 FMA's). The `gemm` crate has no bf16 kernel,
//! and on this model's shapes this one runs at about twice its f32 rate (see the README's
//! embedding figures). A weight matrix is rounded to bf16 once, at load, into panels of
//! [`PANEL`] columns whose rows are interleaved in pairs (the layout `vdpbf16ps` reads); each
//! product rounds its left operand to bf16 in the same pair layout and adds `a·W` to the
//! output in f32. Rounding is to nearest, ties to even, as the instruction's own conversion.

#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Columns per panel: four 16-lane vectors.
const PANEL: usize = 64;
/// Rows per block of the inner kernel: 6 rows × 4 vectors = 24 accumulators, which with the 4
/// weight vectors and a broadcast fit the 32 vector registers.
const ROWS: usize = 6;

/// `x` rounded to bfloat16 (nearest, ties to even), as its 16 bits.
#[inline(always)]
pub fn round(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) as u16
}

/// The f32 a bfloat16 stands for.
#[cfg(test)]
fn widen(x: u16) -> f32 {
    f32::from_bits(u32::from(x) << 16)
}

/// Whether this CPU runs [`Packed::matmul`].
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// A `k × n` matrix in bf16, laid out for [`Packed::matmul`]: panels of [`PANEL`] columns (the
/// last padded with zeros), each holding `⌈k/2⌉` pair rows of `PANEL` × 2 values (row `2p`
/// and row `2p+1` of one column side by side; an odd `k` is padded with a zero row).
pub struct Packed {
    data: Vec<u16>,
    k: usize,
    n: usize,
}

impl Packed {
    /// Packs `weight`, `k × n` row-major.
    pub fn new(weight: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(weight.len(), k * n, "Packed::new: weight is not k × n");
        let pairs = k.div_ceil(2);
        let mut data = vec![0u16; n.div_ceil(PANEL) * pairs * PANEL * 2];
        for (row, values) in weight.chunks_exact(n.max(1)).enumerate() {
            for (col, &v) in values.iter().enumerate() {
                let (panel, lane) = (col / PANEL, col % PANEL);
                data[((panel * pairs + row / 2) * PANEL + lane) * 2 + row % 2] = round(v);
            }
        }
        Self { data, k, n }
    }

    /// Entry (`row`, `col`) as f32, for tests and the reference pass.
    #[cfg(test)]
    pub fn get(&self, row: usize, col: usize) -> f32 {
        let pairs = self.k.div_ceil(2);
        let (panel, lane) = (col / PANEL, col % PANEL);
        widen(self.data[((panel * pairs + row / 2) * PANEL + lane) * 2 + row % 2])
    }

    /// `out += a·W` for `rows` rows: `a` is `rows × k` f32, `out` is `rows × n`. `scratch`
    /// holds `a` rounded to bf16 (resized as needed). Panics unless [`supported`].
    pub fn matmul(&self, out: &mut [f32], a: &[f32], rows: usize, scratch: &mut Vec<u32>) {
        assert!(supported(), "bf16 products need AVX-512 BF16");
        assert!(a.len() >= rows * self.k, "matmul: a too small");
        assert!(out.len() >= rows * self.n, "matmul: out too small");
        let pairs = self.k.div_ceil(2);
        scratch.clear();
        scratch.resize(rows * pairs, 0);
        #[cfg(target_arch = "x86_64")]
        if self.k.is_multiple_of(2) {
            // An even `k`: the rows' pairs follow one another with no padding, so the pair
            // layout is just the values in order, rounded.
            // SAFETY: `supported` (asserted above) checked the CPU features.
            unsafe { to_pairs_avx512(&a[..rows * self.k], scratch) };
        } else {
            for (pair_row, row) in scratch.chunks_exact_mut(pairs).zip(a.chunks_exact(self.k)) {
                to_pairs(row, pair_row);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        for (pair_row, row) in scratch.chunks_exact_mut(pairs).zip(a.chunks_exact(self.k)) {
            to_pairs(row, pair_row);
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `supported` checked the CPU features; the asserts above bound every row the
        // kernel reads (`scratch`: rows × pairs) and writes (`out`: rows × n, columns past `n`
        // masked off), and the panels are `⌈n/64⌉ × pairs × 128` values by construction.
        unsafe {
            matmul_avx512(self, out, scratch, rows);
        }
    }
}

/// One row of f32 into bf16 pairs (`row[2p]` in the low half of `out[p]`, `row[2p+1]` in the
/// high half; zero past the end).
#[inline(always)]
fn to_pairs(row: &[f32], out: &mut [u32]) {
    let (pairs, tail) = row.as_chunks::<2>();
    for (o, pair) in out.iter_mut().zip(pairs) {
        *o = u32::from(round(pair[0])) | (u32::from(round(pair[1])) << 16);
    }
    if let [last] = tail {
        out[pairs.len()] = u32::from(round(*last));
    }
}

/// [`to_pairs`] for a slice of even length, 32 values per instruction (`vcvtne2ps2bf16`:
/// nearest, ties to even, as [`round`], except that it reads subnormal inputs as zero).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
fn to_pairs_avx512(values: &[f32], out: &mut [u32]) {
    let (chunks, tail) = values.as_chunks::<32>();
    let (out_chunks, out_tail) = out.split_at_mut(chunks.len() * 16);
    for (chunk, o) in chunks.iter().zip(out_chunks.as_chunks_mut::<16>().0) {
        // SAFETY: `chunk` holds 32 floats and `o` 16 u32s (32 bf16), all unaligned accesses.
        unsafe {
            let low = _mm512_loadu_ps(chunk.as_ptr());
            let high = _mm512_loadu_ps(chunk.as_ptr().add(16));
            let rounded: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
            _mm512_storeu_si512(o.as_mut_ptr().cast(), rounded);
        }
    }
    to_pairs(tail, out_tail);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn matmul_avx512(w: &Packed, out: &mut [f32], a: &[u32], rows: usize) {
    let pairs = w.k.div_ceil(2);
    let n = w.n;
    for panel in 0..n.div_ceil(PANEL) {
        let b = unsafe { w.data.as_ptr().add(panel * pairs * PANEL * 2) };
        let cols = (n - panel * PANEL).min(PANEL);
        let masks: [__mmask16; 4] = std::array::from_fn(|v| {
            let valid = cols.saturating_sub(v * 16).min(16);
            ((1u32 << valid) - 1) as __mmask16
        });
        let mut row = 0;
        while row < rows {
            let (a, o) = unsafe {
                (
                    a.as_ptr().add(row * pairs),
                    out.as_mut_ptr().add(row * n + panel * PANEL),
                )
            };
            // SAFETY (all arms): rows `row..row + R` exist in `a` and `out`.
            unsafe {
                match rows - row {
                    1 => kernel::<1>(a, pairs, b, o, n, &masks),
                    2 => kernel::<2>(a, pairs, b, o, n, &masks),
                    3 => kernel::<3>(a, pairs, b, o, n, &masks),
                    4 => kernel::<4>(a, pairs, b, o, n, &masks),
                    5 => kernel::<5>(a, pairs, b, o, n, &masks),
                    _ => kernel::<ROWS>(a, pairs, b, o, n, &masks),
                }
            }
            row += ROWS;
        }
    }
}

/// `R` rows × one panel: `out[r][..] += Σ_p a[r][p] · b[p][..]` over the pair rows.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel<const R: usize>(
    a: *const u32,
    pairs: usize,
    b: *const u16,
    out: *mut f32,
    out_row: usize,
    masks: &[__mmask16; 4],
) {
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        for p in 0..pairs {
            let at = b.add(p * PANEL * 2).cast::<__m512i>();
            let w: [__m512bh; 4] =
                std::array::from_fn(|v| std::mem::transmute(_mm512_loadu_si512(at.add(v))));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*a.add(r * pairs + p) as i32));
                for (acc, w) in acc.iter_mut().zip(&w) {
                    *acc = _mm512_dpbf16_ps(*acc, x, *w);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, (acc, &mask)) in acc.iter().zip(masks).enumerate() {
                let o = out.add(r * out_row + v * 16);
                let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, o), *acc);
                _mm512_mask_storeu_ps(o, mask, sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_with_ties_to_even() {
        assert_eq!(widen(round(1.0)), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even one, 1.
        assert_eq!(widen(round(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(widen(round(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert_eq!(widen(round(-2.5e-3)), -widen(round(2.5e-3)));
        assert!(widen(round(f32::NAN)).is_nan());
        let worst = (1..10_000)
            .map(|i| i as f32 * 0.0173)
            .map(|x| ((widen(round(x)) - x) / x).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1.0 / 256.0, "relative error {worst}");
    }

    #[test]
    fn the_vector_rounding_agrees_bit_for_bit_with_the_scalar_one() {
        if !supported() {
            eprintln!("skipping: this CPU has no AVX-512 BF16");
            return;
        }
        // Ties both ways, signs, magnitudes from 1e-30 to 1e30, and a tail past 32 values.
        let mut values = vec![
            1.0,
            1.0 + 1.0 / 256.0,
            1.0 + 3.0 / 256.0,
            -(1.0 + 1.0 / 256.0),
            -(1.0 + 3.0 / 256.0),
            0.0,
            -0.0,
            f32::MAX,
        ];
        values.extend((0..1_000).map(|i| (i as f32 * 0.731).sin() * 10f32.powi(i % 61 - 30)));
        values.truncate(70 + 32 * 30);
        let mut scalar = vec![0u32; values.len() / 2];
        to_pairs(&values, &mut scalar);
        let mut vector = vec![0u32; values.len() / 2];
        // SAFETY: checked above.
        unsafe { to_pairs_avx512(&values, &mut vector) };
        for (i, (s, v)) in scalar.iter().zip(&vector).enumerate() {
            assert_eq!(s, v, "pair {i}: {:?}", &values[2 * i..2 * i + 2]);
        }
    }

    /// The product of the bf16-rounded operands, in f64.
    fn naive(a: &[f32], w: &[f32], rows: usize, k: usize, n: usize) -> Vec<f64> {
        let r = |x: f32| f64::from(widen(round(x)));
        let mut out = vec![0f64; rows * n];
        for i in 0..rows {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| r(a[i * k + p]) * r(w[p * n + j])).sum();
            }
        }
        out
    }

    #[test]
    fn products_match_a_naive_product_of_the_rounded_operands_for_any_shape() {
        if !supported() {
            eprintln!("skipping: this CPU has no AVX-512 BF16");
            return;
        }
        // Odd k, n not a multiple of 16 or 64, rows past one block of 6 and a tail.
        for (rows, k, n) in [
            (1, 1, 1),
            (7, 5, 3),
            (13, 33, 70),
            (6, 384, 128),
            (20, 64, 200),
        ] {
            let a: Vec<f32> = (0..rows * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let packed = Packed::new(&w, k, n);
            assert_eq!(packed.get(k - 1, n - 1), widen(round(w[k * n - 1])));
            // Start from 1 (a bias) plus a sentinel column past `n` in each row's slot.
            let mut out = vec![1f32; rows * n + 1];
            packed.matmul(&mut out, &a, rows, &mut Vec::new());
            let want = naive(&a, &w, rows, k, n);
            for (i, (&got, want)) in out.iter().zip(&want).enumerate() {
                let err = (f64::from(got) - 1.0 - want).abs();
                assert!(
                    err < 1e-4 * k as f64,
                    "({rows}, {k}, {n}) at {i}: {got} vs {want}"
                );
            }
            assert_eq!(out[rows * n], 1.0, "wrote past the output");
        }
    }
}

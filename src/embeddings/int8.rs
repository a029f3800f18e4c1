//! Matrix products in 8-bit integers with i32 accumulation, for CPUs with AVX-512 VNNI
//! (`vpdpbusd`: 64 multiply-adds per instruction, twice `vdpbf16ps`'s, at the same rate on this
//! machine), for every dense layer in [`super::bert::Precision::Int8`].
//!
//! A weight matrix is quantized once, at load: each output column symmetrically to −127..127
//! with its own scale, in panels of [`PANEL`] columns whose rows are interleaved in fours (the
//! layout `vpdpbusd` reads), with each column's sum of codes kept beside it. Each product
//! quantizes its left operand row by row to 0..255 with a scale and a zero point (the row's
//! range, widened to hold 0), so `a·W = s_row · s_col · (Σ q_a·q_w − zero · Σ q_w)`.

#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Columns per panel: four 16-lane vectors.
const PANEL: usize = 64;
/// Rows per block of the inner kernel: 6 rows × 4 vectors = 24 accumulators, as in
/// [`super::bf16`].
const ROWS: usize = 6;

/// Whether this CPU runs [`Quantized::matmul`].
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// A `k × n` matrix quantized for [`Quantized::matmul`], in slices of at most [`SLICE`] rows
/// each quantized on its own: the product's left operand is quantized per row *and* slice, so
/// a few large values cost precision in their slice only (with one scale per row and column,
/// the model's vectors fell to cosine 0.998 of the reference on the worst of 1,000 texts).
pub struct Quantized {
    slices: Vec<Slice>,
    k: usize,
    n: usize,
}

/// Values of a left operand's row per slice (rows of the weight). Each slice adds a pass over
/// the output; on this model 64, 96 and 128 ran within noise of one another (200–209 texts/s),
/// and the worst of 1,000 benchmark texts stayed at cosine 0.99949 (64), 0.99950 (96) and
/// 0.99923 (128) of the f32 vectors.
pub const SLICE: usize = 96;

/// Rows `start..start + len` of a weight: panels of [`PANEL`] columns (the last padded with
/// zeros), each holding `⌈len/4⌉` quad rows of `PANEL` × 4 codes (rows `4q..4q+4` of one
/// column side by side; padded with zero rows to a multiple of 4).
struct Slice {
    start: usize,
    len: usize,
    codes: Vec<i8>,
    /// Per column: the value of one step of its codes.
    scales: Vec<f32>,
    /// Per column: the sum of its codes (to take the left operand's zero point back out).
    sums: Vec<i32>,
}

/// How one row of the left operand was quantized: `value ≈ scale · (code − zero)`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct RowScale {
    scale: f32,
    zero: i32,
}

impl Slice {
    /// Quantizes `rows` (`len × n`, row-major), each column symmetrically to −127..=127.
    fn new(rows: &[f32], start: usize, len: usize, n: usize) -> Self {
        let quads = len.div_ceil(4);
        let padded = n.div_ceil(PANEL) * PANEL;
        let mut scales = vec![0f32; padded];
        for row in rows.chunks_exact(n) {
            for (scale, &v) in scales.iter_mut().zip(row) {
                *scale = scale.max(v.abs());
            }
        }
        for scale in &mut scales {
            *scale = if *scale > 0.0 { *scale / 127.0 } else { 1.0 };
        }
        let mut codes = vec![0i8; padded * quads * 4];
        let mut sums = vec![0i32; padded];
        for (row, values) in rows.chunks_exact(n).enumerate() {
            for (col, &v) in values.iter().enumerate() {
                let code = (v / scales[col]).round_ties_even().clamp(-127.0, 127.0) as i8;
                let (panel, lane) = (col / PANEL, col % PANEL);
                codes[((panel * quads + row / 4) * PANEL + lane) * 4 + row % 4] = code;
                sums[col] += i32::from(code);
            }
        }
        Self {
            start,
            len,
            codes,
            scales,
            sums,
        }
    }
}

impl Quantized {
    /// Quantizes `weight`, `k × n` row-major.
    pub fn new(weight: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(weight.len(), k * n, "Quantized::new: weight is not k × n");
        assert!(n > 0, "Quantized::new: no columns");
        let slices = (0..k)
            .step_by(SLICE)
            .map(|start| {
                let len = SLICE.min(k - start);
                Slice::new(&weight[start * n..(start + len) * n], start, len, n)
            })
            .collect();
        Self { slices, k, n }
    }

    /// Entry (`row`, `col`) as the products use it, for tests.
    #[cfg(test)]
    pub fn get(&self, row: usize, col: usize) -> f32 {
        let slice = &self.slices[row / SLICE];
        let (row, quads) = (row - slice.start, slice.len.div_ceil(4));
        let (panel, lane) = (col / PANEL, col % PANEL);
        let code = slice.codes[((panel * quads + row / 4) * PANEL + lane) * 4 + row % 4];
        f32::from(code) * slice.scales[col]
    }

    /// `out += a·W` for `rows` rows: `a` is `rows × k` f32, `out` is `rows × n`. `scratch`
    /// holds one slice of `a`'s codes at a time (resized as needed). Panics unless
    /// [`supported`].
    pub fn matmul(&self, out: &mut [f32], a: &[f32], rows: usize, scratch: &mut Vec<u32>) {
        assert!(supported(), "int8 products need AVX-512 VNNI");
        assert!(a.len() >= rows * self.k, "matmul: a too small");
        assert!(out.len() >= rows * self.n, "matmul: out too small");
        let mut row_scales = Vec::with_capacity(rows);
        for slice in &self.slices {
            let quads = slice.len.div_ceil(4);
            scratch.clear();
            scratch.resize(rows * quads, 0);
            row_scales.clear();
            for (codes, row) in scratch.chunks_exact_mut(quads).zip(a.chunks_exact(self.k)) {
                let row = &row[slice.start..slice.start + slice.len];
                // SAFETY: `supported` (asserted above) checked the CPU features.
                #[cfg(target_arch = "x86_64")]
                row_scales.push(unsafe { quantize_avx512(row, codes) });
                #[cfg(not(target_arch = "x86_64"))]
                row_scales.push(quantize(row, codes));
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `supported` checked the CPU features; the asserts above bound every row
            // the kernel reads (`scratch`: rows × quads) and writes (`out`: rows × n, columns
            // past `n` masked off), and the panels are `⌈n/64⌉ × quads × 256` codes by
            // construction.
            unsafe {
                matmul_avx512(slice, self.n, out, scratch, &row_scales);
            }
        }
    }
}

/// The scale and zero point of a row whose values lie in `low..=high`: the range is widened
/// to hold 0 (so the zero point is a code, 0..=255), and a row of zeros gets scale 1.
fn row_scale(low: f32, high: f32) -> RowScale {
    let (low, high) = (low.min(0.0), high.max(0.0));
    let scale = (high - low) / 255.0;
    if !(scale > 0.0 && scale.is_finite()) {
        return RowScale {
            scale: 1.0,
            zero: 0,
        };
    }
    RowScale {
        scale,
        zero: ((-low / scale).round_ties_even() as i32).clamp(0, 255),
    }
}

/// One row into codes 0..=255, four to a `u32` (the row's `4q..4q+4` in `out[q]`, low byte
/// first; zero past the end).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn quantize(row: &[f32], out: &mut [u32]) -> RowScale {
    let low = row.iter().copied().fold(f32::INFINITY, f32::min);
    let high = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let rs = row_scale(low, high);
    let inverse = 1.0 / rs.scale;
    out.fill(0);
    for (i, &v) in row.iter().enumerate() {
        let code = ((v * inverse).round_ties_even() as i32 + rs.zero).clamp(0, 255) as u32;
        out[i / 4] |= code << (8 * (i % 4));
    }
    rs
}

/// [`quantize`], 16 values per instruction (`vcvtps2dq` rounds to nearest even, as `quantize`
/// does, under the default rounding mode).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn quantize_avx512(row: &[f32], out: &mut [u32]) -> RowScale {
    let (chunks, tail) = row.as_chunks::<16>();
    // SAFETY (this block and the next): every load reads one chunk of 16 floats, every store
    // writes 4 u32s of `out` (which holds ⌈row/4⌉ ≥ 4 per chunk).
    let (low, high) = unsafe {
        let (mut low, mut high) = (
            _mm512_set1_ps(f32::INFINITY),
            _mm512_set1_ps(f32::NEG_INFINITY),
        );
        for chunk in chunks {
            let v = _mm512_loadu_ps(chunk.as_ptr());
            low = _mm512_min_ps(low, v);
            high = _mm512_max_ps(high, v);
        }
        (_mm512_reduce_min_ps(low), _mm512_reduce_max_ps(high))
    };
    let low = tail.iter().copied().fold(low, f32::min);
    let high = tail.iter().copied().fold(high, f32::max);
    let rs = row_scale(low, high);
    let inverse = 1.0 / rs.scale;
    unsafe {
        let (inv, zero) = (_mm512_set1_ps(inverse), _mm512_set1_epi32(rs.zero));
        let (floor, ceiling) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
        for (chunk, o) in chunks.iter().zip(out.chunks_exact_mut(4)) {
            let v = _mm512_mul_ps(_mm512_loadu_ps(chunk.as_ptr()), inv);
            let code = _mm512_add_epi32(_mm512_cvtps_epi32(v), zero);
            let code = _mm512_min_epi32(_mm512_max_epi32(code, floor), ceiling);
            _mm_storeu_si128(o.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(code));
        }
    }
    let done = chunks.len() * 4;
    out[done..].fill(0);
    for (i, &v) in tail.iter().enumerate() {
        let code = ((v * inverse).round_ties_even() as i32 + rs.zero).clamp(0, 255) as u32;
        out[done + i / 4] |= code << (8 * (i % 4));
    }
    rs
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn matmul_avx512(w: &Slice, n: usize, out: &mut [f32], a: &[u32], row_scales: &[RowScale]) {
    let quads = w.len.div_ceil(4);
    let rows = row_scales.len();
    for panel in 0..n.div_ceil(PANEL) {
        let b = unsafe { w.codes.as_ptr().add(panel * quads * PANEL * 4) };
        let cols = (n - panel * PANEL).min(PANEL);
        let column = Columns {
            masks: std::array::from_fn(|v| {
                let valid = cols.saturating_sub(v * 16).min(16);
                ((1u32 << valid) - 1) as __mmask16
            }),
            // SAFETY: `scales` and `sums` are padded to whole panels.
            scales: std::array::from_fn(|v| unsafe {
                _mm512_loadu_ps(w.scales.as_ptr().add(panel * PANEL + v * 16))
            }),
            sums: std::array::from_fn(|v| unsafe {
                _mm512_loadu_si512(w.sums.as_ptr().add(panel * PANEL + v * 16).cast())
            }),
        };
        let mut row = 0;
        while row < rows {
            let (a, o, rs) = unsafe {
                (
                    a.as_ptr().add(row * quads),
                    out.as_mut_ptr().add(row * n + panel * PANEL),
                    &row_scales[row..],
                )
            };
            // SAFETY (all arms): rows `row..row + R` exist in `a`, `out` and `row_scales`.
            unsafe {
                match rows - row {
                    1 => kernel::<1>(a, quads, b, o, n, rs, &column),
                    2 => kernel::<2>(a, quads, b, o, n, rs, &column),
                    3 => kernel::<3>(a, quads, b, o, n, rs, &column),
                    4 => kernel::<4>(a, quads, b, o, n, rs, &column),
                    5 => kernel::<5>(a, quads, b, o, n, rs, &column),
                    _ => kernel::<ROWS>(a, quads, b, o, n, rs, &column),
                }
            }
            row += ROWS;
        }
    }
}

/// One panel's column masks (past `n`), scales and code sums.
#[cfg(target_arch = "x86_64")]
struct Columns {
    masks: [__mmask16; 4],
    scales: [__m512; 4],
    sums: [__m512i; 4],
}

/// `R` rows × one panel: `out[r][..] += s_r · s_col · (Σ_q a[r][q] · b[q][..] − zero_r · sum)`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel<const R: usize>(
    a: *const u32,
    quads: usize,
    b: *const i8,
    out: *mut f32,
    out_row: usize,
    row_scales: &[RowScale],
    columns: &Columns,
) {
    unsafe {
        let mut acc = [[_mm512_setzero_si512(); 4]; R];
        for q in 0..quads {
            let at = b.add(q * PANEL * 4).cast::<__m512i>();
            let w: [__m512i; 4] = std::array::from_fn(|v| _mm512_loadu_si512(at.add(v)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_epi32(*a.add(r * quads + q) as i32);
                for (acc, w) in acc.iter_mut().zip(&w) {
                    *acc = _mm512_dpbusd_epi32(*acc, x, *w);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let RowScale { scale, zero } = row_scales[r];
            let (scale, zero) = (_mm512_set1_ps(scale), _mm512_set1_epi32(zero));
            for (v, acc) in acc.iter().enumerate() {
                let exact = _mm512_sub_epi32(*acc, _mm512_mullo_epi32(zero, columns.sums[v]));
                let step = _mm512_mul_ps(scale, columns.scales[v]);
                let o = out.add(r * out_row + v * 16);
                let mask = columns.masks[v];
                let sum = _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(exact),
                    step,
                    _mm512_maskz_loadu_ps(mask, o),
                );
                _mm512_mask_storeu_ps(o, mask, sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a row's codes stand for.
    fn dequantize(codes: &[u32], rs: RowScale, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let code = (codes[i / 4] >> (8 * (i % 4))) & 0xFF;
                rs.scale * (code as i32 - rs.zero) as f32
            })
            .collect()
    }

    #[test]
    fn a_row_comes_back_within_half_a_step_and_zero_exactly() {
        for row in [
            vec![0.0, 1.0, -1.0, 0.25, 3.5, -0.17],
            vec![2.0, 3.0, 5.0],
            vec![-4.0, -1.0],
            vec![0.0; 7],
        ] {
            let mut codes = vec![0u32; row.len().div_ceil(4)];
            let rs = quantize(&row, &mut codes);
            let back = dequantize(&codes, rs, row.len());
            for (&v, &b) in row.iter().zip(&back) {
                assert!(
                    (v - b).abs() <= rs.scale / 2.0 + 1e-6,
                    "{v} came back as {b}"
                );
                if v == 0.0 {
                    assert_eq!(b, 0.0, "zero is a code");
                }
            }
        }
    }

    #[test]
    fn the_vector_quantization_agrees_code_for_code_with_the_scalar_one() {
        if !supported() {
            eprintln!("skipping: this CPU has no AVX-512 VNNI");
            return;
        }
        // Rows of whole chunks and with tails, positive, negative and mixed, ties included.
        for len in [1usize, 5, 16, 33, 384, 1536, 1539] {
            let row: Vec<f32> = (0..len)
                .map(|i| (i as f32 * 0.731).sin() * if i % 7 == 0 { 9.0 } else { 1.0 })
                .collect();
            for row in [row.clone(), row.iter().map(|v| v.abs()).collect()] {
                let mut scalar = vec![0u32; len.div_ceil(4)];
                let mut vector = vec![u32::MAX; len.div_ceil(4)];
                let want = quantize(&row, &mut scalar);
                // SAFETY: checked above.
                let got = unsafe { quantize_avx512(&row, &mut vector) };
                assert_eq!(want, got, "len {len}");
                assert_eq!(scalar, vector, "len {len}");
            }
        }
    }

    #[test]
    fn products_match_a_naive_product_of_the_quantized_operands_for_any_shape() {
        if !supported() {
            eprintln!("skipping: this CPU has no AVX-512 VNNI");
            return;
        }
        // k not a multiple of 4 or of a slice, n not a multiple of 16 or 64, rows past one
        // block of 6.
        for (rows, k, n) in [
            (1, 1, 1),
            (7, 5, 3),
            (13, 33, 70),
            (6, 384, 128),
            (3, 2 * SLICE + 6, 17),
            (20, 1536, 200),
        ] {
            let a: Vec<f32> = (0..rows * k)
                .map(|i| (i as f32 * 0.37).sin() * 3.0)
                .collect();
            let w: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let quantized = Quantized::new(&w, k, n);
            let mut out = vec![1f32; rows * n + 1];
            let mut scratch = Vec::new();
            quantized.matmul(&mut out, &a, rows, &mut scratch);
            for r in 0..rows {
                // The row as the product sees it: each slice quantized on its own.
                let row = &a[r * k..(r + 1) * k];
                let x: Vec<f32> = row
                    .chunks(SLICE)
                    .flat_map(|part| {
                        let mut codes = vec![0u32; part.len().div_ceil(4)];
                        let rs = quantize(part, &mut codes);
                        dequantize(&codes, rs, part.len())
                    })
                    .collect();
                for c in 0..n {
                    let want: f64 = (0..k)
                        .map(|p| f64::from(x[p]) * f64::from(quantized.get(p, c)))
                        .sum();
                    let got = f64::from(out[r * n + c]) - 1.0;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "({rows}, {k}, {n}) at {r},{c}: {got} vs {want}"
                    );
                }
            }
            assert_eq!(out[rows * n], 1.0, "wrote past the output");
        }
    }

    #[test]
    fn quantized_products_stay_within_the_rounding_bound_of_the_exact_ones() {
        if !supported() {
            eprintln!("skipping: this CPU has no AVX-512 VNNI");
            return;
        }
        // Each term a·w moves by at most |w|·step_a/2 + |a|·step_w/2 + step_a·step_w/4, where
        // a step is a slice's range over 255 (the row's, widened to hold 0) or a column's
        // largest magnitude in the slice over 127.
        let (rows, k, n) = (9, 3 * SLICE + 10, 40);
        let a: Vec<f32> = (0..rows * k)
            .map(|i| (i as f32 * 0.37).sin() * if i % 29 == 0 { 8.0 } else { 1.0 })
            .collect();
        let w: Vec<f32> = (0..k * n)
            .map(|i| (i as f32 * 0.013).cos() * 0.05)
            .collect();
        let mut out = vec![0f32; rows * n];
        Quantized::new(&w, k, n).matmul(&mut out, &a, rows, &mut Vec::new());
        for r in 0..rows {
            for c in 0..n {
                let (mut exact, mut bound) = (0f64, 1e-5);
                for start in (0..k).step_by(SLICE) {
                    let part = start..(start + SLICE).min(k);
                    let row = &a[r * k..][part.clone()];
                    let low = row.iter().copied().fold(0f32, f32::min);
                    let high = row.iter().copied().fold(0f32, f32::max);
                    let step_a = f64::from(high - low) / 255.0;
                    let column = part.clone().map(|p| f64::from(w[p * n + c]));
                    let step_w = column.map(f64::abs).fold(0.0, f64::max) / 127.0;
                    for p in part {
                        let (x, y) = (f64::from(a[r * k + p]), f64::from(w[p * n + c]));
                        exact += x * y;
                        bound += y.abs() * step_a / 2.0 + x.abs() * step_w / 2.0;
                        bound += step_a * step_w / 4.0;
                    }
                }
                let got = f64::from(out[r * n + c]);
                assert!(
                    (got - exact).abs() <= bound,
                    "{r},{c}: {got} vs {exact}, bound {bound}"
                );
            }
        }
    }
}

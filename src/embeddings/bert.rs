//! The forward pass of a BERT encoder (all-MiniLM-L6-v2's architecture) written out for the CPU:
//! the weights read once from `model.safetensors` (the query, key and value projections joined
//! into one matrix); the dense layers' products in int8 on CPUs with AVX-512 VNNI
//! ([`super::int8`]), in bf16 on CPUs with AVX-512 BF16 only ([`super::bf16`]), else in f32
//! through the `gemm` crate (AVX-512 or AVX2 kernels picked at run time); attention in blocks on AVX-512 ([`super::attention`]), else through `gemm` too;
//! and the element-wise steps fused into single passes over the activations
//! (bias + exact GELU with a vectorised `erf`, residual + LayerNorm). Texts are never padded: the
//! token-wise layers run over the tokens of several texts stacked together, attention runs per
//! text and head, so a text's vector does not depend on what it was batched with. Returns the
//! mean of each text's token vectors (the caller normalises).

use serde::Deserialize;

/// The parts of the model's `config.json` the forward pass reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
}

fn default_type_vocab_size() -> usize {
    2
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

fn default_hidden_act() -> String {
    "gelu".into()
}

/// One text to encode: its word-piece ids and token type ids (the same length, at least one).
pub struct Text<'a> {
    pub ids: &'a [u32],
    pub type_ids: &'a [u32],
}

/// The number format of the dense layers' products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 weights and activations, through the `gemm` crate: any CPU.
    F32,
    /// Weights and the products' inputs rounded to bfloat16, accumulated in f32 ([`super::bf16`]):
    /// twice the f32 rate on CPUs with AVX-512 BF16. Vectors stay within cosine 0.9999 of the
    /// f32 ones on the tests' texts (the bar is 0.999).
    Bf16,
    /// Weights and the products' inputs in 8-bit integers, accumulated in i32
    /// ([`super::int8`]): twice the bf16 rate on CPUs with AVX-512 VNNI. Inputs are quantized
    /// per row in slices of [`super::int8::SLICE`] values, which keeps vectors within cosine
    /// 0.9995 of the f32 ones on 1,000 benchmark texts (one scale per whole row: 0.998). Texts
    /// shorter than [`SHORT_TEXT`] tokens (search queries, mostly) run in bf16 (f32 without
    /// AVX-512 BF16): with one or two tokens to average, the rounding of each weighs on the
    /// vector (the empty text, two tokens, fell to cosine 0.9982 in int8).
    Int8,
}

/// Whether the hand-written kernels ([`super::bf16`] products, [`super::attention`] blocks) are
/// picked without being asked for. This crate is compiled at opt-level 0 in a debug build, where
/// their intrinsics are calls and a query's embedding took seconds (4.2 s for one
/// `fetch_context`, enough to expire a test's 2-second OAuth token): debug builds run the f32
/// path of the `gemm` dependency (built at opt-level 1) unless bf16 is asked for by name, as
/// the tests of those kernels do.
const HAND_KERNELS_BY_DEFAULT: bool = !cfg!(debug_assertions);

impl Precision {
    /// In a release build: int8 where the CPU has AVX-512 VNNI, bf16 where it has AVX-512 BF16
    /// only; else f32.
    pub fn fastest() -> Self {
        if !HAND_KERNELS_BY_DEFAULT {
            Self::F32
        } else if Self::Int8.supported() {
            Self::Int8
        } else if Self::Bf16.supported() {
            Self::Bf16
        } else {
            Self::F32
        }
    }

    /// Whether this CPU runs this precision's products.
    pub fn supported(self) -> bool {
        match self {
            Self::F32 => true,
            Self::Bf16 => super::bf16::supported(),
            Self::Int8 => super::int8::supported(),
        }
    }
}

/// Texts of fewer tokens than this run in bf16 (or f32) under [`Precision::Int8`]. Measured on
/// short texts in int8: 0.9982 for 2 tokens, 0.9994 for 3 to 7.
pub const SHORT_TEXT: usize = 8;

/// A dense layer's weight matrix, `inputs × outputs`.
enum Weight {
    /// Row-major (transposed from PyTorch's layout at load, so a product reads it row by row).
    F32(Vec<f32>),
    Bf16(super::bf16::Packed),
    Int8(super::int8::Quantized),
}

/// A dense layer.
struct Linear {
    weight: Weight,
    /// Under [`Precision::Int8`], the weight for texts shorter than [`SHORT_TEXT`] tokens.
    short_texts: Option<Weight>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

struct Layer {
    /// Query, key and value projections side by side: `hidden × 3·hidden`.
    qkv: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The encoder's weights.
pub struct Bert {
    config: Config,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    token_type_embeddings: Vec<f32>,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    kernels: Kernels,
    /// Attention in blocks ([`super::attention`]): on AVX-512, in a release build or with bf16
    /// products asked for ([`HAND_KERNELS_BY_DEFAULT`]).
    blocked_attention: bool,
}

/// The tensors of a safetensors file by name, as f32.
struct Weights<'a> {
    tensors: safetensors::SafeTensors<'a>,
    /// `bert.` when the file's names carry the prefix of a `BertFor…` checkpoint.
    prefix: &'static str,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let full = format!("{}{name}", self.prefix);
        let view = self
            .tensors
            .tensor(&full)
            .map_err(|e| format!("tensor {full}: {e}"))?;
        if view.shape() != shape {
            return Err(format!(
                "tensor {full} has shape {:?}, config.json implies {shape:?}",
                view.shape()
            ));
        }
        match view.dtype() {
            safetensors::Dtype::F32 => Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            other => Err(format!("tensor {full} is {other:?}; only F32 is supported")),
        }
    }

    /// A dense layer's transposed weight (`inputs × outputs`, row-major) and bias.
    fn linear(
        &self,
        name: &str,
        inputs: usize,
        outputs: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), String> {
        let weight = self.get(&format!("{name}.weight"), &[outputs, inputs])?;
        Ok((
            transpose(&weight, outputs, inputs),
            self.get(&format!("{name}.bias"), &[outputs])?,
        ))
    }

    fn layer_norm(&self, name: &str, size: usize, eps: f32) -> Result<LayerNorm, String> {
        let (weight, bias) = match self.get(&format!("{name}.weight"), &[size]) {
            Ok(weight) => (weight, self.get(&format!("{name}.bias"), &[size])?),
            // Older BERT checkpoints name them gamma and beta.
            Err(_) => (
                self.get(&format!("{name}.gamma"), &[size])?,
                self.get(&format!("{name}.beta"), &[size])?,
            ),
        };
        Ok(LayerNorm { weight, bias, eps })
    }
}

/// `rows × cols` row-major into `cols × rows` row-major.
fn transpose(matrix: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; matrix.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = matrix[r * cols + c];
        }
    }
    out
}

impl Bert {
    /// Reads the weights from the bytes of `model.safetensors`, checking every shape against
    /// `config`, for products in `precision` (which must be [`Precision::F32`] unless the CPU
    /// has AVX-512 BF16). Errors name the tensor.
    pub fn load(
        config: Config,
        safetensors_bytes: &[u8],
        precision: Precision,
    ) -> Result<Self, String> {
        if !precision.supported() {
            return Err(format!(
                "{precision:?} products need a CPU with AVX-512 BF16 (bf16) or VNNI (int8)"
            ));
        }
        if config.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only \"gelu\")",
                config.hidden_act
            ));
        }
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(format!(
                "hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
            ));
        }
        let tensors = safetensors::SafeTensors::deserialize(safetensors_bytes)
            .map_err(|e| format!("reading the weights: {e}"))?;
        let prefix = if tensors.names().iter().any(|name| name.starts_with("bert.")) {
            "bert."
        } else {
            ""
        };
        let weights = Weights { tensors, prefix };
        let eps = config.layer_norm_eps as f32;
        let in_bf16 = |weight: Vec<f32>, inputs, outputs| {
            if Precision::Bf16.supported() {
                Weight::Bf16(super::bf16::Packed::new(&weight, inputs, outputs))
            } else {
                Weight::F32(weight)
            }
        };
        let linear = |(weight, bias): (Vec<f32>, Vec<f32>), inputs, outputs| {
            let (weight, short_texts) = match precision {
                Precision::F32 => (Weight::F32(weight), None),
                Precision::Bf16 => (in_bf16(weight, inputs, outputs), None),
                Precision::Int8 => (
                    Weight::Int8(super::int8::Quantized::new(&weight, inputs, outputs)),
                    Some(in_bf16(weight, inputs, outputs)),
                ),
            };
            Linear {
                weight,
                short_texts,
                bias,
                inputs,
                outputs,
            }
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| -> Result<Layer, String> {
                let at = |part: &str| format!("encoder.layer.{i}.{part}");
                let (q, k, v) = (
                    weights.linear(&at("attention.self.query"), hidden, hidden)?,
                    weights.linear(&at("attention.self.key"), hidden, hidden)?,
                    weights.linear(&at("attention.self.value"), hidden, hidden)?,
                );
                // Rows of `hidden × 3·hidden`: each input's query, key and value weights.
                let mut weight = Vec::with_capacity(hidden * hidden * 3);
                for row in 0..hidden {
                    for part in [&q.0, &k.0, &v.0] {
                        weight.extend_from_slice(&part[row * hidden..(row + 1) * hidden]);
                    }
                }
                let bias = [q.1, k.1, v.1].concat();
                let (wide, intermediate) = (config.intermediate_size, "intermediate.dense");
                Ok(Layer {
                    qkv: linear((weight, bias), hidden, 3 * hidden),
                    attention_output: linear(
                        weights.linear(&at("attention.output.dense"), hidden, hidden)?,
                        hidden,
                        hidden,
                    ),
                    attention_norm: weights.layer_norm(
                        &at("attention.output.LayerNorm"),
                        hidden,
                        eps,
                    )?,
                    intermediate: linear(
                        weights.linear(&at(intermediate), hidden, wide)?,
                        hidden,
                        wide,
                    ),
                    output: linear(
                        weights.linear(&at("output.dense"), wide, hidden)?,
                        wide,
                        hidden,
                    ),
                    output_norm: weights.layer_norm(&at("output.LayerNorm"), hidden, eps)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let kernels = Kernels::detect();
        Ok(Self {
            word_embeddings: weights.get(
                "embeddings.word_embeddings.weight",
                &[config.vocab_size, hidden],
            )?,
            position_embeddings: weights.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, hidden],
            )?,
            token_type_embeddings: weights.get(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, hidden],
            )?,
            embeddings_norm: weights.layer_norm("embeddings.LayerNorm", hidden, eps)?,
            layers,
            kernels,
            blocked_attention: kernels.avx512()
                && (HAND_KERNELS_BY_DEFAULT || precision != Precision::F32),
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Floats of working memory per token of a [`Self::mean_pooled`] call (besides the
    /// attention scores of one head of its longest text).
    pub fn floats_per_token(&self) -> usize {
        self.config
            .intermediate_size
            .max(3 * self.config.hidden_size)
    }

    /// The mean of the last layer's token vectors of each text, on the calling thread. Texts
    /// longer than `max_position_embeddings` or holding ids outside the vocabulary are errors.
    pub fn mean_pooled(&self, texts: &[Text<'_>]) -> Result<Vec<Vec<f32>>, String> {
        let config = &self.config;
        for text in texts {
            if text.ids.is_empty()
                || text.ids.len() != text.type_ids.len()
                || text.ids.len() > config.max_position_embeddings
            {
                return Err(format!(
                    "a text of {} tokens ({} type ids) does not fit the model (1 to {} tokens)",
                    text.ids.len(),
                    text.type_ids.len(),
                    config.max_position_embeddings
                ));
            }
            if let Some(id) = text
                .ids
                .iter()
                .find(|&&id| id as usize >= config.vocab_size)
            {
                return Err(format!("token id {id} is outside the vocabulary"));
            }
            if let Some(t) = text
                .type_ids
                .iter()
                .find(|&&t| t as usize >= config.type_vocab_size)
            {
                return Err(format!("token type id {t} is outside the model's"));
            }
        }
        let int8 = self
            .layers
            .iter()
            .any(|layer| layer.qkv.short_texts.is_some());
        let is_short = |text: &Text<'_>| int8 && text.ids.len() < SHORT_TEXT;
        if !texts.iter().any(is_short) || texts.iter().all(is_short) {
            return Ok(self.run(texts, texts.first().is_some_and(is_short)));
        }
        // Short and long texts in separate passes, so each text's vector depends on its own
        // length only, never on what it was batched with.
        let (short, long): (Vec<usize>, Vec<usize>) =
            (0..texts.len()).partition(|&i| is_short(&texts[i]));
        let pick = |indexes: &[usize]| -> Vec<Text<'_>> {
            indexes
                .iter()
                .map(|&i| Text {
                    ids: texts[i].ids,
                    type_ids: texts[i].type_ids,
                })
                .collect()
        };
        let mut vectors = vec![Vec::new(); texts.len()];
        for (indexes, short) in [(short, true), (long, false)] {
            let pooled = self.run(&pick(&indexes), short);
            for (i, vector) in indexes.into_iter().zip(pooled) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    /// [`Self::forward`] built for this CPU's instruction set.
    fn run(&self, texts: &[Text<'_>], short: bool) -> Vec<Vec<f32>> {
        match self.kernels {
            Kernels::Baseline => self.forward(texts, short),
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Kernels::detect` chose this only on a CPU with these features.
            Kernels::Avx2 => unsafe { forward_avx2(self, texts, short) },
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: as above.
            Kernels::Avx512 => unsafe { forward_avx512(self, texts, short) },
        }
    }

    /// The pass itself; inlined into each instruction-set build ([`forward_avx512`],
    /// [`forward_avx2`], and the baseline one in [`Self::run`]). `short`: the texts are
    /// shorter than [`SHORT_TEXT`] tokens (which picks the layers' `short_texts` weights).
    #[inline(always)]
    fn forward(&self, texts: &[Text<'_>], short: bool) -> Vec<Vec<f32>> {
        let hidden = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let head_size = hidden / heads;
        let tokens: usize = texts.iter().map(|t| t.ids.len()).sum();
        let longest = texts.iter().map(|t| t.ids.len()).max().unwrap_or(0);

        let mut x = vec![0f32; tokens * hidden];
        let mut qkv = vec![0f32; tokens * 3 * hidden];
        let mut context = vec![0f32; tokens * hidden];
        let mut wide = vec![0f32; tokens * self.config.intermediate_size];
        let mut scratch = Vec::new();
        // Attention in blocks on AVX-512 (`super::attention`), else each head's scores whole.
        let fast_attention = self.blocked_attention;
        let mut attention = super::attention::Scratch::default();
        let mut scores = vec![0f32; if fast_attention { 0 } else { longest * longest }];

        // Embeddings: word + position + token type, then LayerNorm.
        let mut row = 0;
        for text in texts {
            for (position, (&id, &type_id)) in text.ids.iter().zip(text.type_ids).enumerate() {
                let out = &mut x[row * hidden..(row + 1) * hidden];
                let word = &self.word_embeddings[id as usize * hidden..][..hidden];
                let pos = &self.position_embeddings[position * hidden..][..hidden];
                let kind = &self.token_type_embeddings[type_id as usize * hidden..][..hidden];
                for (((o, w), p), k) in out.iter_mut().zip(word).zip(pos).zip(kind) {
                    *o = w + p + k;
                }
                self.embeddings_norm.apply(out);
                row += 1;
            }
        }

        let scale = 1.0 / (head_size as f32).sqrt();
        for layer in &self.layers {
            // Self-attention, per text and head, into `context`.
            layer.qkv.apply(&x, &mut qkv, tokens, &mut scratch, short);
            let mut start = 0;
            for text in texts {
                let len = text.ids.len();
                let rows = &qkv[start * 3 * hidden..(start + len) * 3 * hidden];
                let out = &mut context[start * hidden..(start + len) * hidden];
                for head in 0..heads {
                    if fast_attention {
                        let head = super::attention::Head {
                            len,
                            hidden,
                            offset: head * head_size,
                            head_size,
                            scale,
                        };
                        super::attention::attend(rows, out, &head, &mut attention, softmax);
                        continue;
                    }
                    attend(
                        rows,
                        out,
                        &mut scores,
                        len,
                        hidden,
                        head * head_size,
                        head_size,
                        scale,
                    );
                }
                start += len;
            }
            // Output projection, residual and LayerNorm.
            let projected = &mut qkv[..tokens * hidden];
            layer
                .attention_output
                .apply(&context, projected, tokens, &mut scratch, short);
            for (x, p) in x
                .chunks_exact_mut(hidden)
                .zip(projected.chunks_exact(hidden))
            {
                layer.attention_norm.add_and_apply(x, p);
            }
            // Feed-forward: GELU(x·W1 + b1)·W2 + b2, residual and LayerNorm.
            let wide = &mut wide[..tokens * layer.intermediate.outputs];
            layer
                .intermediate
                .apply(&x, wide, tokens, &mut scratch, short);
            gelu(wide);
            let projected = &mut qkv[..tokens * hidden];
            layer
                .output
                .apply(wide, projected, tokens, &mut scratch, short);
            for (x, p) in x
                .chunks_exact_mut(hidden)
                .zip(projected.chunks_exact(hidden))
            {
                layer.output_norm.add_and_apply(x, p);
            }
        }

        // Mean over each text's tokens.
        let mut start = 0;
        texts
            .iter()
            .map(|text| {
                let len = text.ids.len();
                let mut sum = vec![0f32; hidden];
                for row in x[start * hidden..(start + len) * hidden].chunks_exact(hidden) {
                    for (s, v) in sum.iter_mut().zip(row) {
                        *s += v;
                    }
                }
                start += len;
                sum.iter_mut().for_each(|s| *s /= len as f32);
                sum
            })
            .collect()
    }
}

impl Linear {
    /// `out = x·weight + bias` for `rows` rows of `x` (of texts shorter than [`SHORT_TEXT`]
    /// tokens when `short`); `scratch` holds `x` in bf16 or int8 for such a weight.
    #[inline(always)]
    fn apply(&self, x: &[f32], out: &mut [f32], rows: usize, scratch: &mut Vec<u32>, short: bool) {
        let out = &mut out[..rows * self.outputs];
        for row in out.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(&self.bias);
        }
        let x = &x[..rows * self.inputs];
        let weight = match &self.short_texts {
            Some(weight) if short => weight,
            _ => &self.weight,
        };
        match weight {
            Weight::F32(weight) => matmul(
                out,
                Strides::row_major(self.outputs),
                x,
                Strides::row_major(self.inputs),
                weight,
                Strides::row_major(self.outputs),
                (rows, self.inputs, self.outputs),
                1.0,
            ),
            Weight::Bf16(weight) => weight.matmul(out, x, rows, scratch),
            Weight::Int8(weight) => weight.matmul(out, x, rows, scratch),
        }
    }

    /// Weight entry (`input`, `output`) as the products use it.
    #[cfg(test)]
    fn weight_at(&self, input: usize, output: usize) -> f32 {
        match &self.weight {
            Weight::F32(weight) => weight[input * self.outputs + output],
            Weight::Bf16(weight) => weight.get(input, output),
            Weight::Int8(weight) => weight.get(input, output),
        }
    }
}

impl LayerNorm {
    /// LayerNorm of `x` in place.
    #[inline(always)]
    fn apply(&self, x: &mut [f32]) {
        let n = x.len() as f32;
        let mean = sum(x) / n;
        let mut lanes = [0f32; 16];
        let (chunks, tail) = x.as_chunks::<16>();
        for chunk in chunks {
            for (lane, v) in lanes.iter_mut().zip(chunk) {
                let d = v - mean;
                *lane += d * d;
            }
        }
        let var = (lanes.iter().sum::<f32>()
            + tail.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>())
            / n;
        let inv = 1.0 / (var + self.eps).sqrt();
        for ((v, w), b) in x.iter_mut().zip(&self.weight).zip(&self.bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }

    /// `x = LayerNorm(x + residual)`.
    #[inline(always)]
    fn add_and_apply(&self, x: &mut [f32], residual: &[f32]) {
        for (v, r) in x.iter_mut().zip(residual) {
            *v += r;
        }
        self.apply(x);
    }
}

/// The sum of `x` in 16 lanes (so the compiler vectorises it).
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (chunks, tail) = x.as_chunks::<16>();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// One head of self-attention over one text: `rows` holds the text's `len` rows of query, key
/// and value (`3·hidden` each); the head's columns start at `offset`. Writes the head's
/// columns of `out` (`len` rows of `hidden`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn attend(
    rows: &[f32],
    out: &mut [f32],
    scores: &mut [f32],
    len: usize,
    hidden: usize,
    offset: usize,
    head_size: usize,
    scale: f32,
) {
    let scores = &mut scores[..len * len];
    let q = &rows[offset..];
    let k = &rows[hidden + offset..];
    let v = &rows[2 * hidden + offset..];
    let qkv_row = Strides::row_major(3 * hidden);
    // scores = q·kᵀ × scale
    matmul(
        scores,
        Strides::row_major(len),
        q,
        qkv_row,
        k,
        Strides {
            row: 1,
            col: 3 * hidden as isize,
        },
        (len, head_size, len),
        scale,
    );
    for row in scores.chunks_exact_mut(len) {
        softmax(row);
    }
    // out[:, offset..] = scores·v
    matmul(
        &mut out[offset..],
        Strides::row_major(hidden),
        scores,
        Strides::row_major(len),
        v,
        qkv_row,
        (len, len, head_size),
        0.0,
    );
}

#[inline(always)]
fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / sum(row);
    row.iter_mut().for_each(|v| *v *= inv);
}

/// `e^x` for `x ≤ 0` (softmax's shifted scores), vectorisable: `x = n·ln2 + r` with
/// `|r| ≤ ln2/2`, a degree-6 polynomial for `e^r` and `2^n` built in the exponent bits.
/// Within 2 ulp of `f32::exp` over that range; `0` below −87.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    // ln 2 split in two so that n·ln2 is exact enough.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// The exact GELU, `x·Φ(x) = x/2·(1 + erf(x/√2))`, in place.
#[inline(always)]
fn gelu(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// `erf` as a rational function of `x` clamped to ±4 (where `erf` is ±1 in f32): the
/// approximation Eigen and XLA use for f32, within a few ulp; vectorisable (no branches).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906e-4;
    p = p * x2 + -2.954_600_2e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    x * p / q
}

/// Row and column strides of a matrix, in elements.
#[derive(Clone, Copy)]
struct Strides {
    row: isize,
    col: isize,
}

impl Strides {
    fn row_major(cols: usize) -> Self {
        Self {
            row: cols as isize,
            col: 1,
        }
    }
}

/// The last element index + 1 a `rows × cols` matrix with `strides` touches.
fn extent(rows: usize, cols: usize, strides: Strides) -> usize {
    if rows == 0 || cols == 0 {
        return 0;
    }
    (rows - 1) * strides.row as usize + (cols - 1) * strides.col as usize + 1
}

/// `dst = keep·dst + a·b` (`keep` 0 or 1) for `a` of `m × k` and `b` of `k × n`, each with its
/// strides, `scale` applied to `a·b`, on the calling thread.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn matmul(
    dst: &mut [f32],
    dst_strides: Strides,
    a: &[f32],
    a_strides: Strides,
    b: &[f32],
    b_strides: Strides,
    (m, k, n): (usize, usize, usize),
    scale_or_keep: f32,
) {
    // `scale_or_keep`: 1.0 adds the product to dst (bias already there); anything else
    // overwrites dst with scale × product (0.0 meaning a plain product).
    let (keep, scale) = if scale_or_keep == 1.0 {
        (true, 1.0)
    } else if scale_or_keep == 0.0 {
        (false, 1.0)
    } else {
        (false, scale_or_keep)
    };
    assert!(
        dst.len() >= extent(m, n, dst_strides),
        "matmul: dst too small"
    );
    assert!(a.len() >= extent(m, k, a_strides), "matmul: a too small");
    assert!(b.len() >= extent(k, n, b_strides), "matmul: b too small");
    assert!(dst_strides.row > 0 && dst_strides.col > 0 && a_strides.row > 0);
    assert!(a_strides.col > 0 && b_strides.row > 0 && b_strides.col > 0);
    #[allow(unsafe_code)]
    // SAFETY: the asserts above check that every element the product reads or writes lies
    // within the slices (all strides positive), and `dst` is borrowed mutably, so it aliases
    // neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_strides.col,
            dst_strides.row,
            keep,
            a.as_ptr(),
            a_strides.col,
            a_strides.row,
            b.as_ptr(),
            b_strides.col,
            b_strides.row,
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The instruction sets the element-wise steps are compiled for, picked once at load.
#[derive(Clone, Copy)]
enum Kernels {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernels {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx2;
            }
        }
        Self::Baseline
    }

    /// Whether the AVX-512 kernels were picked.
    fn avx512(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return matches!(self, Self::Avx512);
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
}

/// [`Bert::forward`] compiled for AVX2 and FMA. A plain function rather than a generic one
/// running a closure: a closure called from three builds is compiled once, for the baseline
/// instruction set, and called from each (the element-wise steps and softmax's rounding then ran
/// in SSE2, the rounding a `rintf` call per score).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_avx2(bert: &Bert, texts: &[Text<'_>], short: bool) -> Vec<Vec<f32>> {
    bert.forward(texts, short)
}

/// [`Bert::forward`] compiled for AVX-512 (see [`forward_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
fn forward_avx512(bert: &Bert, texts: &[Text<'_>], short: bool) -> Vec<Vec<f32>> {
    bert.forward(texts, short)
}

/// A reference for tests: the same encoder written as plainly as possible, in f64, one text at
/// a time, with every product a naive loop, the standard library's `exp` and `erf` by its Taylor
/// series, so that it shares nothing with the fast path but the weights.
#[cfg(test)]
impl Bert {
    pub(super) fn reference_mean_pooled(&self, text: &Text<'_>) -> Vec<f64> {
        let c = &self.config;
        let (h, heads, len) = (c.hidden_size, c.num_attention_heads, text.ids.len());
        let d = h / heads;
        let linear = |x: &[Vec<f64>], l: &Linear| -> Vec<Vec<f64>> {
            x.iter()
                .map(|row| {
                    let mut out: Vec<f64> = l.bias.iter().map(|&b| f64::from(b)).collect();
                    for (k, &v) in row.iter().enumerate() {
                        for (j, o) in out.iter_mut().enumerate() {
                            *o += v * f64::from(l.weight_at(k, j));
                        }
                    }
                    out
                })
                .collect()
        };
        let norm = |row: &mut Vec<f64>, n: &LayerNorm| {
            let mean = row.iter().sum::<f64>() / row.len() as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / row.len() as f64;
            let inv = 1.0 / (var + f64::from(n.eps)).sqrt();
            for ((v, &w), &b) in row.iter_mut().zip(&n.weight).zip(&n.bias) {
                *v = (*v - mean) * inv * f64::from(w) + f64::from(b);
            }
        };
        let mut x: Vec<Vec<f64>> = (0..len)
            .map(|p| {
                let (id, t) = (text.ids[p] as usize, text.type_ids[p] as usize);
                let mut row: Vec<f64> = (0..h)
                    .map(|i| {
                        f64::from(self.word_embeddings[id * h + i])
                            + f64::from(self.position_embeddings[p * h + i])
                            + f64::from(self.token_type_embeddings[t * h + i])
                    })
                    .collect();
                norm(&mut row, &self.embeddings_norm);
                row
            })
            .collect();
        for layer in &self.layers {
            let qkv = linear(&x, &layer.qkv);
            let mut context = vec![vec![0f64; h]; len];
            for head in 0..heads {
                let (q, k, v) = (head * d, h + head * d, 2 * h + head * d);
                for i in 0..len {
                    let scores: Vec<f64> = (0..len)
                        .map(|j| {
                            (0..d).map(|e| qkv[i][q + e] * qkv[j][k + e]).sum::<f64>()
                                / (d as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = exps.iter().sum();
                    for (j, e) in exps.iter().enumerate() {
                        for f in 0..d {
                            context[i][head * d + f] += e / total * qkv[j][v + f];
                        }
                    }
                }
            }
            let attended = linear(&context, &layer.attention_output);
            for (row, a) in x.iter_mut().zip(&attended) {
                row.iter_mut().zip(a).for_each(|(v, a)| *v += a);
                norm(row, &layer.attention_norm);
            }
            let mut wide = linear(&x, &layer.intermediate);
            for v in wide.iter_mut().flatten() {
                *v = 0.5 * *v * (1.0 + erf_series(*v / std::f64::consts::SQRT_2));
            }
            let out = linear(&wide, &layer.output);
            for (row, o) in x.iter_mut().zip(&out) {
                row.iter_mut().zip(o).for_each(|(v, o)| *v += o);
                norm(row, &layer.output_norm);
            }
        }
        (0..h)
            .map(|i| x.iter().map(|row| row[i]).sum::<f64>() / len as f64)
            .collect()
    }
}

/// `erf` in f64 by its Taylor series, within 1e-9 up to ±4 (beyond, the series cancels too
/// much; ±1 is within 2e-8 of the truth there).
#[cfg(test)]
fn erf_series(x: f64) -> f64 {
    if x.abs() > 4.0 {
        return x.signum();
    }
    let (mut term, mut total) = (x, x);
    for n in 1..400 {
        term *= -x * x / f64::from(n);
        total += term / f64::from(2 * n + 1);
    }
    total * 2.0 / std::f64::consts::PI.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_within_a_few_ulp_of_the_exact_value() {
        let mut worst = 0f64;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let exact = erf_series(f64::from(x));
            worst = worst.max((erf(x) as f64 - exact).abs());
        }
        assert!(worst < 5e-7, "erf is off by {worst}");
    }

    #[test]
    fn exp_matches_the_standard_library_over_softmax_inputs() {
        let mut worst = 0f32;
        for i in 0..=87_000 {
            let x = -(i as f32) / 1000.0;
            let (got, want) = (exp(x), x.exp());
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 1e-6, "exp is off by {worst} relative");
        assert!(
            exp(-200.0) < 1e-37,
            "far below the largest score is as good as zero"
        );
    }

    #[test]
    fn matmul_agrees_with_a_naive_product_for_transposed_operands() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut dst = vec![1f32; m * n];
        let b_strides = Strides {
            row: 1,
            col: k as isize,
        };
        matmul(
            &mut dst,
            Strides::row_major(n),
            &a,
            Strides::row_major(k),
            &bt,
            b_strides,
            (m, k, n),
            1.0,
        );
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0 + (0..k).map(|p| a[i * k + p] * bt[j * k + p]).sum::<f32>();
                assert!((dst[i * n + j] - want).abs() < 1e-5, "({i}, {j})");
            }
        }
    }
}

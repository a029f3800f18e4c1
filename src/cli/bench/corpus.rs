//! The benchmark's synthetic knowledge base: plausible engineering memories (rules, learnings,
//! API contracts, documents, research findings) over 30 topics, built from templates and a
//! per-topic vocabulary so that full-text and semantic queries spread realistically. Everything
//! is a pure function of the memory's index, so every run seeds the same texts.

use serde_json::json;

use crate::domain::{MemoryDraft, MemoryType};

/// SplitMix64: a tiny deterministic generator (no dependency on a crate's stream stability).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// One subject area: its tags, an API resource, and the words memories about it use.
struct Topic {
    name: &'static str,
    tags: &'static [&'static str],
    resource: &'static str,
    terms: [&'static str; 5],
    problems: [&'static str; 3],
    practices: [&'static str; 3],
}

macro_rules! topic {
    ($name:literal, [$($tag:literal),+], $resource:literal, $terms:expr, $problems:expr, $practices:expr) => {
        Topic { name: $name, tags: &[$($tag),+], resource: $resource, terms: $terms, problems: $problems, practices: $practices }
    };
}

#[rustfmt::skip]
const TOPICS: [Topic; 30] = [
    topic!("connection pooling", ["database", "performance"], "pools", ["connection pool", "pgbouncer", "idle connections", "pool size", "statement timeout"], ["the pool was exhausted during a traffic spike", "connections leaked from aborted transactions", "idle connections were killed by the load balancer"], ["cap the pool at twice the core count", "release connections in a finally block", "set a statement timeout on every session"]),
    topic!("schema migrations", ["database"], "migrations", ["migration", "table lock", "backfill", "column default", "rollback script"], ["a migration locked the orders table for four minutes", "a backfill saturated replication", "a rollback dropped a column still in use"], ["add columns as nullable first and backfill in batches", "run migrations before deploying code that needs them", "keep every migration reversible"]),
    topic!("caching", ["performance", "backend"], "cache-entries", ["redis", "cache invalidation", "TTL", "cache stampede", "hit ratio"], ["a cache stampede overloaded the database after a deploy", "stale prices were served for an hour", "the hit ratio fell below forty percent"], ["add jitter to every TTL", "invalidate on write through the domain event", "use request coalescing for hot keys"]),
    topic!("authentication", ["security", "api"], "sessions", ["JWT", "refresh token", "OAuth", "session cookie", "token rotation"], ["refresh tokens never expired", "a JWT signed with the wrong key was accepted", "session cookies lacked the SameSite flag"], ["rotate signing keys every ninety days", "validate the audience and issuer of every token", "store refresh tokens hashed"]),
    topic!("rate limiting", ["api", "backend"], "limits", ["token bucket", "429 response", "burst limit", "quota", "sliding window"], ["one tenant consumed the whole API quota", "retries from clients amplified an outage", "limits reset at the same second for everyone"], ["return Retry-After with every 429", "limit per API key rather than per IP", "keep burst limits separate from sustained quotas"]),
    topic!("payment webhooks", ["backend", "api"], "webhooks", ["webhook", "idempotency key", "signature verification", "Stripe", "payment intent"], ["duplicate webhooks charged a customer twice", "webhook signatures were not verified", "events arrived out of order"], ["deduplicate events by their idempotency key", "verify the signature before parsing the body", "acknowledge fast and process asynchronously"]),
    topic!("background jobs", ["backend"], "jobs", ["job queue", "worker", "dead letter queue", "retry backoff", "visibility timeout"], ["jobs were processed twice after a worker crash", "the dead letter queue grew unnoticed for a week", "a poison message blocked the queue"], ["make every job idempotent", "use exponential backoff with a cap", "alert when the dead letter queue is not empty"]),
    topic!("structured logging", ["observability"], "logs", ["structured logs", "log level", "correlation id", "JSON logs", "log retention"], ["personal data ended up in debug logs", "log volume doubled the monthly bill", "requests could not be correlated across services"], ["log JSON with a correlation id on every line", "never log request bodies", "sample debug logs in production"]),
    topic!("metrics and alerting", ["observability", "infra"], "alerts", ["Prometheus", "SLO", "error budget", "alert fatigue", "histogram"], ["pages fired every night for a non-issue", "an outage was noticed by customers first", "high-cardinality labels crashed Prometheus"], ["alert on SLO burn rate, not on causes", "keep label cardinality bounded", "link every alert to a runbook"]),
    topic!("distributed tracing", ["observability"], "traces", ["OpenTelemetry", "span", "trace context", "sampling rate", "latency breakdown"], ["trace context was dropped at the message queue", "sampling hid the slow requests", "spans exploded the storage cost"], ["propagate trace context through queues", "use tail-based sampling for errors", "name spans after operations, not URLs"]),
    topic!("kubernetes deployments", ["infra"], "deployments", ["Kubernetes", "readiness probe", "rolling update", "resource limits", "Helm chart"], ["pods were killed by the OOM killer", "a failing readiness probe stalled the rollout", "CPU throttling doubled latency"], ["set memory requests equal to limits", "make readiness depend on dependencies but not liveness", "use a pod disruption budget"]),
    topic!("infrastructure as code", ["infra"], "stacks", ["Terraform", "state file", "drift", "module", "plan output"], ["a manual console change caused drift", "two applies corrupted the state file", "a module upgrade recreated the database"], ["lock state in a remote backend", "review the plan output in every pull request", "protect stateful resources with prevent_destroy"]),
    topic!("CI pipelines", ["ci"], "pipelines", ["CI pipeline", "build cache", "GitHub Actions", "artifact", "merge queue"], ["builds took forty minutes", "the build cache served a stale artifact", "a secret was printed in the CI log"], ["cache dependencies by lockfile hash", "run the slow suites only in the merge queue", "pin third-party actions to a commit"]),
    topic!("flaky tests", ["testing", "ci"], "test-runs", ["flaky test", "quarantine", "test isolation", "race condition", "retry"], ["a flaky test blocked every merge for a day", "tests depended on the wall clock", "shared fixtures leaked state between tests"], ["quarantine a flaky test within a day and file a ticket", "inject the clock instead of reading it", "give every test its own database"]),
    topic!("end-to-end tests", ["testing", "frontend"], "e2e-suites", ["Playwright", "end-to-end test", "test fixture", "selector", "visual regression"], ["selectors broke on every redesign", "the suite took an hour", "tests passed locally and failed in CI"], ["select elements by role and label", "seed data through the API, not the UI", "run end-to-end tests in parallel shards"]),
    topic!("frontend state", ["frontend"], "stores", ["React", "state management", "re-render", "server state", "Redux"], ["a context change re-rendered the whole page", "server data was duplicated in the client store", "stale state survived logout"], ["keep server state in a query cache", "memoize expensive selectors", "clear every store on logout"]),
    topic!("accessibility", ["frontend"], "a11y-audits", ["accessibility", "screen reader", "ARIA", "keyboard navigation", "contrast ratio"], ["the checkout could not be completed with a keyboard", "modals trapped the screen reader", "contrast failed WCAG AA"], ["test every flow with the keyboard only", "use native elements before ARIA", "check contrast in design review"]),
    topic!("feature flags", ["backend", "frontend"], "flags", ["feature flag", "gradual rollout", "kill switch", "flag cleanup", "targeting rule"], ["stale flags piled up to three hundred", "a flag evaluated differently on client and server", "a kill switch failed while the flag service was down"], ["give every flag an owner and an expiry date", "default to the safe value when the flag service is unreachable", "evaluate flags once per request"]),
    topic!("search indexing", ["data", "backend"], "indexes", ["Elasticsearch", "reindex", "mapping", "analyzer", "relevance tuning"], ["a mapping change required a full reindex", "the index lagged the database by an hour", "relevance dropped after an analyzer change"], ["reindex into a new index and swap an alias", "index from the change stream, not from the app", "keep a relevance test set"]),
    topic!("ETL pipelines", ["data"], "datasets", ["data warehouse", "ETL", "dbt", "partition", "late-arriving data"], ["late-arriving data was silently dropped", "a full refresh took nine hours", "a schema change broke downstream dashboards"], ["make loads idempotent per partition", "add data contracts for upstream tables", "test models with dbt tests"]),
    topic!("event streaming", ["data", "backend"], "topics", ["Kafka", "consumer group", "partition key", "offset", "schema registry"], ["a rebalance storm stopped consumers", "a bad partition key created a hot partition", "an incompatible schema broke consumers"], ["choose partition keys by entity id", "commit offsets after processing", "enforce backward compatible schemas in the registry"]),
    topic!("privacy and PII", ["security", "data"], "data-requests", ["PII", "GDPR", "data retention", "anonymization", "deletion request"], ["deletion requests missed the backups", "PII was copied into the analytics warehouse", "retention was not enforced on logs"], ["tag PII columns in the schema", "pseudonymize before data leaves production", "automate deletion across every store"]),
    topic!("secrets management", ["security", "infra"], "secrets", ["secrets manager", "Vault", "key rotation", "environment variable", "credential leak"], ["an API key was committed to the repository", "rotating a database password caused downtime", "secrets were shared over chat"], ["load secrets at runtime from the secrets manager", "support two valid credentials during rotation", "scan every commit for secrets"]),
    topic!("offline sync", ["mobile"], "sync-sessions", ["offline mode", "sync conflict", "local database", "last write wins", "delta sync"], ["edits made offline were overwritten", "the first sync took minutes on large accounts", "clock skew corrupted ordering"], ["resolve conflicts per field, not per record", "sync deltas with a server cursor", "order changes by server version, not device time"]),
    topic!("push notifications", ["mobile", "backend"], "notifications", ["push notification", "APNs", "FCM", "device token", "notification preferences"], ["users got the same notification three times", "expired device tokens were never pruned", "notifications ignored quiet hours"], ["deduplicate by notification id on the device", "prune tokens on every unregistered response", "respect user preferences on the server"]),
    topic!("API versioning", ["api"], "versions", ["API version", "breaking change", "deprecation header", "backward compatibility", "changelog"], ["a renamed field broke the mobile app", "a version was removed while clients still used it", "undocumented behaviour became a contract"], ["only add fields within a version", "announce deprecations with a Sunset header", "measure version usage before removal"]),
    topic!("pagination", ["api", "database"], "pages", ["cursor pagination", "offset", "page size", "keyset", "total count"], ["deep offset pages took seconds", "items were skipped when rows were inserted", "total counts timed out on large tables"], ["paginate with opaque cursors on an indexed key", "cap the page size at one hundred", "drop exact total counts"]),
    topic!("error handling", ["backend"], "errors", ["error handling", "retry", "circuit breaker", "timeout", "error code"], ["retries without backoff caused a thundering herd", "errors were swallowed and logged as success", "a slow dependency exhausted all threads"], ["wrap errors with context at each boundary", "retry only idempotent operations", "put a timeout and a circuit breaker on every remote call"]),
    topic!("file uploads", ["backend", "infra"], "uploads", ["object storage", "S3", "presigned URL", "multipart upload", "virus scan"], ["large uploads timed out through the API", "uploaded files were publicly readable", "orphaned uploads filled the bucket"], ["upload directly to storage with presigned URLs", "keep buckets private and serve through signed links", "expire incomplete multipart uploads"]),
    topic!("email delivery", ["backend"], "emails", ["transactional email", "SPF", "DKIM", "bounce rate", "email template"], ["password reset emails landed in spam", "the bounce rate triggered a provider suspension", "a template change sent raw placeholders"], ["authenticate the domain with SPF, DKIM and DMARC", "suppress addresses that hard bounce", "render templates in tests with real data"]),
];

/// The tags topics carry (the filter-only scenario draws from these).
pub const TOPIC_TAGS: [&str; 12] = [
    "backend",
    "frontend",
    "database",
    "security",
    "performance",
    "infra",
    "testing",
    "api",
    "observability",
    "ci",
    "data",
    "mobile",
];
const SERVICES: [&str; 12] = [
    "billing-api",
    "checkout",
    "auth-service",
    "search",
    "notifications",
    "mobile-gateway",
    "reporting",
    "admin-console",
    "ingest-worker",
    "web-app",
    "orders",
    "inventory",
];
const TEAMS: [&str; 8] = [
    "platform", "payments", "growth", "data", "mobile", "web", "infra", "security",
];
const ROLES: [&str; 5] = ["developer", "architect", "sre", "researcher", "tech-lead"];
const QUARTERS: [&str; 6] = ["Q1", "Q2", "Q3", "Q4", "the spring", "the autumn"];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const STATUSES: [&str; 4] = ["200 OK", "201 Created", "202 Accepted", "204 No Content"];

/// Opening sentences and optional follow-ups, per memory type.
#[rustfmt::skip]
fn templates(kind: MemoryType) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        MemoryType::Rule => (
            &["Always {practice} in {service}.", "In {service}, {practice}; exceptions need a review from the {team} team.", "Rule for {topic}: {practice} whenever you touch {term}."],
            &["We adopted this after {problem}.", "Reviewers should block changes that ignore it, even small fixes to {term}.", "It applies to every service that uses {term2}, not only {service}.", "The {team} team owns this rule and revisits it each quarter.", "Linting catches most violations; code review catches the rest.", "If you think {term} is an exception, write it down in the design doc first."],
        ),
        MemoryType::Learning => (
            &["In {quarter}, {problem} in {service}.", "Incident review: {problem}, and {service} was degraded for {n} minutes."],
            &["The root cause was how we handled {term} together with {term2}.", "The fix was to {practice}.", "Detection took {m} minutes because nothing alerted on {term}.", "Lesson: {practice} before scaling {service} again.", "The {team} team now checks {term2} in every release review.", "A similar problem had been seen before but never written down."],
        ),
        MemoryType::ApiContract => (
            &["{method} /v{v}/{resource} on {service} takes a JSON body and returns {status}.", "Contract for {method} /v{v}/{resource}: callers send an idempotency key and get {status}."],
            &["The {term} field is required and validated on the server.", "Errors use problem+json with a stable error code.", "Clients must {practice}.", "Rate limit: {n} requests per minute per API key.", "Responses include a cursor when more results exist.", "Breaking changes go to a new version; v{v} stays supported for six months.", "Owned by the {team} team; changes are announced in the changelog."],
        ),
        MemoryType::ResearchFinding => (
            &["We compared {term} with {term2} for {service}.", "Spike on {topic}: we measured how {term} behaves under load in {service}."],
            &["At {n} requests per second the p99 latency was {m} ms.", "Result: {practice} gives the best trade-off.", "Caveat: {problem} was not reproduced in the test environment.", "The benchmark ran for {k} hours on production-sized data.", "Open question: whether {term2} still helps at ten times the load.", "Raw numbers and scripts are in the {team} team's notebook."],
        ),
        // Documents, and the guardrail kinds the corpus never draws.
        _ => (
            &["How the {team} team handles {topic}: this page describes how {service} uses {term} and {term2}.", "Runbook for {topic} in {service}: what to check first when {term} misbehaves."],
            &["Setup: request access from {team}, then follow the steps for {term}.", "Known pitfall: {problem}.", "Recommended practice: {practice}.", "Dashboards for {term2} are linked from the service catalogue.", "On-call engineers should read this before their first shift.", "The page is reviewed every quarter by the {team} team."],
        ),
    }
}

/// The words a template's placeholders stand for in one memory or query.
struct Slots<'a> {
    topic: &'a Topic,
    term: &'a str,
    term2: &'a str,
    problem: &'a str,
    practice: &'a str,
    service: &'a str,
    team: &'a str,
}

impl Slots<'_> {
    fn draw(rng: &mut Rng) -> Self {
        // A skewed topic mix: a third of the memories come from the first eight topics.
        let topic = &TOPICS[if rng.below(3) == 0 {
            rng.below(8)
        } else {
            rng.below(TOPICS.len())
        }];
        let first = rng.below(5);
        Slots {
            topic,
            term: topic.terms[first],
            term2: topic.terms[(first + 1 + rng.below(4)) % 5],
            problem: topic.problems[rng.below(3)],
            practice: topic.practices[rng.below(3)],
            service: rng.pick(&SERVICES),
            team: rng.pick(&TEAMS),
        }
    }

    fn fill(&self, template: &str, rng: &mut Rng, method: &str, version: usize) -> String {
        template
            .replace("{topic}", self.topic.name)
            .replace("{term2}", self.term2)
            .replace("{term}", self.term)
            .replace("{problem}", self.problem)
            .replace("{practice}", self.practice)
            .replace("{service}", self.service)
            .replace("{team}", self.team)
            .replace("{resource}", self.topic.resource)
            .replace("{quarter}", rng.pick(&QUARTERS))
            .replace("{method}", method)
            .replace("{status}", rng.pick(&STATUSES))
            .replace("{v}", &version.to_string())
            .replace("{n}", &(10 * (1 + rng.below(90))).to_string())
            .replace("{m}", &(2 + rng.below(400)).to_string())
            .replace("{k}", &(1 + rng.below(24)).to_string())
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Memory number `index` of the corpus: 30 to 80 words, always the same for the same index.
pub fn memory(index: u64) -> MemoryDraft {
    let mut rng = Rng::new(index.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xC0D1_F1E5);
    let kind = MemoryType::KNOWLEDGE[rng.below(5)];
    let slots = Slots::draw(&mut rng);
    let (method, version) = (rng.pick(&METHODS), 1 + rng.below(3));
    let (openings, extras) = templates(kind);
    let reference = format!("Ref ENG-{}.", 1000 + index);
    let mut body = slots.fill(rng.pick(openings), &mut rng, method, version);
    let target = 30 + rng.below(45);
    let mut order: Vec<usize> = (0..extras.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    for i in order {
        let sentence = slots.fill(extras[i], &mut rng, method, version);
        let total = words(&body) + words(&sentence) + words(&reference);
        // 78, not 80: an API contract's method and path are words of its content too.
        if (words(&body) + words(&reference) >= target) || total > 78 {
            continue;
        }
        body = format!("{body} {sentence}");
    }
    body = format!("{body} {reference}");
    let title = match kind {
        MemoryType::Rule => format!("{} ({})", capitalized(slots.practice), slots.topic.name),
        MemoryType::Learning => format!("{}: {}", slots.service, slots.problem),
        MemoryType::ApiContract => format!("{method} /v{version}/{}", slots.topic.resource),
        MemoryType::ResearchFinding => {
            format!("{} vs {} in {}", slots.term, slots.term2, slots.service)
        }
        _ => format!("{} in {}", capitalized(slots.topic.name), slots.service),
    };
    let content = match kind {
        MemoryType::ApiContract => json!({
            "method": method,
            "path": format!("/v{version}/{}", slots.topic.resource),
            "text": body,
        }),
        _ => json!({ "text": body }),
    };
    let mut tags: Vec<String> = slots.topic.tags.iter().map(|t| t.to_string()).collect();
    let extra = match kind {
        MemoryType::Learning => "incident",
        MemoryType::Rule => "decision",
        _ => "onboarding",
    };
    if rng.below(3) == 0 {
        tags.push(extra.to_owned());
    }
    MemoryDraft {
        memory_type: kind,
        title,
        content,
        category: Some(slots.topic.name.to_owned()),
        description: None,
        confidence: 0.6 + 0.1 * rng.below(5) as f64,
        tags,
        source_role: Some(rng.pick(&ROLES).to_owned()),
    }
}

/// `count` search queries in the corpus's vocabulary (keywords, questions, symptoms), from `seed`.
pub fn queries(count: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let slots = Slots::draw(&mut rng);
            match rng.below(5) {
                0 => format!("{} {}", slots.term, slots.term2),
                1 => format!("how do we {}", slots.practice),
                2 => slots.problem.to_owned(),
                3 => format!("{} in {}", slots.term, slots.service),
                _ => format!("{} {}", slots.topic.name, slots.term),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_are_deterministic_distinct_and_30_to_80_words() {
        assert_eq!(memory(7), memory(7));
        let mut seen = std::collections::HashSet::new();
        for index in 0..2000 {
            let draft = memory(index);
            let text = crate::store::embedding_text(&draft.title, &draft.content);
            let body = crate::store::content_text(&draft.content);
            let n = words(&body);
            assert!((30..=80).contains(&n), "{n} words: {body}");
            assert!(seen.insert(text), "memory {index} repeats another");
        }
        let kinds: std::collections::HashSet<_> = (0..100).map(|i| memory(i).memory_type).collect();
        assert_eq!(kinds.len(), 5);
    }
}

//! Secret scanning: a set of high-confidence credential formats (private keys, cloud keys,
//! forge and SaaS tokens). One combined regex answers "anything here?" fast (its literal
//! prefixes feed a SIMD prefilter, so clean files cost little); only files that match are
//! examined pattern by pattern, to name the kinds found or to redact them.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What to do with a file that contains a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretMode {
    /// Leave the file out (listed in the report). The default.
    #[default]
    Exclude,
    /// Keep the file with each credential replaced by `[REDACTED <kind>]`.
    Redact,
    /// Do not scan (local operator only).
    Off,
}

impl SecretMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "exclude" => Some(Self::Exclude),
            "redact" => Some(Self::Redact),
            "off" => Some(Self::Off),
            _ => None,
        }
    }
}

/// The kinds of credential recognised, and their patterns.
const PATTERNS: &[(&str, &str)] = &[
    (
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?",
    ),
    (
        "aws_access_key_id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
    ),
    (
        "aws_secret_access_key",
        r#"(?i)aws_?(?:secret)?_?(?:access)?_?key["']?\s*[:=]\s*["']?[A-Za-z0-9/+]{40}\b"#,
    ),
    ("github_token", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),
    (
        "github_fine_grained_token",
        r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b",
    ),
    ("gitlab_token", r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    (
        "slack_webhook",
        r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]{6,}/B[A-Za-z0-9_]{6,}/[A-Za-z0-9_]{20,}",
    ),
    ("stripe_secret_key", r"\b[rs]k_live_[A-Za-z0-9]{20,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    (
        "openai_api_key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}",
    ),
    (
        "anthropic_api_key",
        r"\bsk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_\-]{80,}",
    ),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi_token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    (
        "sendgrid_api_key",
        r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",
    ),
    ("azure_storage_key", r"AccountKey=[A-Za-z0-9+/]{86}=="),
    ("huggingface_token", r"\bhf_[A-Za-z]{34}\b"),
    ("digitalocean_token", r"\bdo[por]_v1_[a-f0-9]{64}\b"),
];

/// One regex of every pattern: answers "anything here?" for every file.
static ANY: LazyLock<Regex> = LazyLock::new(|| {
    let combined = PATTERNS
        .iter()
        .map(|(_, pattern)| format!("(?:{pattern})"))
        .collect::<Vec<_>>()
        .join("|");
    Regex::new(&combined).expect("the secret patterns are valid")
});

/// The patterns one by one, built only when a file holds something (most packs never need them).
struct Each {
    set: RegexSet,
    each: Vec<Regex>,
}

static EACH: LazyLock<Each> = LazyLock::new(|| Each {
    set: RegexSet::new(PATTERNS.iter().map(|(_, pattern)| *pattern)).expect("valid"),
    each: PATTERNS
        .iter()
        .map(|(_, pattern)| Regex::new(pattern).expect("valid"))
        .collect(),
});

/// The kinds of credential in `text`, sorted; empty when there are none.
pub fn find(text: &str) -> Vec<&'static str> {
    if !ANY.is_match(text) {
        return Vec::new();
    }
    EACH.set
        .matches(text)
        .into_iter()
        .map(|index| PATTERNS[index].0)
        .collect()
}

/// `text` with every credential replaced by `[REDACTED <kind>]`.
pub fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    for index in EACH.set.matches(text).into_iter() {
        let replacement = format!("[REDACTED {}]", PATTERNS[index].0);
        out = EACH.each[index]
            .replace_all(&out, regex::NoExpand(&replacement))
            .into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_KEY: &str = "AKIAZ7QWERTYUIOP2345";

    #[test]
    fn a_fake_aws_key_is_found_and_redacted() {
        let text = format!("[default]\naws_access_key_id = {AWS_KEY}\nregion = eu-west-1\n");
        assert_eq!(find(&text), vec!["aws_access_key_id"]);
        let redacted = redact(&text);
        assert!(!redacted.contains(AWS_KEY), "{redacted}");
        assert!(redacted.contains("[REDACTED aws_access_key_id]"));
        assert!(redacted.contains("region = eu-west-1"));
    }

    #[test]
    fn a_private_key_block_is_redacted_whole() {
        let text = "before\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\nafter\n";
        assert_eq!(find(text), vec!["private_key"]);
        assert_eq!(redact(text), "before\n[REDACTED private_key]\nafter\n");
    }

    #[test]
    fn forge_tokens_are_found() {
        let github = format!("token: ghp_{}", "a1B2".repeat(9));
        assert_eq!(find(&github), vec!["github_token"]);
        assert_eq!(
            find("GITLAB=glpat-abcdefghij0123456789"),
            vec!["gitlab_token"]
        );
    }

    #[test]
    fn ordinary_code_is_clean() {
        let code = "fn main() {\n    let key = std::env::var(\"AWS_ACCESS_KEY_ID\")?;\n    println!(\"AKIA prefix\");\n}\n";
        assert!(find(code).is_empty());
        assert!(find("-----BEGIN PUBLIC KEY-----").is_empty());
    }
}

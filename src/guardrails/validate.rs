//! `validate_code`: runs the validations that apply to a file — the library's and the
//! project's own (memories of type `validation`) — and reports what failed, grouped by
//! severity, recording a `guardrail_block` event for each blocking failure.
//!
//! The compiled checks are cached per project, each under the id of its project's newest audit
//! entry: every memory write, import or restore writes one, so a change to a project's
//! validations is seen on the next call, in any server process, for one indexed read. The
//! library's checks live in the server's one [`LibraryCache`], under the same rule.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use serde_json::Value;

use super::checks::{Check, CheckSet, Findings, Skipped};
use super::index::{LibraryCache, newest_audit};
use super::telemetry;
use crate::auth::Identity;
use crate::domain::guardrail::{LIBRARY_PROJECT, Severity, Validation};
use crate::domain::{GuardrailEventKind, MemoryFilter, MemoryType};
use crate::knowledge::KnowledgeError;
use crate::store::{Store, StoreResult};

/// Validation memories read per page while compiling.
const PAGE: u32 = 500;
/// The largest file `validate_code` takes, in bytes.
pub const MAX_CODE_BYTES: usize = 1 << 20;

/// What to run: the file, and optional filters.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub code: String,
    pub file_path: String,
    /// Only checks tagged with one of these (a skill's tag or stack, or a severity).
    pub check_types: Vec<String>,
    /// Only the library's checks of these skills (the project's own checks always run).
    pub skills: Vec<String>,
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CheckFailure {
    /// The check's id.
    pub check: String,
    pub name: String,
    /// The library skill it comes from; `None` for the project's own.
    pub skill: Option<String>,
    pub severity: Severity,
    pub message: String,
    /// The first line it matched (1-based).
    pub line: usize,
    /// Every line it matched, up to 20.
    pub lines: Vec<usize>,
    pub fix_suggestion: Option<String>,
}

/// A check whose search ran out of its backtracking budget: neither passed nor failed.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct UnfinishedCheck {
    pub check: String,
    pub skill: Option<String>,
    pub severity: Severity,
    /// Always "check did not finish within its budget".
    pub message: String,
}

/// A project validation that cannot run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SkippedCheck {
    pub check: String,
    pub reason: String,
}

/// The result of `validate_code`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ValidationReport {
    pub file_path: String,
    /// False when any critical or error check failed.
    pub passed: bool,
    pub critical: Vec<CheckFailure>,
    pub errors: Vec<CheckFailure>,
    pub warnings: Vec<CheckFailure>,
    pub info: Vec<CheckFailure>,
    pub unfinished: Vec<UnfinishedCheck>,
    /// The project's own validations that cannot run (a pattern or glob that does not compile,
    /// content that is not a validation), so they can be fixed.
    pub skipped_checks: Vec<SkippedCheck>,
    /// How many checks applied to the path and ran.
    pub checks_run: usize,
    pub summary: String,
}

/// A project's checks and the id of the audit entry that was its newest when they were read.
type Cached = (Option<i64>, Arc<CheckSet>);

/// The compiled checks of each project, each under its project's newest audit entry. The
/// library's are kept with the rest of the library, in [`LibraryCache`].
#[derive(Default)]
pub struct Validator {
    cache: Mutex<HashMap<Uuid, Cached>>,
}

impl Validator {
    /// The checks of `project`, compiled again only when its memories changed.
    pub async fn checks(&self, store: &dyn Store, project: Uuid) -> StoreResult<Arc<CheckSet>> {
        let version = newest_audit(store, project).await?;
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.get(&project).cloned()
        };
        if let Some((seen, checks)) = cached
            && seen == version
        {
            return Ok(checks);
        }
        let checks = compile(store, project).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(project, (version, checks.clone()));
        Ok(checks)
    }
}

/// Reads and compiles the checks of `project`: a project's few patterns all at once (so one
/// that cannot compile is listed), the library's thousands each on first use.
pub async fn compile(store: &dyn Store, project: Uuid) -> StoreResult<Arc<CheckSet>> {
    let (records, skipped) = load(store, project).await?;
    let compile_now = project != LIBRARY_PROJECT;
    let build = move || CheckSet::build(records, skipped, compile_now);
    let checks = tokio::task::spawn_blocking(build)
        .await
        .map_err(|error| crate::store::StoreError::Corrupt(error.to_string()))?;
    Ok(Arc::new(checks))
}

/// Every runnable validation of `project` (type `regex`, or no type), and the validation
/// memories whose content is not a validation.
async fn load(store: &dyn Store, project: Uuid) -> StoreResult<(Vec<Check>, Vec<Skipped>)> {
    let mut filter = MemoryFilter {
        memory_type: Some(MemoryType::Validation),
        limit: PAGE,
        ..MemoryFilter::default()
    };
    let (mut checks, mut skipped) = (Vec::new(), Vec::new());
    loop {
        let page = store.fetch_memories(project, &filter).await?;
        for memory in page.memories {
            let validation = match serde_json::from_value::<Validation>(lenient(memory.content)) {
                Ok(validation) => validation,
                Err(error) => {
                    skipped.push(Skipped {
                        check: memory.title,
                        reason: format!("its content is not a validation: {error}"),
                    });
                    continue;
                }
            };
            let kind = validation.kind.trim();
            if !(kind.is_empty() || kind.eq_ignore_ascii_case("regex")) {
                continue;
            }
            let severity = validation.severity.unwrap_or(Severity::Warning);
            let tags = memory.tags.iter().map(|t| t.to_lowercase()).collect();
            checks.push(Check {
                validation,
                severity,
                tags,
            });
        }
        match page.next {
            Some(next) => filter.after = Some(next),
            None => return Ok((checks, skipped)),
        }
    }
}

/// A validation as people write it: a severity in either vocabulary and any case (`high`,
/// `Warning`…) and one `pattern` where the record keeps a list of `patterns`.
fn lenient(mut content: Value) -> Value {
    if let Some(map) = content.as_object_mut() {
        if let Some(Value::String(text)) = map.get("severity") {
            let severity = Severity::parse(text).map(|s| Value::from(s.as_str()));
            map.insert("severity".into(), severity.unwrap_or(Value::Null));
        }
        if !map.contains_key("patterns")
            && let Some(pattern) = map.remove("pattern")
        {
            let patterns = if pattern.is_array() {
                pattern
            } else {
                Value::Array(vec![pattern])
            };
            map.insert("patterns".into(), patterns);
        }
    }
    content
}

/// Runs the library's and `project`'s checks on `request.code`, recording a `guardrail_block`
/// event for each blocking failure.
pub async fn validate(
    validator: &Validator,
    library: &LibraryCache,
    store: &dyn Store,
    identity: &Identity,
    project: Uuid,
    request: Request,
) -> Result<ValidationReport, KnowledgeError> {
    let report = report(validator, library, store, project, request).await?;
    let blocks: Vec<_> = report
        .critical
        .iter()
        .chain(&report.errors)
        .map(|failure| {
            let detail = serde_json::json!({
                "skill": failure.skill,
                "file_path": report.file_path,
                "line": failure.line,
            });
            let kind = GuardrailEventKind::GuardrailBlock;
            let tool = "validate_code";
            let severity = Some(failure.severity);
            telemetry::event(kind, tool, identity, &failure.check, severity, detail)
        })
        .collect();
    telemetry::record(store, project, &blocks).await?;
    Ok(report)
}

/// Runs the library's and `project`'s checks on `request.code` and reports what failed,
/// recording nothing (the caller decides what a failure means).
pub async fn report(
    validator: &Validator,
    library: &LibraryCache,
    store: &dyn Store,
    project: Uuid,
    request: Request,
) -> Result<ValidationReport, KnowledgeError> {
    if request.file_path.trim().is_empty() {
        return Err(KnowledgeError::Invalid(
            "`file_path` is empty: send the file's path relative to the repository root (e.g. `src/app.ts`), which decides the checks that apply".into(),
        ));
    }
    if request.code.len() > MAX_CODE_BYTES {
        return Err(KnowledgeError::Invalid(format!(
            "`code` is {} bytes, over the limit of {MAX_CODE_BYTES}: validate the file in parts",
            request.code.len()
        )));
    }
    let library = library.checks(store).await?;
    let own = validator.checks(store, project).await?;
    tokio::task::spawn_blocking(move || run(&library, &own, &request))
        .await
        .map_err(|error| KnowledgeError::Unavailable(format!("validation stopped: {error}")))
}

/// Runs both sets on the request and builds the report.
fn run(library: &CheckSet, own: &CheckSet, request: &Request) -> ValidationReport {
    let wanted_types: Vec<String> = request
        .check_types
        .iter()
        .map(|t| t.to_lowercase())
        .collect();
    let of_type = |check: &Check| {
        wanted_types.is_empty()
            || wanted_types
                .iter()
                .any(|wanted| check.tags.contains(wanted) || check.severity.as_str() == wanted)
    };
    let of_skill = |check: &Check| {
        request.skills.is_empty()
            || check
                .validation
                .skill
                .as_ref()
                .is_some_and(|skill| request.skills.contains(skill))
    };
    let path = &request.file_path;
    let in_library = library.applicable(path, |check| of_type(check) && of_skill(check));
    let in_project = own.applicable(path, of_type);
    let mut report = ValidationReport {
        file_path: path.clone(),
        passed: true,
        critical: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        info: Vec::new(),
        unfinished: Vec::new(),
        skipped_checks: own
            .skipped()
            .iter()
            .map(|s| SkippedCheck {
                check: s.check.clone(),
                reason: s.reason.clone(),
            })
            .collect(),
        checks_run: 0,
        summary: String::new(),
    };
    for (set, applicable) in [(own, in_project), (library, in_library)] {
        let findings = set.run(&applicable, &request.code);
        add(&mut report, set, findings);
    }
    report.passed = report.critical.is_empty() && report.errors.is_empty();
    report.summary = summary(&report);
    report
}

fn add(report: &mut ValidationReport, set: &CheckSet, findings: Findings) {
    report.checks_run += findings.ran;
    for failure in findings.failures {
        let check = &set.checks()[failure.check];
        let validation = &check.validation;
        let entry = CheckFailure {
            check: validation.id.clone(),
            name: validation.name.clone(),
            skill: validation.skill.clone(),
            severity: check.severity,
            message: validation.message.clone(),
            line: failure.lines[0],
            lines: failure.lines,
            fix_suggestion: validation.fix_action.clone(),
        };
        match check.severity {
            Severity::Critical => report.critical.push(entry),
            Severity::Error => report.errors.push(entry),
            Severity::Warning => report.warnings.push(entry),
            Severity::Info => report.info.push(entry),
        }
    }
    for unfinished in findings.unfinished {
        let check = &set.checks()[unfinished];
        report.unfinished.push(UnfinishedCheck {
            check: check.validation.id.clone(),
            skill: check.validation.skill.clone(),
            severity: check.severity,
            message: super::pattern::OverBudget.to_string(),
        });
    }
}

fn summary(report: &ValidationReport) -> String {
    use crate::plural::count as plural;
    let verdict = if report.passed { "Passed" } else { "Failed" };
    let mut text = format!(
        "{verdict}: {} on {}: {} critical, {}, {}, {} info",
        plural(report.checks_run, "check"),
        report.file_path,
        report.critical.len(),
        plural(report.errors.len(), "error"),
        plural(report.warnings.len(), "warning"),
        report.info.len(),
    );
    if !report.unfinished.is_empty() {
        let count = plural(report.unfinished.len(), "check");
        text.push_str(&format!("; {count} did not finish within the budget"));
    }
    if !report.skipped_checks.is_empty() {
        let count = plural(report.skipped_checks.len(), "project check");
        text.push_str(&format!("; {count} cannot run (see skipped_checks)"));
    }
    text.push('.');
    text
}

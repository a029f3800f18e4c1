//! Steps the server runs alone: `skill-invoke` (the packer) and `data-query` (the Athena
//! sidecar). Arguments come from collected data by key; results are capped before they are kept.

use serde_json::{Value, json};
use uuid::Uuid;

use super::capabilities::{DataQuery, PackRequest, Skills, cap_result};
use crate::auth::Identity;
use crate::playbooks::spec::{Action, QueryOperation, SkillName, Step};

/// What the server needs to run a step alone.
pub struct Runtime<'a> {
    pub project_id: Uuid,
    pub identity: &'a Identity,
    pub skills: &'a dyn Skills,
    pub data: &'a dyn DataQuery,
}

/// The value a step produced (to keep under its key), a notice (it was cut, or some of its
/// parts failed), and for a pack, what became of each URL.
pub struct Produced {
    pub value: Value,
    pub notice: Option<String>,
    pub outcomes: Option<Value>,
}

/// Why a step failed, and for a pack, what became of each URL.
pub struct Failure {
    pub error: String,
    pub outcomes: Option<Value>,
}

impl From<String> for Failure {
    fn from(error: String) -> Self {
        Failure {
            error,
            outcomes: None,
        }
    }
}

impl From<&str> for Failure {
    fn from(error: &str) -> Self {
        error.to_owned().into()
    }
}

/// Reads the collected value an argument names.
fn arg<'v>(step: &Step, collected: &'v Value, name: &str) -> Option<&'v Value> {
    let args = match &step.action {
        Action::SkillInvoke { args, .. } | Action::DataQuery { args, .. } => args,
        _ => return None,
    };
    args.get(name)
        .and_then(|key| collected.get(key))
        .filter(|value| !value.is_null())
}

/// A list of strings from a collected value: a list, or one string of lines or commas.
pub fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str())
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect(),
        Some(Value::String(text)) => text
            .split(['\n', ','])
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(|value| value.as_str())
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// The queries of a generated query plan: `[{id, sql, …}]`, `{queries: [...]}`, or plain SQL strings.
fn queries(value: Option<&Value>) -> Vec<(String, String)> {
    let list = match value {
        Some(Value::Object(map)) => map.get("queries").and_then(|q| q.as_array()),
        Some(Value::Array(items)) => Some(items),
        _ => None,
    };
    list.into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(index, item)| {
            let id = item["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("q{}", index + 1));
            let sql = item.as_str().or_else(|| item["sql"].as_str())?;
            Some((id, sql.trim().to_owned()))
        })
        .collect()
}

/// Packs each URL in turn: one that fails is reported and does not stop the others. The step
/// fails only when every URL failed.
async fn pack_all(
    urls: Vec<String>,
    version_label: Option<String>,
    runtime: &Runtime<'_>,
) -> Result<(Value, Option<String>, Value), Failure> {
    let total = urls.len();
    let (mut packed, mut outcomes, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for url in urls {
        let request = PackRequest {
            project_id: runtime.project_id,
            identity: runtime.identity.clone(),
            url: url.clone(),
            version_label: version_label.clone(),
        };
        match runtime.skills.pack_repo(request).await {
            Ok(repository) => {
                outcomes.push(json!({
                    "url": url,
                    "status": "packed",
                    "snapshot_id": repository.snapshot_id,
                    "version": repository.version,
                }));
                packed.push(serde_json::to_value(repository).unwrap_or_default());
            }
            Err(error) => {
                outcomes.push(json!({ "url": url, "status": "failed", "error": error }));
                failed.push(format!("{url}: {error}"));
            }
        }
    }
    let outcomes = Value::from(outcomes);
    if packed.is_empty() {
        return Err(Failure {
            error: format!("no repository could be packed: {}", failed.join("; ")),
            outcomes: Some(outcomes),
        });
    }
    let notice = (!failed.is_empty()).then(|| {
        format!(
            "packed {} of {total} repositories; not packed: {}",
            packed.len(),
            failed.join("; ")
        )
    });
    Ok((Value::from(packed), notice, outcomes))
}

/// Runs a `skill-invoke` or `data-query` step.
pub async fn run(
    step: &Step,
    collected: &Value,
    runtime: &Runtime<'_>,
) -> Result<Produced, Failure> {
    let value = match &step.action {
        Action::SkillInvoke {
            skill: SkillName::PackRepo,
            ..
        } => {
            let urls = strings(arg(step, collected, "urls"));
            if urls.is_empty() {
                return Err("there are no repository URLs to pack".into());
            }
            let version_label = text(arg(step, collected, "version_label"));
            let (value, partial, outcomes) = pack_all(urls, version_label, runtime).await?;
            let (value, cut) = cap_result(value);
            let notice = match (partial, cut) {
                (Some(partial), Some(cut)) => Some(format!("{partial}; {cut}")),
                (partial, cut) => partial.or(cut),
            };
            return Ok(Produced {
                value,
                notice,
                outcomes: Some(outcomes),
            });
        }
        Action::DataQuery { operation, .. } => {
            let database = text(arg(step, collected, "database"));
            let database = database.as_deref();
            let data = runtime.data;
            let project = runtime.project_id;
            match operation {
                QueryOperation::ListTables => data.list_tables(project, database).await?,
                QueryOperation::DescribeTables => {
                    let tables = strings(arg(step, collected, "table_names"));
                    if tables.is_empty() {
                        return Err("no tables were chosen to describe".into());
                    }
                    data.describe_tables(project, &tables, database).await?
                }
                QueryOperation::ExecuteQuery => {
                    let planned = queries(arg(step, collected, "queries"));
                    if planned.is_empty() {
                        return Err(
                            "the query plan holds no queries (expected a YAML list of {id, sql})"
                                .into(),
                        );
                    }
                    let (count, mut results, mut first_error) =
                        (planned.len(), serde_json::Map::new(), None);
                    for (id, sql) in planned {
                        let result = match data.execute_query(project, &sql, database).await {
                            Ok(result) => json!({ "sql": sql, "result": result }),
                            Err(error) => {
                                first_error.get_or_insert_with(|| error.clone());
                                json!({ "sql": sql, "error": error })
                            }
                        };
                        results.insert(id, result);
                    }
                    // Some failed queries are findings; all of them failing is the step failing.
                    if let Some(error) = first_error.filter(|_| {
                        results
                            .values()
                            .filter(|r| r.get("error").is_some())
                            .count()
                            == count
                    }) {
                        return Err(error.into());
                    }
                    Value::Object(results)
                }
            }
        }
        _ => {
            return Err(format!("step `{}` needs the user or the client's model", step.id).into());
        }
    };
    let (value, notice) = cap_result(value);
    Ok(Produced {
        value,
        notice,
        outcomes: None,
    })
}

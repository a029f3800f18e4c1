//! Generator templates (minijinja): the six shipped in `templates/`, embedded in the binary, plus
//! any a configured directory adds or overrides; rendering, and the variables a template reads
//! (so the loader can check that an earlier step supplies each one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};

use super::PlaybookError;

/// The file extension of a template in `templates/`.
pub const TEMPLATE_EXTENSION: &str = ".md.j2";

/// The templates shipped with the server.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "rules-from-context",
        include_str!("../../templates/rules-from-context.md.j2"),
    ),
    (
        "evals-from-rules",
        include_str!("../../templates/evals-from-rules.md.j2"),
    ),
    (
        "requirements-from-context",
        include_str!("../../templates/requirements-from-context.md.j2"),
    ),
    (
        "roadmap-from-requirements",
        include_str!("../../templates/roadmap-from-requirements.md.j2"),
    ),
    (
        "queries-from-objective",
        include_str!("../../templates/queries-from-objective.md.j2"),
    ),
    (
        "research-synthesis",
        include_str!("../../templates/research-synthesis.md.j2"),
    ),
    (
        "architecture-from-context",
        include_str!("../../templates/architecture-from-context.md.j2"),
    ),
];

/// Names every template may read without a step supplying them: the session's context.
pub const BUILTIN_VARIABLES: &[&str] = &["project", "playbook", "memories", "collected"];

/// Names minijinja itself defines (functions and loop helpers), never supplied by data.
const ENGINE_NAMES: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "loop",
    "self",
    "super",
    "varargs",
    "kwargs",
    "caller",
];

/// A set of named templates, compiled once.
pub struct Templates {
    env: Environment<'static>,
    /// Name → where it came from.
    sources: BTreeMap<String, String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("sources", &self.sources)
            .finish()
    }
}

/// A fresh environment: undefined values render as nothing and chain (`{{ x.y }}` on a missing
/// `x` is empty), so an optional step that was skipped never breaks a later template.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    // Block tags on their own lines leave no blank lines behind, as in Jinja with these options.
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

impl Templates {
    /// The embedded templates, with those in `dir` (files named `<name>.md.j2`) added or overriding.
    pub fn load(dir: Option<&Path>) -> Result<Self, PlaybookError> {
        let mut all: BTreeMap<String, (String, String)> = EMBEDDED
            .iter()
            .map(|(name, text)| {
                (
                    (*name).to_owned(),
                    (
                        (*text).to_owned(),
                        format!("embedded:templates/{name}{TEMPLATE_EXTENSION}"),
                    ),
                )
            })
            .collect();
        if let Some(dir) = dir {
            let entries = std::fs::read_dir(dir).map_err(|error| PlaybookError::Io {
                path: dir.display().to_string(),
                reason: error.to_string(),
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(name) = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .and_then(|name| name.strip_suffix(TEMPLATE_EXTENSION))
                else {
                    continue;
                };
                let text = std::fs::read_to_string(&path).map_err(|error| PlaybookError::Io {
                    path: path.display().to_string(),
                    reason: error.to_string(),
                })?;
                all.insert(name.to_owned(), (text, path.display().to_string()));
            }
        }
        let mut env = environment();
        let mut sources = BTreeMap::new();
        for (name, (text, source)) in all {
            env.add_template_owned(name.clone(), text)
                .map_err(|error| PlaybookError::Invalid {
                    file: source.clone(),
                    step: None,
                    reason: format!("the template does not parse: {error}"),
                })?;
            sources.insert(name, source);
        }
        Ok(Self { env, sources })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }

    /// Template names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// The top-level variables a named template reads that its context must supply.
    pub fn variables(&self, name: &str) -> BTreeSet<String> {
        self.env
            .get_template(name)
            .map(|template| without_engine_names(template.undeclared_variables(false)))
            .unwrap_or_default()
    }

    /// The arguments a template takes as a prompt: the variables it needs (top level, not built
    /// in) and the optional ones it reads through `collected.<key>`.
    pub fn arguments(&self, name: &str) -> (Vec<String>, Vec<String>) {
        let Ok(template) = self.env.get_template(name) else {
            return (Vec::new(), Vec::new());
        };
        let required = without_engine_names(template.undeclared_variables(false))
            .into_iter()
            .filter(|name| !BUILTIN_VARIABLES.contains(&name.as_str()))
            .collect();
        let optional: BTreeSet<String> = template
            .undeclared_variables(true)
            .into_iter()
            .filter_map(|path| path.strip_prefix("collected.").map(str::to_owned))
            .map(|rest| rest.split('.').next().unwrap_or_default().to_owned())
            .collect();
        (required, optional.into_iter().collect())
    }

    /// The collected keys a named template reads, at the top level or as `collected.<key>`.
    pub fn reads(&self, name: &str) -> BTreeSet<String> {
        self.env
            .get_template(name)
            .map(|template| collected_keys(template.undeclared_variables(true)))
            .unwrap_or_default()
    }

    /// Renders a named template with `context`.
    pub fn render(&self, name: &str, context: &serde_json::Value) -> Result<String, String> {
        let template = self
            .env
            .get_template(name)
            .map_err(|error| error.to_string())?;
        template
            .render(minijinja::Value::from(minijinja::value::Serde(context)))
            .map_err(|error| describe(&error))
    }

    /// Renders a one-off template text (a step's prompt or memory title) with `context`.
    pub fn render_str(&self, text: &str, context: &serde_json::Value) -> Result<String, String> {
        self.env
            .render_str(
                text,
                minijinja::Value::from(minijinja::value::Serde(context)),
            )
            .map_err(|error| describe(&error))
    }
}

/// The top-level variables a one-off template text reads, or why it does not parse.
pub fn text_variables(text: &str) -> Result<BTreeSet<String>, String> {
    let env = environment();
    let template = env
        .template_from_str(text)
        .map_err(|error| describe(&error))?;
    Ok(without_engine_names(template.undeclared_variables(false)))
}

/// The collected keys a one-off template text reads (nothing when it does not parse).
pub fn text_reads(text: &str) -> BTreeSet<String> {
    environment()
        .template_from_str(text)
        .map(|template| collected_keys(template.undeclared_variables(true)))
        .unwrap_or_default()
}

/// Collected keys among dotted variable paths: `key…` or `collected.key…`, never a built-in.
fn collected_keys(paths: std::collections::HashSet<String>) -> BTreeSet<String> {
    paths
        .iter()
        .filter_map(|path| {
            let mut parts = path.split('.');
            match parts.next()? {
                "collected" => parts.next(),
                name if BUILTIN_VARIABLES.contains(&name) || ENGINE_NAMES.contains(&name) => None,
                name => Some(name),
            }
        })
        .map(str::to_owned)
        .collect()
}

fn without_engine_names(names: std::collections::HashSet<String>) -> BTreeSet<String> {
    names
        .into_iter()
        .filter(|name| !ENGINE_NAMES.contains(&name.as_str()))
        .collect()
}

fn describe(error: &minijinja::Error) -> String {
    match error.line() {
        Some(line) => format!(
            "{} (line {line})",
            error.detail().unwrap_or("template error")
        ),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_templates_are_embedded_and_parse() {
        let templates = Templates::load(None).unwrap();
        let names: Vec<&str> = templates.names().collect();
        assert_eq!(
            names,
            [
                "architecture-from-context",
                "evals-from-rules",
                "queries-from-objective",
                "requirements-from-context",
                "research-synthesis",
                "roadmap-from-requirements",
                "rules-from-context"
            ]
        );
    }

    #[test]
    fn a_template_reports_the_variables_it_reads_but_not_its_own_loop_names() {
        let vars =
            text_variables("{% for r in rules %}{{ r }}{{ loop.index }}{% endfor %}{{ x.y }}")
                .unwrap();
        assert_eq!(vars, BTreeSet::from(["rules".to_owned(), "x".to_owned()]));
    }

    #[test]
    fn the_keys_a_template_reads_include_those_it_reads_through_collected() {
        let reads = text_reads(
            "{{ project.name }} {{ rules }} {% if collected.description %}{{ collected.description.x }}{% endif %}{% for r in repo_list %}{{ r.url }}{% endfor %}",
        );
        assert_eq!(
            reads,
            BTreeSet::from([
                "description".to_owned(),
                "repo_list".to_owned(),
                "rules".to_owned()
            ])
        );
        let templates = Templates::load(None).unwrap();
        assert!(
            templates
                .reads("rules-from-context")
                .contains("repository_snapshots")
        );
    }

    #[test]
    fn a_missing_optional_value_renders_as_nothing() {
        let templates = Templates::load(None).unwrap();
        let text = templates
            .render_str("[{{ missing.field }}]", &serde_json::json!({}))
            .unwrap();
        assert_eq!(text, "[]");
    }
}

//! How the sidecar is started: its command, arguments, timeouts, default database, and the
//! environment it gets — only the variables it needs (AWS credentials and region, `ATHENA_*`,
//! `AWS_ENDPOINT_URL*`, and any named in `CODIFIER_ATHENA_PASS_ENV`), never the rest of the
//! server's environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

/// AWS variables the sidecar may need to find credentials and its region.
const AWS_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CA_BUNDLE",
];

/// Whether a variable of the server's environment is passed to the sidecar.
pub fn is_passed(name: &str, extra: &[String]) -> bool {
    AWS_VARIABLES.contains(&name)
        || name.starts_with("ATHENA_")
        || name.starts_with("AWS_ENDPOINT_URL")
        || extra.iter().any(|wanted| wanted == name)
}

/// Everything needed to run the sidecar.
#[derive(Clone)]
pub struct AthenaConfig {
    /// The program (`CODIFIER_ATHENA_COMMAND`), resolved to a path at start.
    pub command: PathBuf,
    /// Its arguments (`CODIFIER_ATHENA_ARGS`, default `-m athena_mcp.server`).
    pub args: Vec<String>,
    /// The whole environment the sidecar gets (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// The database used when a call names none (`CODIFIER_ATHENA_DATABASE`).
    pub default_database: Option<String>,
    /// How long one tool call may take (`CODIFIER_ATHENA_TIMEOUT_SECONDS`, default 90).
    pub call_timeout: Duration,
    /// How long the sidecar may take to start and finish the MCP handshake
    /// (`CODIFIER_ATHENA_START_TIMEOUT_SECONDS`, default 30).
    pub start_timeout: Duration,
}

impl std::fmt::Debug for AthenaConfig {
    /// Names the variables passed, never their values (they hold credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("AthenaConfig")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &names)
            .field("default_database", &self.default_database)
            .field("call_timeout", &self.call_timeout)
            .field("start_timeout", &self.start_timeout)
            .finish()
    }
}

impl AthenaConfig {
    /// The default arguments: run the `aws-athena-mcp` package's server module.
    pub fn default_args() -> Vec<String> {
        vec!["-m".into(), "athena_mcp.server".into()]
    }

    /// Reads the sidecar's settings; `None` when `CODIFIER_ATHENA_COMMAND` is unset (no sidecar).
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let Some(command) = var("CODIFIER_ATHENA_COMMAND") else {
            return Ok(None);
        };
        let seconds = |name: &str, default: u64| -> anyhow::Result<Duration> {
            let value = match var(name) {
                Some(text) => text
                    .parse::<u64>()
                    .ok()
                    .filter(|seconds| *seconds > 0)
                    .with_context(|| {
                        format!("{name}={text:?} is not a positive number of seconds")
                    })?,
                None => default,
            };
            Ok(Duration::from_secs(value))
        };
        let extra: Vec<String> = var("CODIFIER_ATHENA_PASS_ENV")
            .map(|list| {
                list.split(',')
                    .map(|name| name.trim().to_owned())
                    .filter(|name| !name.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let env = std::env::vars()
            .filter(|(name, _)| is_passed(name, &extra))
            .collect();
        let config = Self {
            command: resolve_program(&command, std::env::var_os("PATH").as_deref())
                .with_context(|| format!("CODIFIER_ATHENA_COMMAND={command:?}"))?,
            args: match var("CODIFIER_ATHENA_ARGS") {
                Some(args) => args.split_whitespace().map(str::to_owned).collect(),
                None => Self::default_args(),
            },
            env,
            default_database: var("CODIFIER_ATHENA_DATABASE"),
            call_timeout: seconds("CODIFIER_ATHENA_TIMEOUT_SECONDS", 90)?,
            start_timeout: seconds("CODIFIER_ATHENA_START_TIMEOUT_SECONDS", 30)?,
        };
        config.validate()?;
        Ok(Some(config))
    }

    /// Checks what the sidecar would otherwise only report after it was started.
    pub fn validate(&self) -> anyhow::Result<()> {
        let output = self
            .env
            .iter()
            .find(|(name, _)| name == "ATHENA_S3_OUTPUT_LOCATION")
            .map(|(_, value)| value.as_str());
        match output {
            None => bail!(
                "CODIFIER_ATHENA_COMMAND is set but ATHENA_S3_OUTPUT_LOCATION is not: set it to the s3:// prefix where Athena writes query results"
            ),
            Some(location) if !location.starts_with("s3://") => {
                bail!("ATHENA_S3_OUTPUT_LOCATION={location:?} must start with s3://")
            }
            Some(_) => {}
        }
        if let Some(database) = &self.default_database {
            super::validate_name("CODIFIER_ATHENA_DATABASE", database)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
        }
        Ok(())
    }
}

/// Finds `program` on `path` when it is a bare name, so the sidecar can run with an empty
/// environment (no `PATH` of its own).
pub fn resolve_program(program: &str, path: Option<&std::ffi::OsStr>) -> anyhow::Result<PathBuf> {
    let candidate = Path::new(program);
    if candidate.components().count() > 1 {
        if candidate.is_file() {
            return Ok(candidate.to_path_buf());
        }
        bail!("{program} does not exist");
    }
    path.map(std::env::split_paths)
        .into_iter()
        .flatten()
        .map(|dir| dir.join(program))
        .find(|full| full.is_file())
        .with_context(|| format!("{program} was not found on PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aws_and_athena_variables_reach_the_sidecar() {
        for passed in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_ATHENA",
            "ATHENA_S3_OUTPUT_LOCATION",
            "ATHENA_WORKGROUP",
        ] {
            assert!(is_passed(passed, &[]), "{passed}");
        }
        for kept in [
            "DATABASE_URL",
            "API_AUTH_TOKEN",
            "GITHUB_TOKEN",
            "CODIFIER_EMBEDDING_API_KEY",
            "PATH",
            "HOME",
        ] {
            assert!(!is_passed(kept, &[]), "{kept}");
        }
        assert!(is_passed("HTTPS_PROXY", &["HTTPS_PROXY".into()]));
    }

    #[test]
    fn the_debug_output_names_variables_but_never_their_values() {
        let config = AthenaConfig {
            command: "/usr/bin/python3".into(),
            args: AthenaConfig::default_args(),
            env: vec![("AWS_SECRET_ACCESS_KEY".into(), "very-secret-value".into())],
            default_database: None,
            call_timeout: Duration::from_secs(1),
            start_timeout: Duration::from_secs(1),
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("AWS_SECRET_ACCESS_KEY"), "{shown}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
    }

    #[test]
    fn a_bare_program_name_is_found_on_the_path() {
        let found = resolve_program(
            "sh",
            Some(std::ffi::OsStr::new("/nonexistent:/bin:/usr/bin")),
        )
        .expect("sh is on the path");
        assert!(found.ends_with("sh"));
        assert!(
            resolve_program("no-such-program-here", Some(std::ffi::OsStr::new("/bin"))).is_err()
        );
        assert!(resolve_program("/no/such/python", None).is_err());
    }
}

//! Cloning with git2: one shallow fetch (depth 1 unless asked otherwise) of the default branch,
//! a branch, a tag or a commit, into a temporary directory that is removed however the pack
//! ends. Tokens (`GITHUB_TOKEN`, `GITLAB_TOKEN`, `BITBUCKET_TOKEN`) are offered only to their
//! own hosts, only when the server asks, and never appear in a URL, log line or error.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use git2::{FetchOptions, RemoteCallbacks, RemoteRedirect, Repository};

use super::source::RemoteUrl;
use super::{PackError, PackOptions};

/// Which tokens exist and which hosts each is for. Debug never shows a token.
#[derive(Clone, Default)]
pub struct Credentials {
    pub hosts: Vec<HostToken>,
}

/// A token for the hosts of one forge.
#[derive(Clone)]
pub struct HostToken {
    /// The forge, for messages (`GITHUB_TOKEN` …).
    pub variable: &'static str,
    /// The user name the forge expects alongside a token.
    pub username: &'static str,
    pub hosts: Vec<String>,
    /// Whether the operator listed the hosts (then plain http is trusted for them too).
    pub hosts_configured: bool,
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<_> = self
            .hosts
            .iter()
            .map(|host| (host.variable, &host.hosts, host.token.is_some()))
            .collect();
        f.debug_struct("Credentials")
            .field("hosts (variable, hosts, token set)", &shown)
            .finish()
    }
}

impl Credentials {
    /// Tokens from `GITHUB_TOKEN`, `GITLAB_TOKEN`, `BITBUCKET_TOKEN`; hosts from
    /// `CODIFIER_GITHUB_HOSTS`, `CODIFIER_GITLAB_HOSTS`, `CODIFIER_BITBUCKET_HOSTS` (comma lists,
    /// for GitHub Enterprise or self-hosted GitLab), defaulting to the public forges.
    pub fn from_env() -> Self {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let forge = |variable, hosts_variable: &str, default: &str, username| {
            let configured = read(hosts_variable);
            HostToken {
                variable,
                username,
                hosts_configured: configured.is_some(),
                hosts: configured
                    .as_deref()
                    .unwrap_or(default)
                    .split(',')
                    .map(|host| host.trim().to_ascii_lowercase())
                    .filter(|host| !host.is_empty())
                    .collect(),
                token: read(variable),
            }
        };
        Self {
            hosts: vec![
                forge(
                    "GITHUB_TOKEN",
                    "CODIFIER_GITHUB_HOSTS",
                    "github.com",
                    "x-access-token",
                ),
                forge(
                    "GITLAB_TOKEN",
                    "CODIFIER_GITLAB_HOSTS",
                    "gitlab.com",
                    "oauth2",
                ),
                forge(
                    "BITBUCKET_TOKEN",
                    "CODIFIER_BITBUCKET_HOSTS",
                    "bitbucket.org",
                    "x-token-auth",
                ),
            ],
        }
    }

    /// The forge entry for a URL's host, if any.
    fn forge_for(&self, remote: &RemoteUrl) -> Option<&HostToken> {
        let host = remote.host();
        self.hosts.iter().find(|forge| forge.hosts.contains(&host))
    }

    /// The user name and token to offer `remote`: only over https, or plain http to a host the
    /// operator listed explicitly.
    fn for_remote(&self, remote: &RemoteUrl) -> Option<(String, String)> {
        let forge = self.forge_for(remote)?;
        let token = forge.token.as_ref()?;
        let scheme_ok = remote.url.scheme() == "https"
            || (remote.url.scheme() == "http" && forge.hosts_configured);
        scheme_ok.then(|| (forge.username.to_owned(), token.clone()))
    }
}

/// A finished clone: the checkout (removed when dropped) and what was checked out.
pub struct Cloned {
    pub dir: tempfile::TempDir,
    pub commit: String,
    pub branch: Option<String>,
}

/// Clones `remote` at `options.reference` within `options.timeout`. On timeout the clone is
/// abandoned (its thread stops at the next progress callback and removes its directory).
pub fn clone(
    remote: &RemoteUrl,
    options: &PackOptions,
    credentials: &Credentials,
) -> Result<Cloned, PackError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let (sender, receiver) = std::sync::mpsc::channel();
    let job = {
        let (remote, cancel) = (remote.clone(), cancel.clone());
        let (reference, depth) = (options.reference.clone(), options.depth);
        let offered = remote
            .userinfo
            .clone()
            .or_else(|| credentials.for_remote(&remote));
        let forge = credentials
            .forge_for(&remote)
            .map(|forge| forge.variable)
            .unwrap_or("a token in the URL");
        move || {
            let result = clone_now(
                &remote,
                reference.as_deref(),
                depth,
                offered.as_ref(),
                forge,
                &cancel,
            );
            // The receiver is gone after a timeout: the result (and its directory) is dropped.
            let _ = sender.send(result);
        }
    };
    std::thread::Builder::new()
        .name("codifier-clone".into())
        .spawn(job)
        .map_err(|error| PackError::Failed(format!("cannot start the clone: {error}")))?;
    match receiver.recv_timeout(options.timeout) {
        Ok(result) => result,
        Err(_) => {
            cancel.store(true, Ordering::SeqCst);
            Err(PackError::Timeout(format!(
                "cloning {} did not finish within {} s: try again, pack a smaller repository, or raise CODIFIER_PACK_TIMEOUT_SECONDS",
                remote.url,
                options.timeout.as_secs()
            )))
        }
    }
}

const TARGET: &str = "refs/codifier/target";

fn clone_now(
    remote: &RemoteUrl,
    reference: Option<&str>,
    depth: u32,
    offered: Option<&(String, String)>,
    forge: &str,
    cancel: &AtomicBool,
) -> Result<Cloned, PackError> {
    let failed = |error: std::io::Error| {
        PackError::Failed(format!("cannot make a temporary directory: {error}"))
    };
    let dir = tempfile::Builder::new()
        .prefix("codifier-pack-")
        .tempdir()
        .map_err(failed)?;
    let repo = Repository::init(dir.path()).map_err(|error| git_failed(remote, &error))?;
    let url = remote.url.as_str();
    let mut origin = repo
        .remote_anonymous(url)
        .map_err(|error| git_failed(remote, &error))?;
    let asked = Cell::new(false);
    let refused = Cell::new(false);
    let attempts = Cell::new(0u32);
    // libgit2's local transport cannot make shallow fetches.
    let depth = if remote.url.scheme() == "file" {
        0
    } else {
        depth
    };
    let fetch = |origin: &mut git2::Remote<'_>, refspec: &str| {
        attempts.set(0);
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(|_url, username, allowed| {
            asked.set(true);
            attempts.set(attempts.get() + 1);
            if attempts.get() > 3 {
                refused.set(true);
                return Err(git2::Error::from_str("credentials refused"));
            }
            if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT)
                && let Some((user, secret)) = offered
            {
                if attempts.get() > 1 {
                    refused.set(true);
                    return Err(git2::Error::from_str("credentials refused"));
                }
                return git2::Cred::userpass_plaintext(user, secret);
            }
            if allowed.contains(git2::CredentialType::SSH_KEY) {
                return git2::Cred::ssh_key_from_agent(username.unwrap_or("git"));
            }
            if allowed.contains(git2::CredentialType::USERNAME) {
                return git2::Cred::username(username.unwrap_or("git"));
            }
            Err(git2::Error::from_str("no credentials for this host"))
        });
        callbacks.transfer_progress(|_| !cancel.load(Ordering::SeqCst));
        callbacks.sideband_progress(|_| !cancel.load(Ordering::SeqCst));
        let mut fetch_options = FetchOptions::new();
        fetch_options
            .remote_callbacks(callbacks)
            .follow_redirects(RemoteRedirect::None)
            .download_tags(git2::AutotagOption::None);
        if depth > 0 {
            fetch_options.depth(depth as i32);
        }
        origin.fetch(&[refspec], Some(&mut fetch_options), None)
    };
    let classify = |error: git2::Error| -> PackError {
        if cancel.load(Ordering::SeqCst) {
            return PackError::Timeout(format!("cloning {url} was stopped: it took too long"));
        }
        let message = error.message().to_ascii_lowercase();
        let missing = message.contains("404")
            || message.contains("not found")
            || message.contains("does not appear to be a git repository")
            || message.contains("could not find repository");
        if refused.get() || (asked.get() && offered.is_some() && message.contains("401")) {
            PackError::NeedsCredentials(format!(
                "{url} refused the credentials offered ({forge}): check that the token is valid and may read this repository"
            ))
        } else if missing {
            PackError::NotFound(format!("no repository at {url}: check the URL"))
        } else if asked.get() || message.contains("401") || message.contains("authentication") {
            PackError::NeedsCredentials(format!(
                "{url} asks for credentials: the repository is private or does not exist. For a private repository the operator sets GITHUB_TOKEN, GITLAB_TOKEN or BITBUCKET_TOKEN for its host"
            ))
        } else if message.contains("timed out") || message.contains("timeout") {
            PackError::Timeout(format!("{url} did not answer in time: try again later"))
        } else if message.contains("redirect") {
            PackError::Failed(format!(
                "{url} redirected elsewhere; redirects are not followed: send the final repository URL"
            ))
        } else {
            git_failed(remote, &error)
        }
    };
    let (refspec, branch) = match reference {
        None => ("+HEAD:".to_owned() + TARGET, None),
        Some(name) if is_full_commit_id(name) => (format!("+{name}:{TARGET}"), None),
        Some(name) if name.starts_with("refs/") => {
            (format!("+{name}:{TARGET}"), Some(name.to_owned()))
        }
        Some(name) => (
            format!("+refs/heads/{name}:{TARGET}"),
            Some(name.to_owned()),
        ),
    };
    fetch(&mut origin, &refspec).map_err(&classify)?;
    if repo.find_reference(TARGET).is_err()
        && let Some(name) =
            reference.filter(|name| !is_full_commit_id(name) && !name.starts_with("refs/"))
    {
        fetch(&mut origin, &format!("+refs/tags/{name}:{TARGET}")).map_err(&classify)?;
    }
    let target = repo.find_reference(TARGET).map_err(|_| match reference {
        Some(name) => PackError::NotFound(format!(
            "{url} has no branch, tag or commit `{name}`: check `ref` (a branch, a tag, or a full 40-character commit id)"
        )),
        None => PackError::NotFound(format!("{url} has no default branch to pack (an empty repository?)")),
    })?;
    let commit = target
        .peel_to_commit()
        .map_err(|error| git_failed(remote, &error))?;
    let mut checkout = git2::build::CheckoutBuilder::new();
    checkout.force();
    repo.checkout_tree(commit.as_object(), Some(&mut checkout))
        .map_err(|error| git_failed(remote, &error))?;
    repo.set_head_detached(commit.id())
        .map_err(|error| git_failed(remote, &error))?;
    let branch = branch.or_else(|| {
        reference.is_none().then(|| {
            origin.default_branch().ok().and_then(|name| {
                name.as_str()
                    .map(|name| name.trim_start_matches("refs/heads/").to_owned())
            })
        })?
    });
    let commit_id = commit.id().to_string();
    drop(commit);
    drop(target);
    drop(origin);
    drop(repo);
    Ok(Cloned {
        dir,
        commit: commit_id,
        branch,
    })
}

fn is_full_commit_id(name: &str) -> bool {
    name.len() == 40 && name.bytes().all(|byte| byte.is_ascii_hexdigit())
}

fn git_failed(remote: &RemoteUrl, error: &git2::Error) -> PackError {
    let mut message = error.message().to_owned();
    if let Some((_, secret)) = &remote.userinfo
        && !secret.is_empty()
    {
        message = message.replace(secret.as_str(), "<redacted>");
    }
    PackError::Failed(format!("git could not fetch {}: {message}", remote.url))
}

/// The commit and branch of a local working tree, when it is a git repository, as libgit2 reads
/// them ([`head::local_head`](super::head::local_head) reads the common cases without it).
pub(crate) fn local_head_git2(root: &std::path::Path) -> (Option<String>, Option<String>) {
    let Ok(repo) = Repository::discover(root) else {
        return (None, None);
    };
    let Ok(head) = repo.head() else {
        return (None, None);
    };
    let commit = head
        .peel_to_commit()
        .ok()
        .map(|commit| commit.id().to_string());
    let branch = head
        .is_branch()
        .then(|| head.shorthand().map(str::to_owned))
        .flatten();
    (commit, branch)
}

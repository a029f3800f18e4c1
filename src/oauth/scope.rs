//! What OAuth scopes mean here: `read`, `write` and `admin` are our roles, nested (`write`
//! includes `read`, `admin` includes both). A scope request names the most a client wants; the
//! grant is the narrowest of that, the role the person chooses and the key's role, so a key can
//! narrow, never widen. `offline_access` is accepted and means nothing more (refresh tokens are
//! always issued); any other scope is refused with a list of the known ones.

use crate::domain::Role;

/// The scopes advertised in the metadata documents, narrowest first.
pub const SUPPORTED: [&str; 3] = ["read", "write", "admin"];

/// Why a scope parameter is refused (`invalid_scope`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScopeError(pub String);

/// The widest role a `scope` parameter asks for; `None` when it names no role (absent, empty,
/// or only `offline_access`), which leaves the key's role.
pub fn parse(scope: Option<&str>) -> Result<Option<Role>, ScopeError> {
    let mut widest: Option<Role> = None;
    for word in scope.unwrap_or_default().split_ascii_whitespace() {
        if word == "offline_access" {
            continue;
        }
        let Some(role) = Role::parse(word) else {
            return Err(ScopeError(format!(
                "the scope `{word}` is not offered: ask for read, write or admin (a token acts as the key with at most that role)"
            )));
        };
        widest = widest.max(Some(role));
    }
    Ok(widest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_list_asks_for_its_widest_role() {
        assert_eq!(parse(None), Ok(None));
        assert_eq!(parse(Some("")), Ok(None));
        assert_eq!(parse(Some("offline_access")), Ok(None));
        assert_eq!(parse(Some("read")), Ok(Some(Role::Read)));
        assert_eq!(parse(Some("read write admin")), Ok(Some(Role::Admin)));
        assert_eq!(parse(Some("write  read")), Ok(Some(Role::Write)));
    }

    #[test]
    fn an_unknown_scope_is_refused_with_the_known_ones() {
        let error = parse(Some("read everything")).unwrap_err();
        assert!(error.0.contains("`everything`") && error.0.contains("read, write or admin"));
    }
}

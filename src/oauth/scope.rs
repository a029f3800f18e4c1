//! What OAuth scopes mean here: `read`, `write` and `admin` are our roles, nested (`write`
//! includes `read`, `admin` includes both). A scope request names the most a client wants; the
//! grant is the narrowest of that, the role the person chooses and the key's role, so a key can
//! narrow, never widen. Any other word (`offline_access`, or a hosted client's own scope name) is
//! ignored, as RFC 6749 §3.3 allows: refusing it would lock such a client out, and the token
//! response's `scope` tells every client what it was granted.

use crate::domain::Role;

/// The scopes advertised in the metadata documents, narrowest first.
pub const SUPPORTED: [&str; 3] = ["read", "write", "admin"];

/// The widest role a `scope` parameter asks for; `None` when it names no role (absent, empty,
/// or only other words), which leaves the key's role.
pub fn parse(scope: Option<&str>) -> Option<Role> {
    scope
        .unwrap_or_default()
        .split_ascii_whitespace()
        .filter_map(Role::parse)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_list_asks_for_its_widest_role() {
        assert_eq!(parse(None), None);
        assert_eq!(parse(Some("")), None);
        assert_eq!(parse(Some("offline_access")), None);
        assert_eq!(parse(Some("read")), Some(Role::Read));
        assert_eq!(parse(Some("read write admin")), Some(Role::Admin));
        assert_eq!(parse(Some("write  read")), Some(Role::Write));
    }

    #[test]
    fn words_that_are_not_roles_are_ignored() {
        assert_eq!(parse(Some("claudeai")), None);
        assert_eq!(parse(Some("read everything")), Some(Role::Read));
    }
}

//! Who is calling and what they may do: the [`Identity`] every tool call carries (its role is a
//! [`crate::domain::Role`]), and API keys (generation and argon2id hashing in [`keys`],
//! verification that runs argon2 once per key and process in [`verifier`]).

pub mod keys;
pub mod throttle;
pub mod verifier;

use uuid::Uuid;

use crate::domain::Role;
use crate::domain::guardrail::LIBRARY_PROJECT;

/// Why [`Identity::authorize`] refused: a message that says which key would be allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AccessDenied(pub String);

/// The caller of a request, established once by the transport and read by every tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The holder of `API_AUTH_TOKEN`: every project, every role.
    Operator,
    /// The person at the terminal (`codifier stdio` and the CLI): every project, every role.
    Local,
    /// An API key scoped to one project with one role.
    Key {
        id: Uuid,
        prefix: String,
        project_id: Uuid,
        role: Role,
    },
}

impl Identity {
    /// A label for logs and the audit log; never a secret.
    pub fn label(&self) -> String {
        match self {
            Identity::Operator => "operator".to_owned(),
            Identity::Local => "local".to_owned(),
            Identity::Key { prefix, .. } => format!("key:{prefix}"),
        }
    }

    /// The project a key is bound to; `None` for identities that reach every project.
    pub fn bound_project(&self) -> Option<Uuid> {
        match self {
            Identity::Key { project_id, .. } => Some(*project_id),
            _ => None,
        }
    }

    /// Whether this identity may create projects and see all of them.
    pub fn is_operator(&self) -> bool {
        matches!(self, Identity::Operator | Identity::Local)
    }

    /// Checks that the caller may act in `project` with at least `needed`. Everyone may read
    /// the skills library ([`LIBRARY_PROJECT`]) and nobody may change it this way: only
    /// `codifier skills import`, which opens the store itself, writes it.
    pub fn authorize(
        &self,
        project: Uuid,
        project_name: &str,
        needed: Role,
    ) -> Result<(), AccessDenied> {
        if project == LIBRARY_PROJECT {
            return match needed {
                Role::Read => Ok(()),
                _ => Err(AccessDenied(
                    "the skills library is read-only here: it changes only with `codifier skills import` on the server".into(),
                )),
            };
        }
        let Identity::Key {
            project_id, role, ..
        } = self
        else {
            return Ok(());
        };
        if *project_id != project {
            return Err(AccessDenied(format!(
                "this API key belongs to another project and cannot act on project `{project_name}`: use a key made for that project"
            )));
        }
        if *role < needed {
            return Err(AccessDenied(format!(
                "this API key has the `{role}` role and this action needs `{needed}`: ask an admin for a key with the `{needed}` role"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(project_id: Uuid, role: Role) -> Identity {
        Identity::Key {
            id: Uuid::new_v4(),
            prefix: "abc".into(),
            project_id,
            role,
        }
    }

    #[test]
    fn a_read_key_cannot_write_in_its_own_project() {
        let project = Uuid::new_v4();
        let error = key(project, Role::Read)
            .authorize(project, "p", Role::Write)
            .unwrap_err();
        assert!(error.to_string().contains("`read` role"), "{error}");
        assert!(
            key(project, Role::Read)
                .authorize(project, "p", Role::Read)
                .is_ok()
        );
    }

    #[test]
    fn an_admin_key_cannot_act_on_another_project() {
        let error = key(Uuid::new_v4(), Role::Admin)
            .authorize(Uuid::new_v4(), "other", Role::Read)
            .unwrap_err();
        assert!(error.to_string().contains("another project"), "{error}");
    }

    #[test]
    fn every_caller_reads_the_skills_library_and_none_changes_it() {
        let key = key(Uuid::new_v4(), Role::Admin);
        for identity in [key, Identity::Operator, Identity::Local] {
            assert!(identity.authorize(LIBRARY_PROJECT, "l", Role::Read).is_ok());
            for needed in [Role::Write, Role::Admin] {
                let error = identity
                    .authorize(LIBRARY_PROJECT, "l", needed)
                    .unwrap_err();
                assert!(error.to_string().contains("skills import"), "{error}");
            }
        }
    }

    #[test]
    fn the_operator_may_act_anywhere() {
        assert!(
            Identity::Operator
                .authorize(Uuid::new_v4(), "p", Role::Admin)
                .is_ok()
        );
    }
}

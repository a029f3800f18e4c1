//! Every tool reads a stack name the same way (`stack::membership`): `find_skills` keeps the
//! skills of a stack, and `watch_out` the sharp edges of those skills, for any spelling of a
//! name held in a skill's `stack`, `tags` or a word of its `triggers`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::agent_pack::server_with_library;
use crate::clients::{self, call, ok};
use crate::helpers::{OPERATOR_TOKEN, backends};

fn skills_of(list: &Value, field: &str) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|item| item[field].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn find_skills_and_watch_out_agree_on_a_stack_in_any_spelling() {
    for backend in backends() {
        let (server, _project) = server_with_library(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        // A declared stack in another case, a tag in another spelling, one word of a trigger,
        // and a two-word trigger written as one.
        let cases = [
            ("react", "web-fetching"),
            ("Data Fetching", "web-fetching"),
            ("useEffect", "web-fetching"),
            ("REFRESH-TOKEN", "token-auth"),
            ("Tokio", "rust-async"),
        ];
        for (stack, skill) in cases {
            let found = ok(&call(&client, "find_skills", json!({"stack": stack})).await);
            let expected = BTreeSet::from([skill.to_owned()]);
            assert_eq!(
                skills_of(&found["skills"], "id"),
                expected,
                "{backend:?}: find_skills for {stack:?}"
            );
            let edges = ok(&call(&client, "watch_out", json!({"stack": stack})).await);
            assert_eq!(
                skills_of(&edges["edges"], "skill"),
                expected,
                "{backend:?}: watch_out for {stack:?}"
            );
        }
    }
}

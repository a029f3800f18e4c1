//! The directory tree of the packed files, as indented text (directories end with `/`).

/// Renders `paths` (relative, `/`-separated, sorted) as an indented tree.
pub fn render<'a>(paths: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut open: Vec<&str> = Vec::new();
    for path in paths {
        let mut parts: Vec<&str> = path.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        let shared = open.iter().zip(&parts).take_while(|(a, b)| a == b).count();
        open.truncate(shared);
        for dir in &parts[shared..] {
            push_line(&mut out, open.len(), dir, true);
            open.push(dir);
        }
        push_line(&mut out, open.len(), name, false);
    }
    out
}

fn push_line(out: &mut String, depth: usize, name: &str, dir: bool) {
    for _ in 0..depth {
        out.push_str("  ");
    }
    out.push_str(name);
    if dir {
        out.push('/');
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn nested_paths_become_an_indented_tree() {
        let tree = super::render([
            "README.md",
            "src/lib.rs",
            "src/packer/mod.rs",
            "src/z.rs",
            "tests/a.rs",
        ]);
        assert_eq!(
            tree,
            "README.md\nsrc/\n  lib.rs\n  packer/\n    mod.rs\n  z.rs\ntests/\n  a.rs\n"
        );
    }
}

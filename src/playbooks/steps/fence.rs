//! Taking one code fence off a generated artifact. Models wrap YAML and Markdown in a fence
//! (```` ```yaml ```` … ```` ``` ````, ```` ```markdown ````, ```` ```md ````, a bare ```` ``` ````, or
//! `~~~`) even when asked not to; the artifact is what is inside.

/// A fence line: its character, its length and its info string.
fn fence(line: &str) -> Option<(char, usize, &str)> {
    let line = line.trim_end();
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let line = &line[indent..];
    let marker = line.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let length = line.chars().take_while(|c| *c == marker).count();
    if length < 3 {
        return None;
    }
    let info = line[length..].trim();
    // A backtick fence's info string cannot hold a backtick (CommonMark).
    if marker == '`' && info.contains('`') {
        return None;
    }
    Some((marker, length, info))
}

/// The text inside one fence that wraps the whole of `text`, or `text` itself (trimmed) when it
/// is not wrapped. The opening fence may carry any info string; the closing one is the last
/// non-blank line, bare, of the same character and at least as long. Fences inside are kept:
/// an inner block opens with an info string (```` ```rust ````) and closes with a bare fence; a
/// bare fence outside such a block would close the wrapper early, so the text is then two
/// blocks with prose between them, and stays as it is.
pub fn strip_fence(text: &str) -> &str {
    let trimmed = text.trim();
    let Some((first, rest)) = trimmed.split_once('\n') else {
        return trimmed;
    };
    let Some((marker, length, _)) = fence(first) else {
        return trimmed;
    };
    let (body, last) = rest.rsplit_once('\n').unwrap_or(("", rest));
    match fence(last) {
        Some((m, l, "")) if m == marker && l >= length => {}
        _ => return trimmed,
    }
    let mut inner_open = false;
    for line in body.lines() {
        match fence(line) {
            Some((m, l, info)) if m == marker && l >= length => {
                if inner_open && info.is_empty() {
                    inner_open = false;
                } else if !inner_open && !info.is_empty() {
                    inner_open = true;
                } else {
                    return trimmed;
                }
            }
            _ => {}
        }
    }
    if inner_open {
        return trimmed;
    }
    body.trim_matches('\n')
}

#[cfg(test)]
mod tests {
    use super::strip_fence;

    #[test]
    fn one_surrounding_fence_of_any_kind_is_taken_off() {
        for text in [
            "```yaml\nevals:\n  - id: EV-001\n```",
            "```yml\nevals:\n  - id: EV-001\n```\n",
            "```\nevals:\n  - id: EV-001\n```",
            "~~~yaml\nevals:\n  - id: EV-001\n~~~",
            "  ````yaml\nevals:\n  - id: EV-001\n````  ",
        ] {
            assert_eq!(strip_fence(text), "evals:\n  - id: EV-001", "{text:?}");
        }
        assert_eq!(
            strip_fence("```markdown\n# Rules\n\nBe kind.\n```"),
            "# Rules\n\nBe kind."
        );
        assert_eq!(strip_fence("```md\n# Rules\n```"), "# Rules");
    }

    #[test]
    fn fences_inside_the_wrapper_stay() {
        let text = "```markdown\n# Rules\n```rust\nlet x = 1;\n```\nMore.\n```";
        assert_eq!(
            strip_fence(text),
            "# Rules\n```rust\nlet x = 1;\n```\nMore."
        );
        let text = "````markdown\n# Rules\n```\ncode\n```\n````";
        assert_eq!(strip_fence(text), "# Rules\n```\ncode\n```");
    }

    #[test]
    fn text_that_is_not_one_wrapped_block_is_kept_as_it_is() {
        for text in [
            "# Rules\n\nBe kind.",
            "```rust\nlet a = 1;\n```\nSome prose.\n```rust\nlet b = 2;\n```",
            "```\na\n```\nprose\n```\nb\n```",
            "```yaml\nno closing fence",
            "evals: []",
            "```",
        ] {
            assert_eq!(strip_fence(text), text, "{text:?}");
        }
    }
}

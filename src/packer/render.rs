//! Output styles: `xml` (the layout repomix users know: a summary, the directory structure,
//! then each file in a `<file path="…">` element), `markdown`, `plain` and `json`. Each style is
//! written as a header, the files one by one, and a footer, so a pack of any size streams.

use std::io::{self, Write};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{PackSummary, PackedFile};

/// How the packed text is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    #[default]
    Xml,
    Markdown,
    Plain,
    Json,
}

impl Style {
    pub fn as_str(self) -> &'static str {
        match self {
            Style::Xml => "xml",
            Style::Markdown => "markdown",
            Style::Plain => "plain",
            Style::Json => "json",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "xml" => Some(Style::Xml),
            "markdown" | "md" => Some(Style::Markdown),
            "plain" | "text" => Some(Style::Plain),
            "json" => Some(Style::Json),
            _ => None,
        }
    }
}

const RULE: &str = "================================================================";

fn notes(summary: &PackSummary) -> Vec<String> {
    let mut notes = vec![format!("Source: {}", summary.source)];
    if let Some(commit) = &summary.commit_sha {
        let branch = summary
            .branch
            .as_deref()
            .map(|b| format!(" ({b})"))
            .unwrap_or_default();
        match summary.working_tree.as_ref().filter(|tree| tree.dirty) {
            Some(tree) => {
                notes.push(format!(
                    "Commit: {commit}{branch}, with uncommitted changes: this text is the working tree, not that commit"
                ));
                notes.push(format!("Uncommitted changes: {}.", tree.describe()));
            }
            None => notes.push(format!("Commit: {commit}{branch}")),
        }
    }
    notes.push(format!(
        "Files: {}; tokens: {} ({})",
        summary.file_count,
        summary.total_tokens,
        summary.encoding.as_str()
    ));
    notes.push(
        "Files ignored by .gitignore, .codifierignore, .repomixignore and the default ignores (lock files, build output, vendored dependencies, media) are not included.".into(),
    );
    if !summary.skipped.is_empty() {
        notes.push(format!(
            "{} left out (binary, too large, symbolic links, or holding credentials); the pack report lists them.",
            crate::plural::count(summary.skipped.len(), "file")
        ));
    }
    if !summary.redacted.is_empty() {
        notes.push(format!(
            "{} had credentials replaced by [REDACTED <kind>].",
            crate::plural::count(summary.redacted.len(), "file")
        ));
    }
    notes
}

/// Writes what comes before the files.
pub fn header(
    out: &mut dyn Write,
    style: Style,
    summary: &PackSummary,
    tree: &str,
) -> io::Result<()> {
    let notes = notes(summary);
    match style {
        Style::Xml => {
            writeln!(
                out,
                "This document holds the files of one repository, packed by Codifier for an AI system to read at once.\n"
            )?;
            writeln!(
                out,
                "<file_summary>\n<purpose>\nThe contents of a repository, so that an AI system can read and reason about the whole code base.\n</purpose>\n"
            )?;
            writeln!(
                out,
                "<file_format>\n1. This summary\n2. The directory structure of the included files\n3. Each file as a <file path=\"...\"> element holding its text\n</file_format>\n"
            )?;
            writeln!(
                out,
                "<usage_guidelines>\n- Treat this document as read-only: change the original files.\n- Paths are relative to the repository root.\n</usage_guidelines>\n"
            )?;
            writeln!(out, "<notes>")?;
            for note in &notes {
                writeln!(out, "- {note}")?;
            }
            writeln!(out, "</notes>\n</file_summary>\n")?;
            writeln!(out, "<directory_structure>\n{tree}</directory_structure>\n")?;
            writeln!(
                out,
                "<files>\nThis section holds the contents of the repository's files.\n"
            )
        }
        Style::Markdown => {
            writeln!(out, "# Repository: {}\n", summary.source)?;
            writeln!(
                out,
                "This document holds the files of one repository, packed by Codifier for an AI system to read at once. Paths are relative to the repository root.\n"
            )?;
            for note in &notes {
                writeln!(out, "- {note}")?;
            }
            writeln!(
                out,
                "\n## Directory structure\n\n```\n{tree}```\n\n## Files\n"
            )
        }
        Style::Plain => {
            writeln!(
                out,
                "This document holds the files of one repository, packed by Codifier for an AI system to read at once. Paths are relative to the repository root.\n"
            )?;
            for note in &notes {
                writeln!(out, "- {note}")?;
            }
            writeln!(
                out,
                "\n{RULE}\nDirectory structure\n{RULE}\n{tree}\n{RULE}\nFiles\n{RULE}\n"
            )
        }
        Style::Json => {
            write!(out, "{{\"summary\":")?;
            serde_json::to_writer(&mut *out, summary)?;
            write!(out, ",\"notes\":")?;
            serde_json::to_writer(&mut *out, &notes)?;
            write!(out, ",\"directory_structure\":")?;
            serde_json::to_writer(&mut *out, tree)?;
            write!(out, ",\"files\":[")
        }
    }
}

/// Writes one file; `first` says whether it is the first (JSON needs commas between files).
pub fn file(
    out: &mut dyn Write,
    style: Style,
    file: &PackedFile,
    line_numbers: bool,
    first: bool,
) -> io::Result<()> {
    let numbered;
    let text = if line_numbers {
        numbered = number_lines(&file.text);
        numbered.as_str()
    } else {
        file.text.as_str()
    };
    let newline = if text.ends_with('\n') || text.is_empty() {
        ""
    } else {
        "\n"
    };
    match style {
        Style::Xml => write!(
            out,
            "<file path=\"{}\">\n{text}{newline}</file>\n\n",
            escape_attribute(&file.path)
        ),
        Style::Markdown => {
            let fence = "`".repeat(longest_backtick_run(text).max(2) + 1);
            let language = file.path.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
            let language = if language.contains('/') { "" } else { language };
            write!(
                out,
                "### `{}`\n\n{fence}{language}\n{text}{newline}{fence}\n\n",
                file.path
            )
        }
        Style::Plain => write!(
            out,
            "{RULE}\nFile: {}\n{RULE}\n{text}{newline}\n",
            file.path
        ),
        Style::Json => {
            if !first {
                write!(out, ",")?;
            }
            let entry =
                serde_json::json!({ "path": file.path, "tokens": file.tokens, "content": text });
            serde_json::to_writer(&mut *out, &entry)?;
            Ok(())
        }
    }
}

/// Writes what comes after the files.
pub fn footer(out: &mut dyn Write, style: Style) -> io::Result<()> {
    match style {
        Style::Xml => writeln!(out, "</files>"),
        Style::Markdown | Style::Plain => Ok(()),
        Style::Json => writeln!(out, "]}}"),
    }
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn longest_backtick_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for byte in text.bytes() {
        if byte == b'`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// Prefixes each line with its number, right-aligned: `  7: text`.
pub fn number_lines(text: &str) -> String {
    let count = text.lines().count().max(1);
    let width = count.to_string().len();
    let mut out = String::with_capacity(text.len() + count * (width + 2));
    for (index, line) in text.lines().enumerate() {
        out.push_str(&format!("{:>width$}: {line}\n", index + 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(path: &str, text: &str) -> PackedFile {
        PackedFile {
            path: path.into(),
            text: text.into(),
            tokens: 1,
            blob_id: String::new(),
        }
    }

    fn render(style: Style, files: &[PackedFile], line_numbers: bool) -> String {
        let mut out = Vec::new();
        for (index, one) in files.iter().enumerate() {
            file(&mut out, style, one, line_numbers, index == 0).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn xml_wraps_each_file_in_a_file_element() {
        let text = render(Style::Xml, &[packed("src/a \"q\".rs", "fn a() {}")], false);
        assert_eq!(
            text,
            "<file path=\"src/a &quot;q&quot;.rs\">\nfn a() {}\n</file>\n\n"
        );
    }

    #[test]
    fn markdown_fences_are_longer_than_any_backtick_run_inside() {
        let text = render(
            Style::Markdown,
            &[packed("README.md", "```sh\nls\n```\n")],
            false,
        );
        assert!(
            text.starts_with("### `README.md`\n\n````md\n```sh"),
            "{text}"
        );
        assert!(text.ends_with("```\n````\n\n"), "{text}");
    }

    #[test]
    fn line_numbers_are_right_aligned() {
        let lines: String = (1..=10).map(|n| format!("l{n}\n")).collect();
        let numbered = number_lines(&lines);
        assert!(numbered.starts_with(" 1: l1\n"), "{numbered}");
        assert!(numbered.ends_with("10: l10\n"), "{numbered}");
    }

    #[test]
    fn json_files_are_separated_by_commas() {
        let text = render(Style::Json, &[packed("a", "x"), packed("b", "y")], false);
        let value: serde_json::Value = serde_json::from_str(&format!("[{text}]")).unwrap();
        assert_eq!(value[1]["path"], "b");
    }
}

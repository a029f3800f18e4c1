//! The first step of OpenAI's tokenizers: cutting text into pieces, each of which is then
//! byte-pair encoded on its own. The cuts are those of tiktoken's regular expressions for
//! o200k_base and cl100k_base:
//!
//! ```text
//! o200k_base:  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//!            | [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//!            | \p{N}{1,3} | ?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//! cl100k_base: '(?i:[sdmt]|ll|ve|re) | [^\r\n\p{L}\p{N}]?+\p{L}++ | \p{N}{1,3}+
//!            | ?[^\s\p{L}\p{N}]++[\r\n]*+ | \s++$ | \s*[\r\n] | \s+(?!\S) | \s
//! ```
//!
//! Source code is mostly ASCII, where these rules reduce to a few byte classes: pieces made
//! only of ASCII (and ended by ASCII) are cut by hand, byte by byte. Wherever a piece touches
//! another character, the first alternatives (everything but the whitespace ones) run as an
//! anchored regular expression, built on first need; the whitespace alternatives, which need
//! the look-ahead the regex engine lacks, are done by hand for every character.

use std::sync::LazyLock;

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};

/// Which tokenizer's cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    O200k,
    Cl100k,
}

/// The pieces of `text`, in order; together they are `text`.
pub fn pieces(rules: Rules, text: &str) -> Pieces<'_> {
    Pieces { rules, text, at: 0 }
}

pub struct Pieces<'a> {
    rules: Rules,
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let start = self.at;
        if start >= self.text.len() {
            return None;
        }
        let bytes = self.text.as_bytes();
        let ascii = match self.rules {
            Rules::O200k => o200k_ascii(bytes, start),
            Rules::Cl100k => cl100k_ascii(bytes, start),
        };
        let end = match ascii {
            Some(end) => end,
            None => general(self.rules, self.text, start),
        };
        self.at = end;
        Some(&self.text[start..end])
    }
}

// ASCII byte classes. A byte of 0x80 or more is `HIGH`: part of a character the hand-written
// rules do not know, so the piece is cut by `general` instead.
const UPPER: u8 = 1;
const LOWER: u8 = 2;
const DIGIT: u8 = 4;
/// Whitespace other than `\r` and `\n`: tab, vertical tab, form feed, space.
const BLANK: u8 = 8;
const NEWLINE: u8 = 16;
/// Neither letter, digit nor whitespace.
const OTHER: u8 = 32;
const HIGH: u8 = 64;
const LETTER: u8 = UPPER | LOWER;
const SPACE: u8 = BLANK | NEWLINE;

static CLASSES: [u8; 256] = {
    let mut classes = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        classes[byte] = match byte as u8 {
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'0'..=b'9' => DIGIT,
            b'\t' | 0x0b | 0x0c | b' ' => BLANK,
            b'\r' | b'\n' => NEWLINE,
            0x80..=0xff => HIGH,
            _ => OTHER,
        };
        byte += 1;
    }
    classes
};

fn class(bytes: &[u8], at: usize) -> u8 {
    bytes.get(at).map_or(0, |byte| CLASSES[*byte as usize])
}

/// The end of the run of bytes in `classes` from `at`; `None` when the run is ended by a
/// non-ASCII character, which might belong to it.
fn run(bytes: &[u8], mut at: usize, classes: u8) -> Option<usize> {
    while at < bytes.len() {
        let found = CLASSES[bytes[at] as usize];
        if found & classes == 0 {
            return (found != HIGH).then_some(at);
        }
        at += 1;
    }
    Some(at)
}

/// The end of an English contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`, any case)
/// starting at `at`, or `at` when there is none; `None` when a non-ASCII character decides.
fn contraction(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'\'') {
        return Some(at);
    }
    let lower = |offset: usize| bytes.get(at + offset).map(u8::to_ascii_lowercase);
    if class(bytes, at + 1) == HIGH {
        return None;
    }
    Some(match lower(1) {
        Some(b's' | b't' | b'm' | b'd') => at + 2,
        Some(first @ (b'r' | b'v' | b'l')) => {
            let second = if first == b'l' { b'l' } else { b'e' };
            if class(bytes, at + 2) == HIGH {
                return None;
            }
            if lower(2) == Some(second) { at + 3 } else { at }
        }
        _ => at,
    })
}

/// `\p{N}{1,3}` at `at` (an ASCII digit).
fn digits(bytes: &[u8], at: usize) -> Option<usize> {
    let mut end = at;
    while end < at + 3 {
        match class(bytes, end) {
            DIGIT => end += 1,
            HIGH => return None,
            _ => break,
        }
    }
    Some(end)
}

/// `[^\r\n\p{L}\p{N}]`: the optional character before a word.
fn may_lead_word(class: u8) -> bool {
    class & (BLANK | OTHER) != 0
}

/// The end of the piece at `at` under o200k_base's rules, when ASCII decides it.
fn o200k_ascii(bytes: &[u8], at: usize) -> Option<usize> {
    let first = class(bytes, at);
    if first == HIGH {
        return None;
    }
    // A word: an optional leading character, capitals, then small letters.
    let word = if may_lead_word(first) { at + 1 } else { at };
    if word > at && class(bytes, word) == HIGH {
        return None;
    }
    let capitals_end = run(bytes, word, UPPER)?;
    if class(bytes, capitals_end) == LOWER {
        let end = run(bytes, capitals_end, LOWER)?;
        return contraction(bytes, end);
    }
    if capitals_end > word {
        return contraction(bytes, capitals_end);
    }
    if first == DIGIT {
        return digits(bytes, at);
    }
    if let Some(end) = punctuation(bytes, at, true) {
        return end;
    }
    whitespace_ascii(Rules::O200k, bytes, at)
}

/// The end of the piece at `at` under cl100k_base's rules, when ASCII decides it.
fn cl100k_ascii(bytes: &[u8], at: usize) -> Option<usize> {
    let first = class(bytes, at);
    if first == HIGH {
        return None;
    }
    if bytes[at] == b'\'' {
        let end = contraction(bytes, at)?;
        if end > at {
            return Some(end);
        }
    }
    let word = if may_lead_word(first) { at + 1 } else { at };
    match class(bytes, word) {
        HIGH if word > at => return None,
        UPPER | LOWER => return run(bytes, word, LETTER),
        _ => {}
    }
    if first == DIGIT {
        return digits(bytes, at);
    }
    if let Some(end) = punctuation(bytes, at, false) {
        return end;
    }
    whitespace_ascii(Rules::Cl100k, bytes, at)
}

/// ` ?[^\s\p{L}\p{N}]+` followed by `[\r\n]*` (and `/` in that run when `slash`): `None`
/// when it does not match, `Some(None)` when a non-ASCII character decides.
fn punctuation(bytes: &[u8], at: usize, slash: bool) -> Option<Option<usize>> {
    let start = if bytes[at] == b' ' { at + 1 } else { at };
    match class(bytes, start) {
        OTHER => {}
        HIGH => return Some(None),
        _ => return None,
    }
    let Some(mut end) = run(bytes, start, OTHER) else {
        return Some(None);
    };
    while let Some(&byte) = bytes.get(end) {
        if !(byte == b'\r' || byte == b'\n' || (slash && byte == b'/')) {
            break;
        }
        end += 1;
    }
    Some(Some(end))
}

/// The whitespace alternatives at `at` for an ASCII run; `None` when the run is ended by a
/// non-ASCII character, which might be whitespace.
fn whitespace_ascii(rules: Rules, bytes: &[u8], at: usize) -> Option<usize> {
    if class(bytes, at) & SPACE == 0 {
        return None;
    }
    let end = run(bytes, at, SPACE)?;
    let last_break = bytes[at..end]
        .iter()
        .rposition(|byte| *byte == b'\r' || *byte == b'\n')
        .map(|index| at + index);
    Some(whitespace_end(rules, at, end, last_break, bytes.len(), 1))
}

/// Which whitespace alternative wins for the run `start..end` (its last character is
/// `last_len` bytes long):
/// - cl100k_base only: `\s++$`, the whole run when it ends the text;
/// - `\s*[\r\n]+`: up to the run's last line break;
/// - `\s+(?!\S)`: all but the run's last character, or all of it at the end of the text;
/// - `\s+`: a single whitespace character before something else.
fn whitespace_end(
    rules: Rules,
    start: usize,
    end: usize,
    last_break: Option<usize>,
    len: usize,
    last_len: usize,
) -> usize {
    if rules == Rules::Cl100k && end == len {
        return end;
    }
    if let Some(index) = last_break {
        return index + 1;
    }
    if end == len || end - last_len == start {
        end
    } else {
        end - last_len
    }
}

/// The end of the piece at `at`, for any text.
fn general(rules: Rules, text: &str, at: usize) -> usize {
    let regex = match rules {
        Rules::O200k => &*O200K_WORDS,
        Rules::Cl100k => &*CL100K_WORDS,
    };
    let input = Input::new(text).range(at..).anchored(Anchored::Yes);
    if let Some(found) = regex.find(input) {
        return found.end();
    }
    // Only whitespace is left (a character is a letter, a number, whitespace, or matches the
    // punctuation alternative).
    let mut end = at;
    let mut last_break = None;
    let mut last_len = 0;
    for character in text[at..].chars() {
        if !character.is_whitespace() {
            break;
        }
        if character == '\r' || character == '\n' {
            last_break = Some(end);
        }
        last_len = character.len_utf8();
        end += last_len;
    }
    if end == at {
        // Unreachable by the rules above; one character keeps the cutting going regardless.
        return at + text[at..].chars().next().map_or(1, char::len_utf8);
    }
    whitespace_end(rules, at, end, last_break, text.len(), last_len)
}

/// o200k_base's alternatives before the whitespace ones.
static O200K_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    let contraction = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?";
    let pattern = [
        format!(r"[^\r\n\p{{L}}\p{{N}}]?[\p{{Lu}}\p{{Lt}}\p{{Lm}}\p{{Lo}}\p{{M}}]*[\p{{Ll}}\p{{Lm}}\p{{Lo}}\p{{M}}]+{contraction}"),
        format!(r"[^\r\n\p{{L}}\p{{N}}]?[\p{{Lu}}\p{{Lt}}\p{{Lm}}\p{{Lo}}\p{{M}}]+[\p{{Ll}}\p{{Lm}}\p{{Lo}}\p{{M}}]*{contraction}"),
        r"\p{N}{1,3}".to_owned(),
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*".to_owned(),
    ]
    .join("|");
    Regex::new(&pattern).expect("o200k_base's pattern is valid")
});

/// cl100k_base's alternatives before the whitespace ones.
static CL100K_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        // The possessive quantifiers of tiktoken's pattern change nothing here: no alternative
        // could match after giving characters back.
        r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*",
    )
    .expect("cl100k_base's pattern is valid")
});

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(rules: Rules, text: &str) -> Vec<&str> {
        pieces(rules, text).collect()
    }

    #[test]
    fn code_is_cut_as_tiktoken_cuts_it() {
        assert_eq!(
            cut(Rules::O200k, "fn main() {\n    let x = 12345;\n}"),
            [
                "fn", " main", "()", " {\n", "   ", " let", " x", " =", " ", "123", "45", ";\n",
                "}"
            ]
        );
        assert_eq!(
            cut(Rules::Cl100k, "don't HTTPServer's"),
            ["don", "'t", " HTTPServer", "'s"]
        );
        assert_eq!(
            cut(Rules::O200k, "don't HTTPServer's"),
            ["don't", " HTTPServer's"]
        );
    }

    #[test]
    fn every_piece_is_cut_the_same_with_or_without_the_ascii_rules() {
        for rules in [Rules::O200k, Rules::Cl100k] {
            for text in [
                "a  \n\n  b\r\n\tc   ",
                "x // comment/\n///doc\n",
                "Ünïcödé wörds café's naïve",
                "日本語のテキスト and 中文",
                "emoji 👍🏽 here\u{a0}\u{a0}nbsp",
                "'S 'LL 'ſ x'ſ",
                "٣٤٥ digits ²³",
            ] {
                let mut general_cuts = Vec::new();
                let mut at = 0;
                while at < text.len() {
                    let end = general(rules, text, at);
                    general_cuts.push(&text[at..end]);
                    at = end;
                }
                assert_eq!(cut(rules, text), general_cuts, "{rules:?} {text:?}");
            }
        }
    }
}

//! The packer's token counter against references, on varied text: tiktoken's own algorithm and
//! patterns (`tiktoken-rs`) for both encodings, and the `bpe-openai` crate for o200k_base. (For
//! cl100k_base, `bpe-openai` cuts a run of whitespace that ends the text after its last line
//! break, where tiktoken's current pattern, `\s++$`, keeps it whole: tiktoken is the reference.)

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::tokens::Encoding;

fn samples() -> Vec<String> {
    let mut texts: Vec<String> = [
        "",
        "Hello, world!",
        "fn main() {\r\n    println!(\"hi\");\r\n}\r\n",
        "don't I'LL we've they'RE she'd it's 'S 'ſ x'ſ o'Ks",
        "   leading and trailing   \n\n\n   ",
        "tabs\t\tand\u{b}vertical\u{c}feeds\t",
        "1234567890 3.14159 1e-9 0x1F 1_000_000 ٣٤٥ ²³ ⅷ",
        "emoji 👍🏽👨‍👩‍👧 ✨ and flags 🇫🇷",
        "日本語のテキスト、中文，한국어 텍스트",
        "Ünïcödé wörds: café, naïve, Ærøskøbing, İstanbul, ǅemal",
        "combining e\u{301} a\u{300}\u{302} marks \u{301}alone",
        "nbsp\u{a0}\u{a0}here\u{2028}line\u{2029}para\u{3000}ideographic \u{85}next",
        "// comment\n/// doc\n/* block */ a/b//c\n/\n",
        "HTTPServerError XMLHttpRequest getHTTPResponseCode snake_case_name CONSTANT_NAME",
        "<tag attr=\"v\">&amp;</tag>  {{ json: [1, 2, 3] }}",
        "\n",
        "x\n  ",
        "x\n\n\t ",
        " ",
    ]
    .iter()
    .map(|text| (*text).to_owned())
    .collect();
    texts.push(" ".repeat(1000));
    texts.push(format!("a{}b", " ".repeat(513)));
    texts.push("\n".repeat(300) + "end");
    texts.push("=".repeat(2000));
    texts.push("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo".repeat(60));
    texts.push("9".repeat(100));
    texts.push("\r\n".repeat(50) + "  \r\n  ");
    texts
}

/// Strings from pieces that stress the cutting rules, in random order.
fn random_texts(count: usize) -> Vec<String> {
    const ATOMS: &[&str] = &[
        "a", "Z", "word", "Word", "WORD", "é", "É", "ǅ", "ß", "ſ", "\u{301}", "日本", "ー", "0",
        "42", "٣", "²", " ", "  ", "\t", "\n", "\r", "\r\n", "\u{a0}", "\u{2028}", "\u{3000}", "'",
        "'s", "'T", "'re", "'LL", "/", "//", ".", "...", "{", "}", "(", ")", "_", "-", "=", "👍",
        "🏽", "\u{200d}", "\u{0}", "\u{7f}", "\u{feff}", "ǈ", "ʰ", "ª",
    ];
    let mut rng = StdRng::seed_from_u64(4);
    (0..count)
        .map(|_| {
            let len = rng.gen_range(1..40);
            (0..len)
                .map(|_| {
                    if rng.gen_bool(0.1) {
                        // Any character at all.
                        char::from_u32(rng.gen_range(0..0x3_0000))
                            .unwrap_or('?')
                            .to_string()
                    } else {
                        ATOMS[rng.gen_range(0..ATOMS.len())].to_owned()
                    }
                })
                .collect()
        })
        .collect()
}

/// This crate's sources and documents: real code.
fn source_files() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut texts = Vec::new();
    let walker = ignore::WalkBuilder::new(root)
        .filter_entry(|entry| entry.file_name() != "target")
        .build();
    for entry in walker.filter_map(Result::ok) {
        let path = entry.path();
        let wanted = matches!(
            path.extension().and_then(|extension| extension.to_str()),
            Some("rs" | "md" | "toml" | "sh" | "py" | "sql" | "yaml" | "yml" | "json" | "j2")
        );
        if wanted && let Ok(text) = std::fs::read_to_string(path) {
            texts.push(text);
        }
    }
    assert!(texts.len() > 50, "found only {} source files", texts.len());
    texts
}

fn check(encoding: Encoding, texts: &[String]) {
    let tiktoken = match encoding {
        Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
        Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
    };
    for text in texts {
        let expected = tiktoken.encode_ordinary(text).len() as u64;
        assert_eq!(
            encoding.count(text),
            expected,
            "{encoding:?} (tiktoken) on {text:?}"
        );
        if encoding == Encoding::O200kBase {
            assert_eq!(
                expected,
                bpe_openai::o200k_base().count(text.as_str()) as u64,
                "bpe-openai on {text:?}"
            );
        }
    }
}

#[test]
fn counts_equal_tiktoken_on_hand_picked_text() {
    for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
        check(encoding, &samples());
    }
}

#[test]
fn counts_equal_tiktoken_on_random_text() {
    let texts = random_texts(3000);
    for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
        check(encoding, &texts);
    }
}

#[test]
fn counts_equal_tiktoken_on_this_repository() {
    let texts = source_files();
    for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
        check(encoding, &texts);
    }
}

#[test]
fn counts_equal_tiktoken_on_text_cut_anywhere() {
    // Ends and starts at every kind of place: mid-word, mid-run of spaces, after a break.
    let text = source_files().concat();
    let mut rng = StdRng::seed_from_u64(7);
    let cuts: Vec<String> = (0..400)
        .map(|_| {
            let mut start = rng.gen_range(0..text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + rng.gen_range(1..3000)).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[start..end].to_owned()
        })
        .collect();
    for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
        check(encoding, &cuts);
    }
}

//! Code shown on a page under a `<!-- code: PATH [ITEM [.. ITEM]] -->` marker (see
//! the crate's documentation): what the block must hold, whether it does, and the
//! page with every block rewritten from its file.

use std::path::Path;

use crate::{CodeMarker, Page, read_page};

/// What a marker asks for: a file, and maybe the items from `first` to `last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub path: String,
    pub first: Option<String>,
    pub last: Option<String>,
}

/// Reads `PATH`, `PATH fn a` or `PATH fn a .. fn b`.
pub fn parse_spec(spec: &str) -> Result<Spec, String> {
    let spec = spec.trim();
    let (path, items) = spec.split_once(char::is_whitespace).unwrap_or((spec, ""));
    if path.is_empty() {
        return Err("the marker names no file: `<!-- code: PATH -->`".into());
    }
    let item = |text: &str| {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.len() {
            0 => Err(format!("`{spec}`: an empty item; name one as `fn name`")),
            1 => Err(format!(
                "`{spec}`: name the item with its keyword, as it is declared (`fn {}`)",
                words[0]
            )),
            _ => Ok(words.join(" ")),
        }
    };
    let (first, last) = match items.trim() {
        "" => (None, None),
        items => match items.split_once("..") {
            Some((first, last)) => (Some(item(first)?), Some(item(last)?)),
            None => (Some(item(items)?), None),
        },
    };
    Ok(Spec { path: path.to_string(), first, last })
}

/// The text a marker shows of `source`: the whole file, or its items from `first`
/// through `last`, each line ending in a newline.
pub fn region(source: &str, spec: &Spec) -> Result<String, String> {
    let lines: Vec<&str> = source.lines().collect();
    let (start, end) = match (&spec.first, &spec.last) {
        (None, _) => (0, lines.len()),
        (Some(first), last) => {
            let (start, first_end) = item_lines(&lines, first)?;
            let end = match last {
                None => first_end,
                Some(last) => {
                    let (last_start, end) = item_lines(&lines, last)?;
                    if last_start < start {
                        return Err(format!("`{last}` comes before `{first}` in the file"));
                    }
                    end
                }
            };
            (start, end)
        }
    };
    Ok(lines[start..end].iter().map(|line| format!("{line}\n")).collect())
}

/// The lines `[start, end)` of a top-level item: its doc comment and attributes,
/// the line that declares it, and everything to its closing `}` or `;`.
fn item_lines(lines: &[&str], item: &str) -> Result<(usize, usize), String> {
    let declared: Vec<usize> = (0..lines.len()).filter(|&i| declares(lines[i], item)).collect();
    let at = match declared[..] {
        [at] => at,
        [] => return Err(format!("no top-level `{item}` in the file")),
        _ => return Err(format!("{} top-level `{item}` in the file", declared.len())),
    };
    let mut start = at;
    while start > 0 && {
        let above = lines[start - 1].trim_start();
        above.starts_with("///") || above.starts_with("#[")
    } {
        start -= 1;
    }
    let text = lines[at..].join("\n");
    let end_offset = item_end(&text).ok_or_else(|| format!("`{item}` never ends"))?;
    Ok((start, at + text[..end_offset].matches('\n').count() + 1))
}

/// Whether `line` declares `item` at the top level: it starts with the item (after
/// `pub`, `pub(crate)`, `async`, `unsafe`, `const`, ...), and the name ends there.
fn declares(line: &str, item: &str) -> bool {
    const QUALIFIERS: [&str; 6] =
        ["pub ", "async ", "unsafe ", "const ", "extern \"C\" ", "default "];
    let mut rest = line;
    loop {
        if let Some(after) = rest.strip_prefix(item) {
            return !after.starts_with(|c: char| c.is_alphanumeric() || c == '_');
        }
        if let Some(after) = QUALIFIERS.iter().find_map(|q| rest.strip_prefix(q)) {
            rest = after;
        } else if rest.starts_with("pub(")
            && let Some(close) = rest.find(") ")
        {
            rest = &rest[close + 2..];
        } else {
            return false;
        }
    }
}

/// Where an item that starts `text` ends: just after the `;` or `}` that closes it
/// at bracket depth 0. Strings, characters and comments are skipped.
fn item_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let identifier_before =
            i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |end| i + end);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(bytes.len(), |end| i + 2 + end + 2);
                continue;
            }
            b'r' if !identifier_before && matches!(bytes.get(i + 1), Some(b'"' | b'#')) => {
                let hashes = bytes[i + 1..].iter().take_while(|&&b| b == b'#').count();
                if bytes.get(i + 1 + hashes) == Some(&b'"') {
                    let closing = format!("\"{}", "#".repeat(hashes));
                    let body = i + 2 + hashes;
                    i = text[body..]
                        .find(&closing)
                        .map_or(bytes.len(), |e| body + e + closing.len());
                    continue;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' => {
                // A character ('a', '\n', '{') or a lifetime ('a): only the first
                // is closed by a quote.
                if bytes.get(i + 1) == Some(&b'\\') {
                    i = text[i + 3..].find('\'').map_or(bytes.len(), |e| i + 3 + e);
                } else if let Some(c) = text[i + 1..].chars().next()
                    && text[i + 1 + c.len_utf8()..].starts_with('\'')
                {
                    i += c.len_utf8() + 1;
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b';' if depth == 0 => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The code block for `content`: a fence longer than any run of backticks in it,
/// every line indented by `indent` (as the marker is).
pub fn fenced(content: &str, info: &str, indent: &str) -> String {
    let longest = content.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let mut block = format!("{indent}{fence}{info}\n");
    for line in content.lines() {
        if !line.is_empty() {
            block.push_str(indent);
        }
        block.push_str(line);
        block.push('\n');
    }
    block.push_str(&format!("{indent}{fence}\n"));
    block
}

/// The info string a new block gets from its file's extension.
fn info_for(path: &str) -> &'static str {
    match Path::new(path).extension().and_then(|e| e.to_str()) {
        Some("rs") => "rust",
        Some("py") => "python",
        Some("toml") => "toml",
        Some("sh") => "sh",
        _ => "text",
    }
}

/// A marker's problem, with the page line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub text: String,
}

/// What the block under `marker` must hold, read through `read` (which gets the
/// marker's path and returns the file's text).
fn expected(
    marker: &CodeMarker,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, String> {
    let spec = parse_spec(&marker.spec)?;
    let source = read(&spec.path)?;
    region(&source, &spec).map_err(|problem| format!("{}: {problem}", spec.path))
}

/// Every marker of the page whose block is missing or differs from its file, or
/// that points at nothing.
pub fn check(page: &Page, read: &dyn Fn(&str) -> Result<String, String>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for marker in &page.code_markers {
        let problem = match (expected(marker, read), &marker.block) {
            (Err(problem), _) => {
                format!("`<!-- code: {} -->` points at nothing: {problem}", marker.spec)
            }
            (Ok(_), None) => format!(
                "`<!-- code: {} -->` has no code block on the line under it; `cargo xtask book-code` writes one",
                marker.spec
            ),
            (Ok(wanted), Some(block)) if block.content != wanted => format!(
                "the code block under `<!-- code: {} -->` differs from the file ({}); `cargo xtask book-code` copies it again",
                marker.spec,
                first_difference(&block.content, &wanted)
            ),
            (Ok(_), Some(_)) => continue,
        };
        problems.push(Problem { line: marker.line, text: problem });
    }
    problems
}

/// "line 12 of the block: `x` where the file has `y`".
fn first_difference(shown: &str, wanted: &str) -> String {
    let (shown, wanted): (Vec<&str>, Vec<&str>) =
        (shown.lines().collect(), wanted.lines().collect());
    let at = shown
        .iter()
        .zip(&wanted)
        .position(|(a, b)| a != b)
        .unwrap_or(shown.len().min(wanted.len()));
    match (shown.get(at), wanted.get(at)) {
        (Some(a), Some(b)) => {
            format!("line {} of the block: `{a}` where the file has `{b}`", at + 1)
        }
        (Some(a), None) => {
            format!("line {} of the block, `{a}`, is past the end of the file", at + 1)
        }
        (None, Some(b)) => format!("the block ends before line {} of the file, `{b}`", at + 1),
        (None, None) => "they differ in their line endings".into(),
    }
}

/// The page with every marked block copied again from its file (and a block
/// written under each marker that has none), and the markers that point at nothing.
pub fn rewrite(
    markdown: &str,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> (String, Vec<Problem>) {
    let page = read_page(markdown);
    let mut problems = Vec::new();
    let mut out = String::with_capacity(markdown.len());
    let mut copied_to = 0;
    for marker in &page.code_markers {
        let wanted = match expected(marker, read) {
            Ok(wanted) => wanted,
            Err(problem) => {
                let text = format!("`<!-- code: {} -->` points at nothing: {problem}", marker.spec);
                problems.push(Problem { line: marker.line, text });
                continue;
            }
        };
        let (replaced, info) = match &marker.block {
            Some(block) => (block.lines.clone(), block.info.clone()),
            None => (marker.marker.end..marker.marker.end, None),
        };
        let path = parse_spec(&marker.spec).map(|spec| spec.path).unwrap_or_default();
        let info =
            info.filter(|info| !info.is_empty()).unwrap_or_else(|| info_for(&path).to_string());
        out.push_str(&markdown[copied_to..replaced.start]);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n'); // a marker on the last line, with no newline
        }
        out.push_str(&fenced(&wanted, &info, &marker.indent));
        copied_to = replaced.end;
    }
    out.push_str(&markdown[copied_to..]);
    (out, problems)
}

/// Reads a marker's path relative to the page's folder `dir`.
pub fn reader(dir: &Path) -> impl Fn(&str) -> Result<String, String> + '_ {
    move |path: &str| {
        std::fs::read_to_string(dir.join(path)).map_err(|e| format!("cannot read {path}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r##"//! A scene.

use std::path::Path;

/// The parent: { braces in a comment }.
#[allow(unused)]
pub fn parent(path: &Path) -> Result<(), String> {
    let text = "a } in a string; and a ' quote";
    let raw = r#"a } in a raw string"#;
    let c = '}';
    helper::<'static>(path, c, text, raw)
}

pub(crate) const SIZES: [u64; 2] = [1, 2];

struct Pair(u32, u32);

impl Pair {
    fn sum(&self) -> u32 {
        self.0 + self.1
    }
}

/// The child.
pub fn child() {}
"##;

    fn spec(text: &str) -> Spec {
        parse_spec(text).unwrap()
    }

    #[test]
    fn a_spec_names_a_file_and_maybe_items() {
        assert_eq!(spec("a.rs"), Spec { path: "a.rs".into(), first: None, last: None });
        assert_eq!(spec("a.rs  fn  x").first.as_deref(), Some("fn x"));
        let range = spec("a.rs fn x .. impl Y");
        assert_eq!((range.first.as_deref(), range.last.as_deref()), (Some("fn x"), Some("impl Y")));
        assert!(parse_spec("a.rs parent").unwrap_err().contains("`fn parent`"));
    }

    #[test]
    fn an_item_runs_from_its_doc_comment_to_its_end() {
        let parent = region(SOURCE, &spec("x.rs fn parent")).unwrap();
        assert!(parent.starts_with("/// The parent"), "{parent}");
        assert!(parent.ends_with("helper::<'static>(path, c, text, raw)\n}\n"), "{parent}");
        assert_eq!(
            region(SOURCE, &spec("x.rs const SIZES")).unwrap(),
            "pub(crate) const SIZES: [u64; 2] = [1, 2];\n"
        );
        assert_eq!(region(SOURCE, &spec("x.rs struct Pair")).unwrap(), "struct Pair(u32, u32);\n");
        let range = region(SOURCE, &spec("x.rs impl Pair .. fn child")).unwrap();
        assert!(range.starts_with("impl Pair {\n") && range.ends_with("pub fn child() {}\n"));
        assert_eq!(region(SOURCE, &spec("x.rs")).unwrap(), SOURCE);
        assert!(region(SOURCE, &spec("x.rs fn sum")).unwrap_err().contains("no top-level"));
        assert!(region(SOURCE, &spec("x.rs fn child .. fn parent")).is_err());
    }

    fn files(path: &str) -> Result<String, String> {
        match path {
            "../src/scene.rs" => Ok(SOURCE.to_string()),
            other => Err(format!("cannot read {other}: no such file")),
        }
    }

    #[test]
    fn a_block_that_differs_from_its_file_fails() {
        let edited = SOURCE.replace("[1, 2]", "[1, 3]");
        let markdown = format!(
            "# Scene\n\n<!-- code: ../src/scene.rs -->\n{}\nText.\n\n<!-- code: ../src/gone.rs -->\n```rust\n```\n\n<!-- code: ../src/scene.rs fn child -->\n```rust\n/// The child.\npub fn child() {{}}\n```\n",
            fenced(&edited, "rust", "")
        );
        let problems = check(&read_page(&markdown), &files);
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        // The marker of the SOURCE block, and the one four lines under that block.
        assert_eq!(lines, [3, 3 + SOURCE.lines().count() + 2 + 4], "{problems:#?}");
        assert!(
            problems[0].text.contains(
                "line 14 of the block: `pub(crate) const SIZES: [u64; 2] = [1, 3];` where the file has `pub(crate) const SIZES: [u64; 2] = [1, 2];`"
            ),
            "{}",
            problems[0].text
        );
        assert!(problems[1].text.contains("points at nothing: cannot read ../src/gone.rs"));
    }

    #[test]
    fn rewriting_copies_every_block_from_its_file() {
        let markdown = "# Scene\n\n<!-- code: ../src/scene.rs fn child -->\n```rust\nold\n```\n\nText.\n\n- A list:\n\n  <!-- code: ../src/scene.rs struct Pair -->\n\n<!-- code: ../src/gone.rs -->\n";
        let (rewritten, problems) = rewrite(markdown, &files);
        assert_eq!(
            rewritten,
            "# Scene\n\n<!-- code: ../src/scene.rs fn child -->\n```rust\n/// The child.\npub fn child() {}\n```\n\nText.\n\n- A list:\n\n  <!-- code: ../src/scene.rs struct Pair -->\n  ```rust\n  struct Pair(u32, u32);\n  ```\n\n<!-- code: ../src/gone.rs -->\n"
        );
        assert_eq!(problems.len(), 1);
        let left = check(&read_page(&rewritten), &files);
        assert!(left.len() == 1 && left[0].text.contains("gone.rs"), "{left:#?}");
        assert_eq!(rewrite(&rewritten, &files).0, rewritten, "a second rewrite changes nothing");
    }

    #[test]
    fn a_fence_outgrows_the_backticks_inside() {
        assert_eq!(fenced("a\n```\nb\n", "rust", ""), "````rust\na\n```\nb\n````\n");
        let markdown = format!("<!-- code: x.md -->\n{}", fenced("```sh\nls\n```\n", "text", ""));
        let page = read_page(&markdown);
        assert_eq!(page.code_markers[0].block.as_ref().unwrap().content, "```sh\nls\n```\n");
    }
}

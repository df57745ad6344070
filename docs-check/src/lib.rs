//! Reads the book's Markdown with pulldown-cmark (the parser mdBook uses, set up the
//! way a code host renders a page) and sorts out what can drift away from the code:
//! links and their `#anchors`, headings, the `cargo run` commands the pages quote,
//! and the code shown on the page. The checks themselves are in `tests/drift.rs`;
//! this crate only reads text and has no opinion about it.
//!
//! # Code on the page
//!
//! A page shows a file of the programs, or some items of one, by a marker line (an
//! HTML comment, which neither the code host nor mdBook shows) directly followed
//! by a fenced code block that holds a copy of the code:
//!
//! ````markdown
//! <!-- code: ../examples-mmap/src/scenes/one_child.rs -->
//! ```rust
//! (the whole file, exactly)
//! ```
//! ````
//!
//! The path is relative to the page, as a link's is. After it may come one item,
//! or a range of items, named as declared at the top level of the file:
//!
//! * `<!-- code: ../examples-mmap/src/file.rs fn create -->` shows `fn create`,
//!   from the doc comment and attributes above it to its closing brace;
//! * `<!-- code: ../examples-mmap/src/file.rs fn create .. fn open -->` shows
//!   everything from the start of `create` to the end of `open`;
//! * an item is named by its keyword and name as the line declaring it starts,
//!   without `pub`: `struct Place`, `impl Place`, `const OWNER_ONLY`.
//!
//! Prefer whole files: a scene file is one screen, and a page that shows it whole
//! cannot hide a line of it.
//!
//! The copy is plain Markdown, so it reads the same on the code host and in mdBook
//! (mdBook's `{{#include}}` shows as raw text on a code host). `cargo xtask
//! book-code` rewrites every marked block from its file, and writes the block under
//! a new marker; the drift test `shown_code_matches_its_file` fails, listing every
//! page and file, when a block differs from its file or a marker points at nothing.
//! The reading and comparing are in [`shown`].

pub mod exercise;
pub mod shown;

use std::ops::Range;
use std::path::{Path, PathBuf};

use pulldown_cmark::{CodeBlockKind, Event, LinkType, Options, Parser, Tag, TagEnd};

/// A piece of text and the (1-based) line of the file it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub line: usize,
    pub text: String,
}

/// A link whose whole label is one code span, like ``[`task`](../src/main.rs#L12)``:
/// the book's way of pointing at one item of the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLink {
    pub line: usize,
    /// The label without its backticks: `task`.
    pub code: String,
    pub target: String,
}

/// A `<!-- code: ... -->` marker and the fenced block right under it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMarker {
    pub line: usize,
    /// What follows `code:`, trimmed: a path, and maybe an item or a range of items.
    pub spec: String,
    /// The marker's lines in the page, from the start of its first line to the end
    /// of its last (newline included).
    pub marker: Range<usize>,
    /// Blanks before the marker: a block written under it is indented the same.
    pub indent: String,
    /// The fenced block that starts on the next line; None when there is none.
    pub block: Option<CodeBlock>,
}

/// A code block: its text as the reader sees it, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBlock {
    /// The info string of a fenced block, e.g. `rust`; None for an indented block.
    pub info: Option<String>,
    /// The lines inside, as the reader sees them.
    pub content: String,
    /// Its lines in the page, from the start of the first to the end of the last
    /// (newline included).
    pub lines: Range<usize>,
}

/// What a Markdown file holds, sorted into what the checks read.
#[derive(Debug, Default)]
pub struct Page {
    /// Headings as rendered: no backticks, emphasis marks, link targets or HTML.
    pub headings: Vec<Located>,
    /// Code: every line of a code block, and every code span.
    pub code: Vec<Located>,
    /// Every link target: inline links and images, reference definitions, and the
    /// `href`/`src` attributes of HTML. Targets as written.
    pub links: Vec<Located>,
    /// Every link whose label is a single code span.
    pub code_links: Vec<CodeLink>,
    /// The `id` and `name` attributes of the page's HTML.
    pub html_ids: Vec<String>,
    /// The `<!-- code: ... -->` markers, in order.
    pub code_markers: Vec<CodeMarker>,
}

/// The Markdown a code host reads: CommonMark with tables, footnotes,
/// strikethrough and task lists.
fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
}

/// A link being read: its line and target, and its label's code spans.
struct OpenLink {
    line: usize,
    target: String,
    codes: Vec<String>,
    other: bool,
}

pub fn read_page(markdown: &str) -> Page {
    let lines = LineIndex::new(markdown);
    let mut page = Page::default();
    let mut heading: Option<Located> = None;
    let mut open_links: Vec<OpenLink> = Vec::new();
    let mut code_block: Option<CodeBlock> = None;
    let mut events = Parser::new_ext(markdown, options()).into_offset_iter();
    let mut definitions: Vec<(usize, String)> = events
        .reference_definitions()
        .iter()
        .map(|(_, def)| (def.span.start, def.dest.to_string()))
        .collect();
    definitions.sort();
    for (event, range) in events.by_ref() {
        let line = lines.line_of(range.start);
        match event {
            Event::Start(Tag::Heading { .. }) => {
                heading = Some(Located { line, text: String::new() })
            }
            Event::End(TagEnd::Heading(_)) => page.headings.extend(heading.take()),
            Event::Start(Tag::Link { link_type, dest_url, .. })
            | Event::Start(Tag::Image { link_type, dest_url, .. }) => {
                // A reference link's target is checked once, at its definition.
                let by_reference = matches!(
                    link_type,
                    LinkType::Reference | LinkType::Collapsed | LinkType::Shortcut
                );
                if !by_reference {
                    page.links.push(Located { line, text: dest_url.to_string() });
                }
                let target = dest_url.to_string();
                open_links.push(OpenLink { line, target, codes: Vec::new(), other: false });
            }
            Event::End(TagEnd::Link | TagEnd::Image) => {
                if let Some(link) = open_links.pop()
                    && let [code] = &link.codes[..]
                    && !link.other
                {
                    let (line, code, target) = (link.line, code.clone(), link.target);
                    page.code_links.push(CodeLink { line, code, target });
                }
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => Some(info.to_string()),
                    CodeBlockKind::Indented => None,
                };
                let lines = lines.start_of_line(range.start)..lines.end_of_line(range.end);
                code_block = Some(CodeBlock { info, content: String::new(), lines });
            }
            Event::End(TagEnd::CodeBlock) => {
                let Some(block) = code_block.take() else { continue };
                if let Some(marker) = page.code_markers.last_mut()
                    && marker.block.is_none()
                    && marker.marker.end == block.lines.start
                {
                    marker.block = Some(block);
                }
            }
            Event::Text(text) if code_block.is_some() => {
                for (index, text) in text.lines().enumerate() {
                    page.code.push(Located { line: line + index, text: text.to_string() });
                }
                code_block.as_mut().expect("in a code block").content.push_str(&text);
            }
            Event::Text(text) => {
                if let Some(heading) = &mut heading {
                    heading.text.push_str(&text);
                }
                open_links.iter_mut().for_each(|link| link.other = true);
            }
            Event::Code(code) => {
                page.code.push(Located { line, text: code.trim().to_string() });
                if let Some(heading) = &mut heading {
                    heading.text.push_str(&code);
                }
                open_links.iter_mut().for_each(|link| link.codes.push(code.to_string()));
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                read_html(&html, line, &mut page);
                if let Some(spec) = html.trim_start().strip_prefix("<!-- code:") {
                    let spec = spec.trim_end().trim_end_matches("-->").trim().to_string();
                    let marker = lines.start_of_line(range.start)..lines.end_of_line(range.end);
                    let indent = markdown[marker.clone()]
                        .chars()
                        .take_while(|c| *c == ' ' || *c == '\t')
                        .collect();
                    page.code_markers.push(CodeMarker { line, spec, marker, indent, block: None });
                }
            }
            // Emphasis, a line break, ...: a label with more than one code span.
            _ => open_links.iter_mut().for_each(|link| link.other = true),
        }
    }
    for (start, target) in definitions {
        page.links.push(Located { line: lines.line_of(start), text: target });
    }
    page.links.sort_by_key(|link| link.line);
    page
}

/// The `href`, `src`, `id` and `name` attributes of a piece of HTML starting on `line`.
fn read_html(html: &str, line: usize, page: &mut Page) {
    for attribute in ["href", "src"] {
        for (offset, value) in attribute_values(html, attribute) {
            let line = line + html[..offset].matches('\n').count();
            page.links.push(Located { line, text: value });
        }
    }
    for attribute in ["id", "name"] {
        page.html_ids.extend(attribute_values(html, attribute).into_iter().map(|(_, v)| v));
    }
}

/// The values of `attribute="..."` in HTML, with their byte offsets.
fn attribute_values(text: &str, attribute: &str) -> Vec<(usize, String)> {
    let pattern = format!(" {attribute}=\"");
    let mut values = Vec::new();
    let mut at = 0;
    while let Some(found) = text[at..].find(&pattern) {
        let start = at + found + pattern.len();
        let Some(end) = text[start..].find('"') else { break };
        values.push((start, text[start..start + end].to_string()));
        at = start + end;
    }
    values
}

/// Byte offsets to line numbers and back.
struct LineIndex {
    /// Where each line starts.
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(at, _)| at + 1));
        LineIndex { starts: starts.collect(), len: text.len() }
    }

    /// The 1-based line that holds byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }

    /// Where the line holding byte `offset` starts.
    fn start_of_line(&self, offset: usize) -> usize {
        self.starts[self.line_of(offset) - 1]
    }

    /// Where the line after the one holding byte `end - 1` starts: the end of a
    /// range's last line, its newline included.
    fn end_of_line(&self, end: usize) -> usize {
        self.starts.get(self.line_of(end.saturating_sub(1))).copied().unwrap_or(self.len)
    }
}

/// The book's pages and the repository's README: README.md and every Markdown file
/// under docs/, in a stable order.
pub fn markdown_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, found)?;
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
        Ok(())
    }
    let mut files = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut files)?;
    Ok(files)
}

/// The anchor a code host gives a heading: the rendered text in lower case, letters,
/// digits, `-` and `_` kept, spaces turned into `-`, everything else dropped.
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor a page offers: its headings' slugs (a repeated heading gets `-1`,
/// `-2`, ... as on a code host) and the `id`/`name` attributes of its HTML.
pub fn anchors(page: &Page) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for heading in &page.headings {
        let base = slug(&heading.text);
        let mut candidate = base.clone();
        let mut count = 0;
        while found.contains(&candidate) {
            count += 1;
            candidate = format!("{base}-{count}");
        }
        found.push(candidate);
    }
    found.extend(page.html_ids.iter().cloned());
    found
}

/// Whether a link leaves the repository (`https:`, `mailto:`, ...).
pub fn is_external(target: &str) -> bool {
    match target.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

/// The `cargo run ...` commands quoted in a piece of code, each cut where the shell
/// would end it (`#` comment, `&&`, `|`, `;`, a redirection).
pub fn cargo_run_commands(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = code[at..].find("cargo run") {
        let start = at + offset;
        let before = code[..start].chars().next_back();
        let after = code[start + "cargo run".len()..].chars().next();
        let starts_a_word = before.is_none_or(|c| c.is_whitespace() || "$(`".contains(c));
        let ends_a_word = after.is_none_or(char::is_whitespace);
        if starts_a_word && ends_a_word {
            let command = &code[start..];
            let end = [" #", "&&", "||", "|", ";", ">", "<", "`", ")"]
                .iter()
                .filter_map(|stop| command.find(stop))
                .min()
                .unwrap_or(command.len());
            found.push(command[..end].trim().to_string());
        }
        at = start + "cargo run".len();
    }
    found
}

/// A quoted `cargo run -p PACKAGE [--example NAME] [-- ARGS]` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CargoRun {
    pub package: String,
    pub example: Option<String>,
    pub args: Vec<String>,
}

/// Reads a `cargo run` command. None when it names no package (a bare `cargo run`
/// in a sentence is not a command to check).
pub fn parse_cargo_run(command: &str) -> Option<CargoRun> {
    let words: Vec<String> =
        command.split_whitespace().map(|word| word.trim_matches(['"', '\'']).to_string()).collect();
    let mut package = None;
    let mut example = None;
    let mut words_left = words.iter().skip(2);
    let mut args = Vec::new();
    while let Some(word) = words_left.next() {
        match word.as_str() {
            "--" => {
                args = words_left.cloned().collect();
                break;
            }
            "-p" | "--package" => package = words_left.next().cloned(),
            "--example" => example = words_left.next().cloned(),
            "--bin" | "--features" | "-F" | "--profile" | "--target" | "--target-dir"
            | "--manifest-path" | "-j" | "--jobs" | "--color" => {
                words_left.next();
            }
            other => {
                if let Some(name) = other.strip_prefix("--package=") {
                    package = Some(name.to_string());
                } else if let Some(name) = other.strip_prefix("--example=") {
                    example = Some(name.to_string());
                } else if let Some(name) = other.strip_prefix("-p").filter(|n| !n.is_empty()) {
                    package = Some(name.to_string());
                }
            }
        }
    }
    Some(CargoRun { package: package?, example, args })
}

/// What a program's `--help` says about its command line.
#[derive(Debug, Default, Clone)]
pub struct Help {
    /// Sub-commands, in the order listed (hidden ones are not listed).
    pub commands: Vec<String>,
    /// Options (`--n`, `-h`, ...), and whether each takes a value.
    pub options: Vec<(String, bool)>,
}

impl Help {
    pub fn takes_value(&self, option: &str) -> bool {
        self.options.iter().any(|(name, value)| name == option && *value)
    }

    pub fn has_option(&self, option: &str) -> bool {
        self.options.iter().any(|(name, _)| name == option)
    }
}

/// Reads clap's `--help` output: the `Commands:` and `Options:` sections.
pub fn parse_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut section = "";
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if !line.starts_with(' ') {
            section = line.trim_end();
            continue;
        }
        let trimmed = line.trim_start();
        match section {
            "Commands:" if line.len() - trimmed.len() == 2 => {
                if let Some(name) = trimmed.split_whitespace().next() {
                    help.commands.push(name.to_string());
                }
            }
            "Options:" if trimmed.starts_with('-') => {
                let words: Vec<&str> = trimmed.split_whitespace().collect();
                for (index, word) in words.iter().enumerate() {
                    let name = word.trim_end_matches(',');
                    if !name.starts_with('-') {
                        break;
                    }
                    let value = words
                        .get(index + 1)
                        .is_some_and(|next| next.starts_with('<') || next.starts_with('['));
                    help.options.push((name.to_string(), value));
                }
            }
            _ => {}
        }
    }
    help
}

/// The sub-command a program's arguments choose: the first word that is neither an
/// option nor an option's value.
pub fn chosen_command(args: &[String], help: &Help) -> Option<String> {
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word.starts_with('-') {
            if !word.contains('=') && help.takes_value(word) {
                words.next();
            }
        } else {
            return Some(word.clone());
        }
    }
    None
}

/// Whether a heading (as rendered) names a scene: one of its words (`-` joins words)
/// is the scene's name, so `many-children-locked` does not name `many-children`.
pub fn heading_names(heading: &str, scene: &str) -> bool {
    heading.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')).any(|w| w == scene)
}

/// A size flag and the values a quick run may use.
#[derive(Debug, Clone, Copy)]
pub struct SmallSize {
    pub flag: &'static str,
    /// Added when the command gives no value.
    pub small: u64,
    /// A given value above this is replaced by `small`.
    pub largest: u64,
}

/// The arguments with sizes made small: each size flag the program accepts is added
/// when missing and lowered when too large. A request for help is left alone.
pub fn at_small_size(args: &[String], sizes: &[SmallSize], help: &Help) -> Vec<String> {
    let asks_for_help =
        args.iter().any(|a| ["--help", "-h", "help", "--version", "-V"].contains(&a.as_str()));
    if asks_for_help {
        return args.to_vec();
    }
    let mut out = args.to_vec();
    for size in sizes.iter().filter(|size| help.has_option(size.flag)) {
        let given = out.iter().position(|a| a == size.flag);
        match given {
            Some(at) if at + 1 < out.len() => {
                if out[at + 1].parse::<u64>().is_ok_and(|v| v > size.largest) {
                    out[at + 1] = size.small.to_string();
                }
            }
            Some(_) => {}
            None => {
                let inline = format!("{}=", size.flag);
                if let Some(at) = out.iter().position(|a| a.starts_with(&inline)) {
                    let value = out[at][inline.len()..].parse::<u64>();
                    if value.is_ok_and(|v| v > size.largest) {
                        out[at] = format!("{inline}{}", size.small);
                    }
                } else {
                    out.push(size.flag.to_string());
                    out.push(size.small.to_string());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The anchor of a page's only heading.
    fn anchor_of(heading: &str) -> String {
        anchors(&read_page(&format!("## {heading}\n"))).remove(0)
    }

    #[test]
    fn slugs_follow_the_code_host() {
        assert_eq!(anchor_of("What it shows"), "what-it-shows");
        assert_eq!(
            anchor_of("`named`: memory with a name in /dev/shm"),
            "named-memory-with-a-name-in-devshm"
        );
        assert_eq!(anchor_of("The typed proxy: A -> B"), "the-typed-proxy-a---b");
        assert_eq!(anchor_of("[Link](x.md) and **bold**"), "link-and-bold");
        assert_eq!(anchor_of("Honest `unsafe`"), "honest-unsafe");
        assert_eq!(anchor_of("Closing hashes ##"), "closing-hashes");
    }

    #[test]
    fn repeated_headings_get_numbered_anchors() {
        let page = read_page("# A\n\n## Why\n\n## Why\n<a id=\"custom\"></a>\n");
        assert_eq!(anchors(&page), ["a", "why", "why-1", "custom"]);
    }

    #[test]
    fn code_is_not_prose() {
        let page = read_page(
            "See [a](a.md) and `[b](b.md)`.\n\n```sh\n# not a heading [c](c.md)\ncargo run -p x\n```\n",
        );
        let targets: Vec<_> = page.links.into_iter().map(|l| l.text).collect();
        assert_eq!(targets, ["a.md"]);
        assert!(page.headings.is_empty());
        let code: Vec<_> = page.code.iter().map(|c| (c.line, c.text.as_str())).collect();
        assert_eq!(
            code,
            [(1, "[b](b.md)"), (4, "# not a heading [c](c.md)"), (5, "cargo run -p x")]
        );
    }

    #[test]
    fn links_know_their_lines() {
        let page = read_page(
            "one\ntwo [x](../x.rs#L3) three\n\n[ref]: <y.md#top>\n\n<p>\n<img src=\"z.svg\">\n</p>\n",
        );
        let found: Vec<_> = page.links.into_iter().map(|l| (l.line, l.text)).collect();
        assert_eq!(
            found,
            [(2, "../x.rs#L3".to_string()), (4, "y.md#top".to_string()), (7, "z.svg".to_string())]
        );
    }

    #[test]
    fn code_links_are_links_labelled_by_one_code_span() {
        let page = read_page(
            "See [`task`](m.rs#L3), [a `b`](x.md),\n[`c` and `d`](y.md) and [`e::f()`](z.rs).\n",
        );
        let found: Vec<_> =
            page.code_links.into_iter().map(|l| (l.line, l.code, l.target)).collect();
        assert_eq!(
            found,
            [
                (1, "task".to_string(), "m.rs#L3".to_string()),
                (2, "e::f()".to_string(), "z.rs".to_string())
            ]
        );
    }

    #[test]
    fn a_marker_finds_the_block_under_it() {
        let page = read_page(
            "Text.\n\n<!-- code: ../a.rs fn main -->\n```rust\nfn main() {}\n```\n\n<!-- code: b.rs -->\n\nnot a block\n\n- item\n\n  <!-- code: c.rs -->\n  ```\n  c\n  ```\n",
        );
        let [first, second, third] = &page.code_markers[..] else { panic!("three markers") };
        assert_eq!((first.line, first.spec.as_str()), (3, "../a.rs fn main"));
        let block = first.block.as_ref().expect("a block under the first marker");
        assert_eq!(block.info.as_deref(), Some("rust"));
        assert_eq!(block.content, "fn main() {}\n");
        assert_eq!(block.lines.start, first.marker.end);
        assert_eq!(second.spec, "b.rs");
        assert!(second.block.is_none(), "a blank line stands between");
        assert_eq!(third.indent, "  ");
        assert_eq!(third.block.as_ref().map(|b| b.content.as_str()), Some("c\n"));
    }

    #[test]
    fn commands_stop_where_the_shell_would() {
        assert_eq!(
            cargo_run_commands("cargo run -p a -- x --n 5   # comment"),
            ["cargo run -p a -- x --n 5"]
        );
        assert_eq!(
            cargo_run_commands("$ cargo run -q -p a && ls | cargo run -p b"),
            ["cargo run -q -p a", "cargo run -p b"]
        );
        assert!(cargo_run_commands("the cargo runner").is_empty());
    }

    #[test]
    fn cargo_run_names_package_example_and_args() {
        let run = parse_cargo_run("cargo run --release -p examples-x -- bench --n 5").unwrap();
        assert_eq!(run.package, "examples-x");
        assert_eq!(run.args, ["bench", "--n", "5"]);
        let run = parse_cargo_run("cargo run -p exercises --example a_b").unwrap();
        assert_eq!(run.example.as_deref(), Some("a_b"));
        assert!(parse_cargo_run("cargo run").is_none());
    }

    const HELP: &str = "\
About.

Usage: examples-x [OPTIONS] [COMMAND]

Commands:
  one-child      A child [--n 1000]
  many-children  Children
                 wrapped text
  help           Print this message

Options:
      --n <N>
          Number of values
      --keep         Keep it
  -h, --help         Print help
";

    #[test]
    fn help_lists_commands_and_options() {
        let help = parse_help(HELP);
        assert_eq!(help.commands, ["one-child", "many-children", "help"]);
        assert!(help.takes_value("--n"));
        assert!(help.has_option("--keep") && !help.takes_value("--keep"));
        assert!(help.has_option("-h"));
        let args: Vec<String> = ["--n", "5", "many-children"].map(String::from).into();
        assert_eq!(chosen_command(&args, &help).as_deref(), Some("many-children"));
    }

    #[test]
    fn scene_names_are_whole_words() {
        let rendered = |md: &str| read_page(&format!("# {md}\n")).headings.remove(0).text;
        assert!(heading_names(&rendered("`many-children`: lost updates"), "many-children"));
        assert!(!heading_names(&rendered("many-children-locked"), "many-children"));
        assert!(heading_names(&rendered("attribute and slice"), "slice"));
    }

    #[test]
    fn sizes_are_added_or_lowered() {
        let help = parse_help(HELP);
        let sizes = [SmallSize { flag: "--n", small: 64, largest: 1000 }];
        let args =
            |words: &[&str]| -> Vec<String> { words.iter().map(|w| w.to_string()).collect() };
        assert_eq!(
            at_small_size(&args(&["one-child"]), &sizes, &help),
            args(&["one-child", "--n", "64"])
        );
        assert_eq!(at_small_size(&args(&["--n", "500"]), &sizes, &help), args(&["--n", "500"]));
        assert_eq!(at_small_size(&args(&["--n=99999"]), &sizes, &help), args(&["--n=64"]));
        assert_eq!(at_small_size(&args(&["--help"]), &sizes, &help), args(&["--help"]));
    }
}

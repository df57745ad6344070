//! Reads the book's Markdown the way a code host renders it, far enough to find what
//! can drift away from the code: links and their `#anchors`, headings, and the
//! `cargo run` commands the pages quote. The checks themselves are in
//! `tests/drift.rs`; this file only reads text and has no opinion about it.
//!
//! It is not a full Markdown parser. It knows what this book uses: fenced code
//! blocks, code spans, ATX headings (`## Title`), inline links and images, reference
//! definitions, and `href`/`src`/`id` attributes of inline HTML.

/// A piece of text and the (1-based) line of the file it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub line: usize,
    pub text: String,
}

/// What a Markdown file holds, sorted into what the checks read.
#[derive(Debug, Default)]
pub struct Page {
    /// Paragraphs and headings, with every code span blanked out (so a link or a
    /// `#` quoted as code is not taken for the real thing). Line breaks are kept.
    pub prose: Vec<Located>,
    /// Code: every line of a fenced block, and every code span.
    pub code: Vec<Located>,
    /// ATX headings, their text as written after the `#`s.
    pub headings: Vec<Located>,
    /// Paragraphs and headings as written, code spans and all.
    pub written: Vec<Located>,
}

pub fn read_page(markdown: &str) -> Page {
    let mut page = Page::default();
    let mut fence: Option<(char, usize)> = None;
    let mut paragraph: Vec<(usize, &str)> = Vec::new();
    for (index, line) in markdown.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start();
        if let Some((mark, length)) = fence {
            if closes_fence(trimmed, mark, length) {
                fence = None;
            } else {
                page.code.push(Located { line: number, text: line.to_string() });
            }
            continue;
        }
        if let Some(opened) = opens_fence(trimmed) {
            flush_paragraph(&mut page, &mut paragraph);
            fence = Some(opened);
        } else if trimmed.is_empty() {
            flush_paragraph(&mut page, &mut paragraph);
        } else if let Some(heading) = atx_heading(trimmed) {
            flush_paragraph(&mut page, &mut paragraph);
            page.headings.push(Located { line: number, text: heading.to_string() });
            // A heading can hold links and code spans too.
            flush_paragraph(&mut page, &mut vec![(number, heading)]);
        } else {
            paragraph.push((number, line));
        }
    }
    flush_paragraph(&mut page, &mut paragraph);
    page
}

/// "```sh" or "~~~": the fence character and how many of it open the block.
fn opens_fence(line: &str) -> Option<(char, usize)> {
    let mark = line.chars().next().filter(|&c| c == '`' || c == '~')?;
    let length = line.chars().take_while(|&c| c == mark).count();
    let info = &line[length..];
    (length >= 3 && !(mark == '`' && info.contains('`'))).then_some((mark, length))
}

fn closes_fence(line: &str, mark: char, length: usize) -> bool {
    let run = line.chars().take_while(|&c| c == mark).count();
    run >= length && line[run..].trim().is_empty()
}

/// The text of an ATX heading (`## Why` -> `Why`), closing `#`s removed.
fn atx_heading(line: &str) -> Option<&str> {
    let level = line.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let text = rest.trim();
    let without_closing = text.trim_end_matches('#');
    if without_closing.is_empty() || without_closing.ends_with(' ') {
        Some(without_closing.trim_end())
    } else {
        Some(text)
    }
}

fn flush_paragraph(page: &mut Page, paragraph: &mut Vec<(usize, &str)>) {
    let Some(&(first_line, _)) = paragraph.first() else {
        return;
    };
    let text: Vec<&str> = paragraph.iter().map(|&(_, line)| line).collect();
    let text = text.join("\n");
    let (prose, spans) = split_code_spans(&text);
    for (offset, span) in spans {
        page.code
            .push(Located { line: first_line + text[..offset].matches('\n').count(), text: span });
    }
    page.prose.push(Located { line: first_line, text: prose });
    page.written.push(Located { line: first_line, text });
    paragraph.clear();
}

/// Splits text into prose, with each code span replaced by spaces (line breaks kept,
/// so line numbers still add up), and the spans' contents with their byte offsets.
pub fn split_code_spans(text: &str) -> (String, Vec<(usize, String)>) {
    let mut prose = String::with_capacity(text.len());
    let mut spans = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        if !rest.starts_with('`') {
            let c = rest.chars().next().expect("not at the end");
            prose.push(c);
            at += c.len_utf8();
            continue;
        }
        let run = rest.chars().take_while(|&c| c == '`').count();
        match closing_run(&rest[run..], run) {
            Some(end) => {
                let content = &rest[run..run + end];
                let content = content.replace('\n', " ");
                spans.push((at, content.trim().to_string()));
                let whole = &rest[..run + end + run];
                prose.extend(whole.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
                at += whole.len();
            }
            None => {
                // No closing run: the backticks are literal text.
                prose.push_str(&rest[..run]);
                at += run;
            }
        }
    }
    (prose, spans)
}

/// Where the next run of exactly `run` backticks starts in `text`.
fn closing_run(text: &str, run: usize) -> Option<usize> {
    let mut at = 0;
    while let Some(found) = text[at..].find('`') {
        let start = at + found;
        let length = text[start..].chars().take_while(|&c| c == '`').count();
        if length == run {
            return Some(start);
        }
        at = start + length;
    }
    None
}

/// The text a heading shows once rendered: no backticks, emphasis marks, link
/// targets or HTML tags.
pub fn rendered_text(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    while !rest.is_empty() {
        // `[shown](target)` shows as `shown`.
        if let Some(stripped) = rest.strip_prefix('[')
            && let Some(close) = stripped.find("](")
            && let Some(end) = stripped[close..].find(')')
        {
            text.push_str(&stripped[..close]);
            rest = &stripped[close + end + 1..];
            continue;
        }
        // `<tag ...>` and `</tag>` are not shown.
        if let Some(stripped) = rest.strip_prefix('<')
            && stripped.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
            && let Some(end) = stripped.find('>')
        {
            rest = &stripped[end + 1..];
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        if c != '`' && c != '*' {
            text.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    text
}

/// The anchor a code host gives a heading: the rendered text in lower case, letters,
/// digits, `-` and `_` kept, spaces turned into `-`, everything else dropped.
pub fn slug(heading: &str) -> String {
    rendered_text(heading)
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
/// `-2`, ... as on a code host) and the `id`/`name` attributes of its inline HTML.
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
    for block in &page.prose {
        found.extend(attribute_values(&block.text, "id"));
        found.extend(attribute_values(&block.text, "name"));
    }
    found
}

/// The values of `attribute="..."` in inline HTML.
fn attribute_values(text: &str, attribute: &str) -> Vec<String> {
    let pattern = format!(" {attribute}=\"");
    let mut values = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&pattern) {
        let after = &rest[at + pattern.len()..];
        let Some(end) = after.find('"') else { break };
        values.push(after[..end].to_string());
        rest = &after[end..];
    }
    values
}

/// Every link target in the page's prose: inline links and images, reference
/// definitions, and `href`/`src` attributes. Targets are as written.
pub fn links(page: &Page) -> Vec<Located> {
    let mut found = Vec::new();
    for block in &page.prose {
        let line_of = |offset: usize| block.line + block.text[..offset].matches('\n').count();
        let text = &block.text;
        let mut at = 0;
        while let Some(found_at) = text[at..].find("](") {
            let start = at + found_at + 2;
            if let Some(target) = link_target(&text[start..]) {
                found.push(Located { line: line_of(start), text: target });
            }
            at = start;
        }
        let mut offset = 0;
        for line in text.split('\n') {
            let trimmed = line.trim_start();
            if trimmed.starts_with('[')
                && !trimmed.starts_with("[^")
                && let Some(close) = trimmed.find("]:")
                && let Some(target) = trimmed[close + 2..].split_whitespace().next()
            {
                found.push(Located {
                    line: line_of(offset),
                    text: target.trim_matches(['<', '>']).to_string(),
                });
            }
            offset += line.len() + 1;
        }
        for attribute in ["href", "src"] {
            for value in attribute_values(text, attribute) {
                found.push(Located { line: block.line, text: value });
            }
        }
    }
    found
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

/// Every inline link of the page whose label is a single code span.
pub fn code_links(page: &Page) -> Vec<CodeLink> {
    let mut found = Vec::new();
    for block in &page.written {
        let text = &block.text;
        let mut at = 0;
        while let Some(open) = text[at..].find("[`") {
            let label_start = at + open + 2;
            at = label_start;
            let Some(close) = text[label_start..].find("`](") else {
                break;
            };
            let code = &text[label_start..label_start + close];
            if code.is_empty() || code.contains(['`', '\n', '[', ']']) {
                continue;
            }
            if let Some(target) = link_target(&text[label_start + close + 3..]) {
                found.push(CodeLink {
                    line: block.line + text[..label_start].matches('\n').count(),
                    code: code.to_string(),
                    target,
                });
            }
        }
    }
    found
}

/// The target of an inline link, from just after its `(`.
fn link_target(text: &str) -> Option<String> {
    let text = text.trim_start();
    if let Some(angled) = text.strip_prefix('<') {
        return angled.find('>').map(|end| angled[..end].to_string());
    }
    let mut depth = 0;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(text[..at].to_string()),
            ')' => depth -= 1,
            c if c.is_whitespace() => return Some(text[..at].to_string()),
            _ => {}
        }
    }
    None
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

/// Whether a heading names a scene: one of its words (`-` joins words) is the
/// scene's name, so `many-children-locked` does not name `many-children`.
pub fn heading_names(heading: &str, scene: &str) -> bool {
    rendered_text(heading)
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
        .any(|word| word == scene)
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

    #[test]
    fn slugs_follow_the_code_host() {
        assert_eq!(slug("What it shows"), "what-it-shows");
        assert_eq!(
            slug("`named`: memory with a name in /dev/shm"),
            "named-memory-with-a-name-in-devshm"
        );
        assert_eq!(slug("The typed proxy: A -> B"), "the-typed-proxy-a---b");
        assert_eq!(slug("[Link](x.md) and **bold**"), "link-and-bold");
        assert_eq!(slug("Honest `unsafe`"), "honest-unsafe");
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
        let targets: Vec<_> = links(&page).into_iter().map(|l| l.text).collect();
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
        let page = read_page("one\ntwo [x](../x.rs#L3) three\n\n[ref]: <y.md#top>\n");
        let found: Vec<_> = links(&page).into_iter().map(|l| (l.line, l.text)).collect();
        assert_eq!(found, [(2, "../x.rs#L3".to_string()), (4, "y.md#top".to_string())]);
    }

    #[test]
    fn code_links_are_links_labelled_by_one_code_span() {
        let page = read_page(
            "See [`task`](m.rs#L3), [a `b`](x.md),\n[`c` and `d`](y.md) and [`e::f()`](z.rs).\n",
        );
        let found: Vec<_> =
            code_links(&page).into_iter().map(|l| (l.line, l.code, l.target)).collect();
        assert_eq!(
            found,
            [
                (1, "task".to_string(), "m.rs#L3".to_string()),
                (2, "e::f()".to_string(), "z.rs".to_string())
            ]
        );
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
        assert!(heading_names("`many-children`: lost updates", "many-children"));
        assert!(!heading_names("many-children-locked", "many-children"));
        assert!(heading_names("attribute and slice", "slice"));
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

//! `cargo xtask check-book`: every link of the book as mdBook built it (`mdbook build
//! docs`, into the build-dir that docs/book.toml names) must land. Each `href` and
//! `src` of every .html page: a relative target must exist inside the built book,
//! and a `#fragment` must be an `id` (or an `<a name>`) of the page it points at.
//! Links with a scheme (`https:`, `mailto:`, ...) are not followed.
//!
//! Every broken link is reported, with its page, line and what is wrong, then a
//! count by kind. With `--report-only` it still reports them all but exits 0.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// What `cargo xtask check-book` takes.
#[derive(clap::Args)]
pub struct CheckBookArgs {
    /// The built book [default: the build-dir of docs/book.toml]
    #[arg(long, value_name = "DIR")]
    book: Option<PathBuf>,
    /// Report every broken link but exit 0 (for while the chapters are reworked)
    #[arg(long)]
    report_only: bool,
}

pub fn run(args: CheckBookArgs) -> Result<bool> {
    let root = workspace_root()?;
    let book = match args.book {
        Some(book) => book,
        None => build_dir(&root.join("docs"))?,
    };
    if !book.join("index.html").is_file() {
        bail!("{} holds no built book: run `mdbook build docs` first", book.display());
    }
    let broken = check(&book)?;
    let pages = html_files(&book)?.len();
    for link in &broken {
        println!(
            "{}:{}: {}=\"{}\": {}",
            link.page,
            link.line,
            link.attribute,
            link.target,
            link.kind.says(&link.detail)
        );
    }
    if broken.is_empty() {
        println!("check-book: every link of the {pages} pages in {} lands", book.display());
        return Ok(true);
    }
    let mut kinds: BTreeMap<Kind, usize> = BTreeMap::new();
    for link in &broken {
        *kinds.entry(link.kind).or_default() += 1;
    }
    let kinds: Vec<String> =
        kinds.iter().map(|(kind, count)| format!("{count} {}", kind.name())).collect();
    println!(
        "check-book: {} broken links in {pages} pages of {}: {}",
        broken.len(),
        book.display(),
        kinds.join(", ")
    );
    if args.report_only {
        println!("check-book: report only (--report-only): not failing");
        return Ok(true);
    }
    Ok(false)
}

/// The build-dir that `docs/book.toml` names, relative to docs/ (mdBook's default:
/// `book`).
fn build_dir(docs: &Path) -> Result<PathBuf> {
    let path = docs.join("book.toml");
    let config = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut section = "";
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[build]"
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "build-dir"
        {
            let dir = value.split('#').next().unwrap_or_default().trim().trim_matches('"');
            return Ok(normalize(&docs.join(dir)));
        }
    }
    Ok(docs.join("book"))
}

/// Why a link does not land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The target is outside the built book (a source file of the repository).
    OutsideBook,
    /// Inside the book, but no such file.
    NoSuchFile,
    /// The page exists, but has no element with that id.
    NoSuchAnchor,
    /// A `#fragment` on a target that is not a page.
    AnchorOnNonPage,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::OutsideBook => "outside the book",
            Kind::NoSuchFile => "to a missing file",
            Kind::NoSuchAnchor => "to a missing anchor",
            Kind::AnchorOnNonPage => "with an anchor on a file that is no page",
        }
    }

    fn says(self, detail: &str) -> String {
        match self {
            Kind::OutsideBook => format!("{detail} is outside the book"),
            Kind::NoSuchFile => format!("{detail} does not exist in the book"),
            Kind::NoSuchAnchor => detail.to_string(),
            Kind::AnchorOnNonPage => format!("{detail} is not an HTML page, so it has no anchors"),
        }
    }
}

/// A link that does not land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The page, relative to the book.
    pub page: String,
    pub line: usize,
    pub attribute: String,
    /// The target as written (entities decoded).
    pub target: String,
    pub kind: Kind,
    pub detail: String,
}

/// Every broken link of the book in `book`, page by page in path order.
pub fn check(book: &Path) -> Result<Vec<Broken>> {
    let files = html_files(book)?;
    let mut pages: HashMap<PathBuf, Page> = HashMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        pages.insert(file.clone(), read_html(&text));
    }
    let mut broken = Vec::new();
    for file in &files {
        let page = &pages[file];
        let shown = file.strip_prefix(book).unwrap_or(file).display().to_string();
        // A <base href="/"> (mdBook's 404 page) makes links relative to the site's root,
        // which is the book's when it is served on its own.
        let base = match &page.base {
            Some(base) if base.starts_with('/') => book.join(base.trim_start_matches('/')),
            _ => file.parent().expect("a page has a folder").to_path_buf(),
        };
        for link in &page.links {
            if let Some((kind, detail)) = follow(book, file, &base, &link.target, &pages) {
                broken.push(Broken {
                    page: shown.clone(),
                    line: link.line,
                    attribute: link.attribute.clone(),
                    target: link.target.clone(),
                    kind,
                    detail,
                });
            }
        }
    }
    Ok(broken)
}

/// Why `target`, on page `from`, does not land; None when it does.
fn follow(
    book: &Path,
    from: &Path,
    base: &Path,
    target: &str,
    pages: &HashMap<PathBuf, Page>,
) -> Option<(Kind, String)> {
    if has_scheme(target) || target.starts_with("//") {
        return None; // https:, mailto:, ...: not ours to follow
    }
    let (path, fragment) = match target.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (target, None),
    };
    let path = percent_decode(path.split('?').next().unwrap_or_default());
    let file = if path.is_empty() {
        from.to_path_buf()
    } else if let Some(from_root) = path.strip_prefix('/') {
        normalize(&book.join(from_root))
    } else {
        normalize(&base.join(&path))
    };
    let shown = |file: &Path| match file.strip_prefix(book) {
        Ok(inside) => inside.display().to_string(),
        Err(_) => file.display().to_string(),
    };
    if !file.starts_with(book) {
        return Some((Kind::OutsideBook, path));
    }
    let file = if file.is_dir() { file.join("index.html") } else { file };
    if !file.is_file() {
        return Some((Kind::NoSuchFile, shown(&file)));
    }
    let fragment = percent_decode(fragment.unwrap_or_default());
    if fragment.is_empty() {
        return None;
    }
    let Some(page) = pages.get(&file) else {
        return Some((Kind::AnchorOnNonPage, shown(&file)));
    };
    if page.ids.contains(&fragment) {
        return None;
    }
    Some((Kind::NoSuchAnchor, format!("{} has no element with id `{fragment}`", shown(&file))))
}

/// Whether a link starts with a scheme: `https:`, `mailto:`, `data:`, ...
fn has_scheme(target: &str) -> bool {
    match target.split_once(':') {
        Some((scheme, _)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

/// Every .html file under `dir`, in path order.
fn html_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            found.extend(html_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "html") {
            found.push(path);
        }
    }
    Ok(found)
}

/// `a/b/../c` -> `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A link of a page: which attribute, on which line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    line: usize,
    attribute: String,
    target: String,
}

/// What the checks need of a page: its links, its ids, its `<base href>`.
#[derive(Debug, Default)]
struct Page {
    links: Vec<Link>,
    ids: Vec<String>,
    base: Option<String>,
}

/// Reads the tags of an HTML page (not the text between them, nor comments,
/// scripts and styles) for `href`, `src`, `id`, `<a name>` and `<base href>`.
fn read_html(html: &str) -> Page {
    let mut page = Page::default();
    let mut at = 0;
    while let Some(found) = html[at..].find('<') {
        let start = at + found;
        let rest = &html[start..];
        if rest.starts_with("<!--") {
            at = rest.find("-->").map_or(html.len(), |end| start + end + 3);
            continue;
        }
        if !rest[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            // `</tag>`, `<!DOCTYPE>`, or a lone `<`: nothing to read.
            at = start + 1;
            continue;
        }
        let (name, attributes, end) = read_tag(html, start + 1);
        let line = html[..start].matches('\n').count() + 1;
        for (attribute, value) in &attributes {
            let value = decode_entities(value);
            match attribute.as_str() {
                "href" if name == "base" => page.base = Some(value),
                "href" | "src" => {
                    page.links.push(Link { line, attribute: attribute.clone(), target: value })
                }
                "id" => page.ids.push(value),
                "name" if name == "a" => page.ids.push(value),
                _ => {}
            }
        }
        at = end;
        if name == "script" || name == "style" {
            // Their text is code, whose `<` and quotes are not tags.
            let closing = format!("</{name}");
            at = html[at..].to_ascii_lowercase().find(&closing).map_or(html.len(), |e| at + e);
        }
    }
    page
}

/// Reads the tag whose name starts at `at`: its lower-case name, its attributes
/// (names lower-case, values raw), and where it ends (after its `>`).
fn read_tag(html: &str, at: usize) -> (String, Vec<(String, String)>, usize) {
    let bytes = html.as_bytes();
    let is_space = |b: u8| b.is_ascii_whitespace();
    let mut i = at;
    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' && bytes[i] != b'/' {
        i += 1;
    }
    let name = html[at..i].to_ascii_lowercase();
    let mut attributes = Vec::new();
    loop {
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return (name, attributes, i);
        }
        if bytes[i] == b'>' {
            return (name, attributes, i + 1);
        }
        let start = i;
        while i < bytes.len() && !is_space(bytes[i]) && !b"=>/".contains(&bytes[i]) {
            i += 1;
        }
        let attribute = html[start..i].to_ascii_lowercase();
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            attributes.push((attribute, String::new()));
            continue;
        }
        i += 1;
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&quote) if quote == b'"' || quote == b'\'' => {
                let end = html[i + 1..].find(quote as char).map_or(html.len(), |e| i + 1 + e);
                let value = &html[i + 1..end];
                i = (end + 1).min(html.len());
                value
            }
            _ => {
                let start = i;
                while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' {
                    i += 1;
                }
                &html[start..i]
            }
        };
        attributes.push((attribute, value.to_string()));
    }
}

/// `&amp;` -> `&`, `&#39;` -> `'`, ...: the entities an attribute value may hold.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `%20` -> ` `: a URL's path as the file system names it.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_give_links_ids_and_base() {
        let page = read_html(
            "<!DOCTYPE html>\n<base href=\"/\">\n<!-- <a href=\"commented.html\"> -->\n<h2 id=\"why\"><a class=header href='#why'>Why</a></h2>\n<img\n  src=a%20b.svg alt=\"x > y\"><a name=\"old\" href=\"x.html?q=1&amp;r=2#t\">\n<script>var s = '<a href=\"in-script.html\">';</script><link href=\"css/a.css\">",
        );
        assert_eq!(page.base.as_deref(), Some("/"));
        assert_eq!(page.ids, ["why", "old"]);
        let links: Vec<(usize, &str, &str)> =
            page.links.iter().map(|l| (l.line, l.attribute.as_str(), l.target.as_str())).collect();
        assert_eq!(
            links,
            [
                (4, "href", "#why"),
                (5, "src", "a%20b.svg"),
                (6, "href", "x.html?q=1&r=2#t"),
                (7, "href", "css/a.css")
            ]
        );
    }

    #[test]
    fn every_broken_link_is_reported_with_its_kind() {
        let book = std::env::temp_dir().join(format!("xtask-check-book-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&book);
        std::fs::create_dir_all(book.join("sub")).unwrap();
        std::fs::write(book.join("a b.svg"), "").unwrap();
        std::fs::write(book.join("sub/index.html"), "<h1 id=\"top\">Top</h1>").unwrap();
        std::fs::write(
            book.join("index.html"),
            "<h1 id=\"start\">Start</h1>\n\
             <a href=\"#start\">ok</a> <a href=\"sub/#top\">ok</a> <img src=\"a%20b.svg\">\n\
             <a href=\"https://example.invalid/x\">ok</a> <a href=\"mailto:x@example.invalid\">ok</a>\n\
             <a href=\"../src/main.rs#L3\">outside</a>\n\
             <a href=\"sub/README.html\">missing</a>\n\
             <a href=\"sub/index.html#nope\">anchor</a> <a href=\"#gone\">anchor</a>\n\
             <a href=\"a%20b.svg#L1\">not a page</a>\n",
        )
        .unwrap();
        let found = check(&book).unwrap();
        std::fs::remove_dir_all(&book).unwrap();
        let found: Vec<(usize, &str, Kind)> =
            found.iter().map(|b| (b.line, b.target.as_str(), b.kind)).collect();
        assert_eq!(
            found,
            [
                (4, "../src/main.rs#L3", Kind::OutsideBook),
                (5, "sub/README.html", Kind::NoSuchFile),
                (6, "sub/index.html#nope", Kind::NoSuchAnchor),
                (6, "#gone", Kind::NoSuchAnchor),
                (7, "a%20b.svg#L1", Kind::AnchorOnNonPage),
            ]
        );
    }

    #[test]
    fn the_build_dir_comes_from_book_toml() {
        let root = workspace_root().unwrap();
        assert_eq!(build_dir(&root.join("docs")).unwrap(), root.join("target/book"));
    }

    #[test]
    fn entities_and_percents_decode() {
        assert_eq!(decode_entities("a&amp;b&#39;c&#x27;d&lt;&bogus;"), "a&b'c'd<&bogus;");
        assert_eq!(percent_decode("a%20b%2Fc%zz"), "a b/c%zz");
    }
}

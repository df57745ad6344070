//! The book must say what the code does. These tests fail when it drifts:
//!
//! * every relative link in docs/ (recursively) and README.md reaches a file, every
//!   link of a page under docs/ stays inside docs/ (the built book), every
//!   `#anchor` a heading of that page (the code host's slug rules), and every `#L123`
//!   on a source file a line that exists;
//! * every `#L123` link is labelled with the item it points at, ``[`task`](...)``, and
//!   lands on that item's declaration (or, for a name the file does not declare, on a
//!   line that uses it), so editing the code cannot silently move the target;
//! * every page under docs/ is in the book's table of contents (SUMMARY.md);
//! * every program has a chapter, and every scene its `--help` lists has a heading in
//!   that chapter that names it;
//! * every `cargo run -p ...` command quoted in docs/ and README.md names a package of
//!   the workspace and a scene of that program, and exits 0 when run at small sizes.
//! * every code block under a `<!-- code: PATH [ITEM [.. ITEM]] -->` marker holds
//!   exactly that file's (or those items') text, and every marker points at code
//!   (`cargo xtask book-code` copies the blocks again; see the crate's docs).
//!
//! Each test lists every problem it finds, with file and line, not just the first.
//! The programs are built once (a nested `cargo build --profile test --all-targets`,
//! as `cargo test` builds them, so nothing is done when it just has) and run
//! straight from there.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use docs_check::shown as shown_code;
use docs_check::{
    CargoRun, Help, SmallSize, anchors, at_small_size, cargo_run_commands, chosen_command,
    heading_names, is_external, parse_cargo_run, parse_help, read_page,
};

/// Sub-commands that are not scenes of the lesson.
const NOT_SCENES: [&str; 2] = ["help", "bench"];

/// One quoted command may take this long before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn links_and_anchors_resolve() {
    let mut problems = Vec::new();
    for file in markdown_files() {
        let page = read_page(&read(&file));
        for link in &page.links {
            if let Err(problem) = check_link(&file, &link.text) {
                problems.push(format!(
                    "{}:{}: link `{}`: {problem}",
                    shown(&file),
                    link.line,
                    link.text
                ));
            }
        }
    }
    report("broken links or anchors", problems);
}

#[test]
fn line_links_land_on_what_they_name() {
    let mut problems = Vec::new();
    for file in markdown_files() {
        let page = read_page(&read(&file));
        for link in &page.links {
            let Some((path, anchor)) = link.text.split_once('#') else {
                continue;
            };
            if is_external(&link.text) || !anchor.starts_with('L') || path.ends_with(".md") {
                continue;
            }
            let source = file.parent().expect("a file has a folder").join(path);
            let first_line =
                anchor.split('-').next().and_then(|l| l.strip_prefix('L')?.parse::<usize>().ok());
            let (Ok(text), Some(first_line)) = (std::fs::read_to_string(&source), first_line)
            else {
                continue; // links_and_anchors_resolve reports these
            };
            let label =
                page.code_links.iter().find(|l| l.line == link.line && l.target == link.text);
            let outcome = match label {
                None => Err(
                    "a line anchor needs a label naming what is there, like [`fn_name`](file.rs#L12), so that this test can follow it"
                        .to_string(),
                ),
                Some(label) => check_line_target(&label.code, &source, &text, first_line),
            };
            if let Err(problem) = outcome {
                problems.push(format!(
                    "{}:{}: link `{}`: {problem}",
                    shown(&file),
                    link.line,
                    link.text
                ));
            }
        }
    }
    report("line links that miss what they name", problems);
}

#[test]
fn every_page_is_in_the_book() {
    let summary_path = root().join("docs/SUMMARY.md");
    let summary = read_page(&read(&summary_path));
    let listed: BTreeSet<PathBuf> = summary
        .links
        .iter()
        .map(|link| normalize(&root().join("docs").join(link.text.split('#').next().unwrap())))
        .collect();
    let problems = markdown_files()
        .into_iter()
        .filter(|file| file.starts_with(root().join("docs")) && *file != summary_path)
        .filter(|file| !listed.contains(&normalize(file)))
        .map(|file| {
            format!("{} is not in docs/SUMMARY.md, so the book does not show it", shown(&file))
        })
        .collect();
    report("pages missing from the book", problems);
}

#[test]
fn every_program_and_scene_has_a_chapter_section() {
    let mut problems = Vec::new();
    for program in programs() {
        let scenes: Vec<&String> =
            program.help.commands.iter().filter(|c| !NOT_SCENES.contains(&c.as_str())).collect();
        let chapter = root().join("docs").join(format!("{}.md", program.short_name()));
        if !chapter.exists() {
            problems.push(format!(
                "{} has no chapter: {} does not exist (its scenes: {})",
                program.package,
                shown(&chapter),
                list(&scenes)
            ));
            continue;
        }
        let page = read_page(&read(&chapter));
        for scene in scenes {
            if !page.headings.iter().any(|h| heading_names(&h.text, scene)) {
                problems.push(format!(
                    "{}: no heading names the scene `{scene}` of {}",
                    shown(&chapter),
                    program.package
                ));
            }
        }
    }
    report("programs or scenes without a chapter section", problems);
}

#[test]
fn quoted_cargo_run_commands_run_at_small_sizes() {
    let members = workspace_members();
    let scratch = Scratch::new();
    let mut problems = Vec::new();
    let mut already_run = BTreeSet::new();
    for file in markdown_files() {
        let page = read_page(&read(&file));
        for code in &page.code {
            for command in cargo_run_commands(&code.text) {
                let Some(run) = parse_cargo_run(&command) else {
                    continue; // `cargo run` named in passing, no package: not a command
                };
                if let Err(problem) = check_command(&run, &members, &scratch, &mut already_run) {
                    problems.push(format!(
                        "{}:{}: `{command}`: {problem}",
                        shown(&file),
                        code.line
                    ));
                }
            }
        }
    }
    report("quoted commands that do not run", problems);
}

#[test]
fn shown_code_matches_its_file() {
    let mut problems = Vec::new();
    for file in markdown_files() {
        let page = read_page(&read(&file));
        let read_code = shown_code::reader(file.parent().expect("a file has a folder"));
        for problem in shown_code::check(&page, &read_code) {
            problems.push(format!("{}:{}: {}", shown(&file), problem.line, problem.text));
        }
    }
    report("shown code blocks that differ from their files", problems);
}

/// What a program printed, as a page shows it under `<!-- output: ... -->`: every line
/// fits 80 columns (a projector, a book's code block), and three equal lines or more
/// are shown once with `cargo xtask book-output`'s count line, `⋮ N more lines like
/// the one above`, which must follow the line it repeats.
#[test]
fn shown_output_fits_80_columns_and_marks_what_it_leaves_out() {
    let mut problems = Vec::new();
    for file in markdown_files() {
        let text = read(&file);
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate().filter(|(_, l)| l.starts_with("<!-- output: ")) {
            let mut block =
                lines[at + 1..].iter().enumerate().skip_while(|(_, l)| l.trim().is_empty());
            let Some((_, fence)) = block.next().filter(|(_, l)| l.starts_with("```")) else {
                problems.push(format!("{}:{}: no block under {line}", shown(&file), at + 1));
                continue;
            };
            let shown_lines: Vec<(usize, &str)> = block
                .take_while(|(_, l)| !l.starts_with("```"))
                .map(|(k, l)| (at + 2 + k, *l))
                .collect();
            let _ = fence;
            for (k, (number, line)) in shown_lines.iter().enumerate() {
                let width = line.chars().count();
                let place = format!("{}:{number}", shown(&file));
                if width > 80 && !line.starts_with("$ ") {
                    problems.push(format!("{place}: {width} columns: {line}"));
                }
                if k >= 2 && shown_lines[k - 1].1 == *line && shown_lines[k - 2].1 == *line {
                    problems.push(format!("{place}: three equal lines, not trimmed: {line}"));
                }
                let counted = line.strip_prefix("⋮ ").and_then(|rest| rest.split_once(' '));
                if line.starts_with('⋮')
                    && (k == 0
                        || shown_lines[k - 1].1.starts_with('⋮')
                        || counted.is_none_or(|(n, rest)| {
                            n.parse::<u32>().is_err() || rest != "more lines like the one above"
                        }))
                {
                    problems.push(format!("{place}: a count line that counts nothing: {line}"));
                }
            }
        }
    }
    report("shown outputs that do not fit the page", problems);
}

// -------------------------------------------------------------------------------
// Links
// -------------------------------------------------------------------------------

fn check_link(from: &Path, target: &str) -> Result<(), String> {
    if is_external(target) {
        return Ok(());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let path = path.split('?').next().unwrap_or_default();
    let file = if path.is_empty() {
        from.to_path_buf()
    } else if let Some(from_root) = path.strip_prefix('/') {
        root().join(from_root)
    } else {
        from.parent().expect("a file has a folder").join(path)
    };
    if !file.exists() {
        return Err(format!("{} does not exist", shown(&normalize(&file))));
    }
    // The book is docs/: mdBook copies nothing else, so a page's link to a source
    // file or folder would break in the built book. Name such a file in backticks.
    let docs = root().join("docs");
    if from.starts_with(&docs) && !normalize(&file).starts_with(&docs) {
        return Err(format!("{} is outside the book (docs/)", shown(&normalize(&file))));
    }
    // A link to a folder becomes a link to a page that mdBook never writes.
    if from.starts_with(&docs) && file.is_dir() {
        return Err("a link to a folder, which the built book does not have".into());
    }
    let Some(anchor) = anchor.filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    if file.is_dir() {
        return Err("an anchor on a folder".into());
    }
    if file.extension().is_some_and(|e| e == "md") {
        let offered = anchors(&read_page(&read(&file)));
        if offered.iter().any(|a| a == anchor) {
            return Ok(());
        }
        return Err(format!(
            "no heading of {} has the anchor `#{anchor}`",
            shown(&normalize(&file))
        ));
    }
    // `#L12` or `#L12-L20` on a source file: those lines must exist.
    let last_line = anchor
        .split('-')
        .map(|part| part.strip_prefix('L').and_then(|n| n.parse::<usize>().ok()))
        .collect::<Option<Vec<usize>>>()
        .and_then(|lines| lines.into_iter().max())
        .ok_or_else(|| format!("`#{anchor}` on a source file must be `#L<line>`"))?;
    let lines = read(&file).lines().count();
    if last_line == 0 || last_line > lines {
        return Err(format!(
            "{} has {lines} lines, so line {last_line} does not exist",
            shown(&normalize(&file))
        ));
    }
    Ok(())
}

/// `code` is a link's label, `line` the first line its anchor points at. A file name
/// (`wire.rs`) must be the linked file; a name (`task`, `Proxy::ask`, `fork()`) must be
/// declared on that line, or, if the file declares no such name, appear on it.
fn check_line_target(code: &str, source: &Path, text: &str, line: usize) -> Result<(), String> {
    let file_name = source.file_name().unwrap_or_default().to_string_lossy();
    if code.ends_with(".rs") || code.ends_with(".py") {
        if code == file_name {
            return Ok(());
        }
        return Err(format!("the label names `{code}` but the link opens {file_name}"));
    }
    let name = code.trim_end_matches("()").rsplit("::").next().unwrap_or_default();
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(format!(
            "the label `{code}` is not the name of an item, so nothing says where it belongs"
        ));
    }
    let lines: Vec<&str> = text.lines().collect();
    let declared: Vec<usize> =
        (1..=lines.len()).filter(|&n| declares(lines[n - 1], name)).collect();
    if declared.contains(&line) {
        return Ok(());
    }
    if !declared.is_empty() {
        let at: Vec<String> = declared.iter().map(|n| format!("L{n}")).collect();
        return Err(format!(
            "`{name}` is declared in {file_name} at {}, not at L{line}",
            at.join(", ")
        ));
    }
    match lines.get(line - 1) {
        Some(at) if words(at).any(|w| w == name) => Ok(()),
        _ => Err(format!("line {line} of {file_name} does not mention `{name}`")),
    }
}

/// Whether a line of Rust or Python declares `name`: `fn name`, `pub struct name`,
/// `def name`, ... (a comment does not count).
fn declares(line: &str, name: &str) -> bool {
    const KEYWORDS: [&str; 10] =
        ["fn", "struct", "enum", "trait", "const", "static", "type", "mod", "def", "class"];
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") || trimmed.starts_with('#') {
        return false;
    }
    let words: Vec<&str> = words(line).collect();
    words.windows(2).any(|pair| KEYWORDS.contains(&pair[0]) && pair[1] == name)
}

/// The identifiers of a line of code.
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty())
}

// -------------------------------------------------------------------------------
// Programs and the commands that run them
// -------------------------------------------------------------------------------

/// A program of the workspace, built, with what its `--help` says.
struct Program {
    package: String,
    binary: PathBuf,
    help: Help,
}

impl Program {
    /// `examples-mmap` -> `mmap`, the name of its chapter.
    fn short_name(&self) -> &str {
        self.package.strip_prefix("examples-").unwrap_or(&self.package)
    }
}

/// Builds every program once for all tests.
fn programs() -> &'static [Program] {
    static PROGRAMS: OnceLock<Vec<Program>> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let packages: Vec<String> =
            workspace_members().into_iter().filter(|m| m.starts_with("examples-")).collect();
        let mut build = cargo_build();
        build.args(["--quiet", "--all-targets"]);
        for package in &packages {
            build.args(["-p", package]);
        }
        let status = build.status().expect("could not run cargo build");
        assert!(
            status.success(),
            "cargo build of the programs failed ({status}): see its output above"
        );
        packages
            .into_iter()
            .map(|package| {
                let binary = programs_dir().join(&package);
                let help = help_of(&binary);
                Program { package, binary, help }
            })
            .collect()
    })
}

/// `cargo build` of every target (the tests too), in the profile `cargo test` builds
/// the workspace's own crates in: `test` (in target/debug), or the one named by the
/// directory this test runs from. So the programs are built as `cargo test` builds
/// them, with the test suite's fault switches (a dev-dependency's feature): right
/// after `cargo test` that is nothing to do. (A build in the `dev` profile made them
/// all again, 76 s on a fresh clone, and replaced the programs the later tests start.)
fn cargo_build() -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    let profile_dir = profile_dir();
    cargo.current_dir(root()).arg("build");
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => cargo.args(["--profile", "test"]),
        Some(profile) => cargo.args(["--profile", profile]),
    };
    cargo
}

/// Where [`cargo_build`] puts the programs: target/debug, say.
fn programs_dir() -> PathBuf {
    profile_dir()
}

/// target/debug (or target/release, ...): this test runs from its `deps` folder.
fn profile_dir() -> PathBuf {
    let test = std::env::current_exe().expect("the test knows its path");
    test.parent()
        .and_then(Path::parent)
        .expect("the test runs from <target>/<profile>/deps")
        .to_path_buf()
}

fn help_of(binary: &Path) -> Help {
    let output = Command::new(binary)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("could not run {} --help: {e}", binary.display()));
    assert!(output.status.success(), "{} --help failed", binary.display());
    parse_help(&String::from_utf8_lossy(&output.stdout))
}

fn check_command(
    run: &CargoRun,
    members: &[String],
    scratch: &Scratch,
    already_run: &mut BTreeSet<Vec<String>>,
) -> Result<(), String> {
    if !members.contains(&run.package) {
        return Err(format!(
            "`{}` is not a package of the workspace (members: {})",
            run.package,
            list(members)
        ));
    }
    let (binary, help) = match (&run.example, run.package.as_str()) {
        (Some(_), package) => return Err(format!("{package} has no examples to run")),
        (None, package) => match programs().iter().find(|p| p.package == package) {
            Some(program) => (program.binary.clone(), program.help.clone()),
            // Another member (xtask, a library): it exists; running it is not our job.
            None => return Ok(()),
        },
    };
    let command = chosen_command(&run.args, &help);
    if let Some(command) = &command
        && !help.commands.contains(command)
    {
        return Err(format!(
            "`{command}` is not a scene of {} (its --help lists: {})",
            run.package,
            list(&help.commands)
        ));
    }
    let mut sizes = small_sizes(&run.package);
    if command.as_deref() == Some("bench") {
        // A bench always has one child and refuses the scenes' counts of children.
        sizes.retain(|size| size.flag == "--n");
    }
    let mut args = at_small_size(&run.args, &sizes, &help);
    // A quoted `--trace` runs under strace: only where strace can trace (said once).
    static CAN_TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if args.iter().any(|a| a == "--trace")
        && !*CAN_TRACE.get_or_init(|| test_support::strace_works("quoted --trace commands"))
    {
        return Ok(());
    }
    let mut key = vec![binary.display().to_string()];
    key.extend(args.iter().cloned());
    if !already_run.insert(key) {
        return Ok(());
    }
    let segment = scratch.rename_names_and_paths(&mut args);
    let outcome = scratch.run(&binary, &args);
    if let Some(segment) = segment {
        // A quoted `--keep` leaves the segment behind on purpose; this test must not.
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(segment));
    }
    outcome.map_err(|problem| format!("ran `{} {}`: {problem}", run.package, args.join(" ")))
}

/// The sizes a quick run uses: small enough for the whole test to take seconds.
fn small_sizes(package: &str) -> Vec<SmallSize> {
    let n = |small, largest| SmallSize { flag: "--n", small, largest };
    let count = |flag, small, largest| SmallSize { flag, small, largest };
    match package {
        // n is the side of an (n, n) array
        "examples-argument" | "examples-pipe" | "examples-queue" => {
            vec![n(64, 2000), count("--producers", 4, 8)]
        }
        "examples-mmap" => vec![n(4096, 1_000_000), count("--children", 4, 8)],
        "examples-shm" | "examples-manager" => vec![n(4096, 10_000_000), count("--clients", 4, 16)],
        _ => vec![n(64, 1000)],
    }
}

/// A private folder for the quoted commands' files, removed at the end.
struct Scratch {
    dir: PathBuf,
    serial: std::cell::Cell<u32>,
}

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("docs-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("could not make a scratch folder");
        Scratch { dir, serial: std::cell::Cell::new(0) }
    }

    /// Quoted names and paths (`--name demo`, `--path data.f32`) may collide with
    /// another run on the same machine: give each run its own. Returns the segment
    /// name chosen, to remove it afterwards.
    fn rename_names_and_paths(&self, args: &mut Vec<String>) -> Option<String> {
        let serial = self.serial.get() + 1;
        self.serial.set(serial);
        let mut segment = None;
        // A kept segment needs a name this test knows, to remove it afterwards.
        if args.iter().any(|a| a == "--keep") && !args.iter().any(|a| a == "--name") {
            args.extend(["--name".to_owned(), String::new()]);
        }
        for at in 1..args.len() {
            match args[at - 1].as_str() {
                "--name" => {
                    let name = format!("docs-check-{}-{serial}", std::process::id());
                    args[at] = name.clone();
                    segment = Some(name);
                }
                "--path" => {
                    let file = Path::new(&args[at]).file_name().unwrap_or("data".as_ref());
                    let path = self.dir.join(format!("{serial}-{}", file.to_string_lossy()));
                    args[at] = path.display().to_string();
                }
                _ => {}
            }
        }
        segment
    }

    /// Runs a program in the scratch folder; Ok when it exits 0 within the deadline.
    fn run(&self, binary: &Path, args: &[String]) -> Result<(), String> {
        let serial = self.serial.get();
        let stdout = self.dir.join(format!("{serial}.out"));
        let stderr = self.dir.join(format!("{serial}.err"));
        let mut child = Command::new(binary)
            .args(args)
            .current_dir(&self.dir)
            .env_remove("EXAMPLES_CHILD_FAULT")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("scratch file"))
            .stderr(File::create(&stderr).expect("scratch file"))
            .spawn()
            .map_err(|e| format!("could not start it: {e}"))?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if started.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {} s; killed", DEADLINE.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if status.success() {
            return Ok(());
        }
        let errors = read(&stderr);
        let last: Vec<&str> = errors.lines().rev().take(3).collect();
        let last: Vec<&str> = last.into_iter().rev().collect();
        Err(format!("{status}: {}", last.join(" / ")))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// -------------------------------------------------------------------------------
// Files
// -------------------------------------------------------------------------------

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("docs-check lives in the workspace")
        .to_path_buf()
}

/// README.md and every Markdown file under docs/, in a stable order.
fn markdown_files() -> Vec<PathBuf> {
    docs_check::markdown_files(&root()).expect("could not list the book's pages")
}

/// The `members` of the workspace's Cargo.toml.
fn workspace_members() -> Vec<String> {
    let manifest = read(&root().join("Cargo.toml"));
    let list = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("Cargo.toml lists its members");
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("could not read {}: {e}", path.display()))
}

/// `a/b/../c` -> `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A path as the workspace names it: `docs/mmap.md`.
fn shown(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

fn list<T: AsRef<str>>(items: &[T]) -> String {
    items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ")
}

fn report(what: &str, problems: Vec<String>) {
    if !problems.is_empty() {
        panic!("{} {what}:\n  {}\n", problems.len(), problems.join("\n  "));
    }
}

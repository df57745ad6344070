//! Project tasks that are not part of any lesson, run as `cargo xtask TASK`:
//!
//! * `bench` (bench.rs): every program's bench and the Python benchmark, written
//!   into the benchmark chapter and its chart; with `--sweep` (sweep.rs), at several
//!   sizes, into the chapter's scaling section and its log-log chart.
//! * `doctor` (doctor.rs): whether this machine can run every scene at the
//!   tutorial's sizes.
//! * `check-book` (check_book.rs): every link of the book as mdBook built it lands.
//! * `book-code` (book_code.rs): the code the pages show, copied from its files.
//! * `book-output` (book_output.rs): the output the pages show, printed again.
//! * `chaos` (chaos.rs): every program hurt by a random signal at a random moment,
//!   in odd TMPDIRs and beside runs that share its name, plainly and with `--trace`;
//!   nothing of a run may be left 3 s later, and nothing else removed.
//! * `trace-table` (trace_table.rs): every scene run with `--trace`, what each moved
//!   between processes and mapped shared, side by side.

mod bench;
mod book_code;
mod book_output;
mod chaos;
mod check_book;
mod doctor;
mod sweep;
mod trace_table;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// Project tasks that are not part of any lesson.
#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run every bench and the Python benchmark; rewrite docs/benchmark.md's
    /// results and docs/benchmark.svg (with --sweep: its scaling section and
    /// docs/scaling.svg)
    Bench(bench::BenchArgs),
    /// Check that this machine can run every scene at the tutorial's sizes: Linux,
    /// /dev/shm, memory, TMPDIR, Rust, and (optional) Python with numpy and strace.
    /// One line per check; exits 1 when a required one fails
    Doctor,
    /// Check every link of the built book (`mdbook build docs` first): each href and
    /// src of every page must reach a file of the book, each #fragment an id of its
    /// page. Lists every broken link; exits 1 if there is one
    CheckBook(check_book::CheckBookArgs),
    /// Copy the code every page shows under a `<!-- code: ... -->` marker from its
    /// file again
    #[command(long_about = BOOK_CODE_HELP)]
    BookCode(book_code::BookCodeArgs),
    /// Run the command under each `<!-- output: cargo run -p ... -->` marker of the
    /// book and write what it printed into the block under it
    BookOutput(book_output::BookOutputArgs),
    /// Run the programs at small sizes, each run hurt once at a random moment by
    /// SIGINT, SIGTERM, SIGHUP or SIGKILL to the parent, a child or the watchdog,
    /// also in odd TMPDIRs and beside a run that shares its --path or --name; count
    /// orphans, hangs, leftovers, what was removed that a run did not make, and runs
    /// not hurt that crashed, 3 s later. Exits 1 if any count is above 0
    Chaos(chaos::ChaosArgs),
    /// Run every program's scenes with --trace, each with an 8 MB array, and print
    /// side by side what each scene sent through pipes and sockets and how many
    /// shared mappings it made (needs strace)
    TraceTable,
}

const BOOK_CODE_HELP: &str = "\
Copy the code every page shows under a `<!-- code: ... -->` marker from its file again.

For contributors: to show code on a page, write a marker line, an HTML comment
that neither the code host nor mdBook displays, and run this task. It writes a
fenced block under the marker holding the file's text, and rewrites it whenever
the file changes:

    <!-- code: ../examples-mmap/src/scenes/one_child.rs -->
    <!-- code: ../examples-mmap/src/file.rs fn create -->
    <!-- code: ../examples-mmap/src/file.rs fn create .. fn open -->

The path is relative to the page, as a link's. With no item, the whole file is
shown (preferred: a scene file is one screen). An item is named by its keyword
and name as its top-level declaration starts, without `pub` (`fn create`,
`struct Place`, `impl Place`); it runs from its doc comment and attributes to its
closing brace. `A .. B` shows everything from the start of A to the end of B.

The block is plain Markdown, so the page reads the same on the code host and in
mdBook. `cargo test -p docs-check` fails, listing every page and file, when a
block differs from its file or a marker points at nothing.";

fn main() -> std::process::ExitCode {
    // Ok(false): the task has said what failed; no error line to add.
    let outcome = match Cli::parse().task {
        Task::Bench(args) => bench::run(args).map(|()| true),
        Task::Doctor => doctor::run(),
        Task::CheckBook(args) => check_book::run(args),
        Task::BookCode(args) => book_code::run(args),
        Task::BookOutput(args) => book_output::run(args),
        Task::TraceTable => trace_table::run(),
        Task::Chaos(args) => workspace_root().and_then(|root| {
            let target = target_directory(&root)?;
            chaos::run(args, &root, &target)
        }),
    };
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Builds these programs ("mmap", ...) with cargo in `root`: the dev profile, quietly,
/// or the release profile with cargo's progress.
fn build_programs<'a>(
    root: &Path,
    programs: impl IntoIterator<Item = &'a str>,
    release: bool,
) -> Result<()> {
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(root).arg("build");
    build.arg(if release { "--release" } else { "--quiet" });
    for program in programs {
        build.args(["-p", &format!("examples-{program}")]);
    }
    check(build.status().context("could not run cargo build")?, "cargo build")
}

fn check(status: std::process::ExitStatus, what: &str) -> Result<()> {
    if !status.success() {
        bail!("{what} failed: {status}");
    }
    Ok(())
}

/// Where cargo puts what it builds: `target/` unless CARGO_TARGET_DIR or a config
/// says otherwise, so it is asked rather than assumed.
fn target_directory(root: &Path) -> Result<PathBuf> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("could not run cargo metadata")?;
    check(output.status, "cargo metadata")?;
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let dir =
        metadata["target_directory"].as_str().context("cargo metadata gave no target_directory")?;
    Ok(PathBuf::from(dir))
}

fn workspace_root() -> Result<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    Ok(here.parent().context("xtask has no parent folder")?.to_path_buf())
}

/// What a command prints, trimmed; None when it cannot run or fails.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

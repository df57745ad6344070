//! `cargo xtask book-output`: runs the command under each output marker of the book
//! and writes what it printed into the text block under it, so that every output a
//! chapter shows is what the program prints today. A marker is one line:
//!
//! ```text
//! <!-- output: cargo run -p examples-argument -- inherit --n 2000 -->
//! ```
//!
//! The command is run as the debug binary `cargo run` would build (built first),
//! from the top of the repository; `cargo xtask TASK` runs this tool's own task. A
//! marker may end in `| grep TEXT`: then only the lines containing TEXT are shown,
//! as the shell would. Runs at the tutorials' sizes take a minute or so in all;
//! `--only PAGE` limits the task to pages whose path contains PAGE.
//!
//! Three or more equal lines in a row (the rows of a corner of ones) are shown once,
//! followed by the line [`REPEATS`] names: `⋮ 4 more lines like the one above`. No
//! program prints a line that starts with `⋮`, so a reader (and the drift test) can
//! tell the page's shorthand from what the program printed.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{target_directory, workspace_root};

/// What `cargo xtask book-output` takes.
#[derive(clap::Args)]
pub struct BookOutputArgs {
    /// Only the pages whose path contains this text, e.g. --only mmap
    #[arg(long)]
    only: Option<String>,
}

const MARKER: &str = "<!-- output: ";

/// How a run of equal lines is shown: the first, then this line with the count.
pub const REPEATS: &str = "⋮ {} more lines like the one above";

pub fn run(args: BookOutputArgs) -> Result<bool> {
    let root = workspace_root()?;
    let target = target_directory(&root)?;
    crate::build_programs(&root, ["argument", "pipe", "queue", "mmap", "shm", "manager"], false)?;
    let pages = docs_check::markdown_files(&root).context("cannot list the book's pages")?;
    for page in pages {
        let shown = page.strip_prefix(&root).unwrap_or(&page).display().to_string();
        if args.only.as_ref().is_some_and(|only| !shown.contains(only.as_str())) {
            continue;
        }
        let text = std::fs::read_to_string(&page)?;
        if !text.contains(MARKER) {
            continue;
        }
        let rewritten = rewrite(&text, |command| run_command(command, &root, &target))
            .with_context(|| format!("in {shown}"))?;
        if rewritten != text {
            std::fs::write(&page, rewritten)?;
            println!("{shown}: output written again");
        }
    }
    Ok(true)
}

/// The page with each marker's block replaced by what `output(command)` returns.
fn rewrite(text: &str, mut output: impl FnMut(&str) -> Result<String>) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        out.push(lines[i].to_owned());
        let command = lines[i].strip_prefix(MARKER).and_then(|rest| rest.strip_suffix(" -->"));
        i += 1;
        let Some(command) = command else { continue };
        // An old block right under the marker goes; a blank line first is allowed.
        let mut j = i;
        while j < lines.len() && lines[j].trim().is_empty() {
            j += 1;
        }
        if j < lines.len() && lines[j].starts_with("```") {
            let close = (j + 1..lines.len()).find(|&k| lines[k].starts_with("```"));
            i = close.map_or(lines.len(), |k| k + 1);
        }
        out.push(String::new());
        out.push("```text".to_owned());
        out.push(format!("$ {command}"));
        out.extend(trim_repeats(&output(command)?));
        out.push("```".to_owned());
    }
    let mut page = out.join("\n");
    page.push('\n');
    Ok(page)
}

/// The lines of `output`, each run of three or more equal lines as its first line and
/// a [`REPEATS`] line.
fn trim_repeats(output: &str) -> Vec<String> {
    let mut lines: Vec<(&str, usize)> = Vec::new();
    for line in output.lines() {
        match lines.last_mut() {
            Some((last, count)) if *last == line => *count += 1,
            _ => lines.push((line, 1)),
        }
    }
    let mut shown = Vec::new();
    for (line, count) in lines {
        match count {
            1 | 2 => shown.extend(std::iter::repeat_n(line.to_owned(), count)),
            _ => shown.extend([line.to_owned(), REPEATS.replace("{}", &(count - 1).to_string())]),
        }
    }
    shown
}

/// Runs `cargo run -p PROGRAM [-- ARGS] [| grep TEXT]` as its debug binary (or
/// `cargo xtask ...` as this tool); returns
/// standard output (the lines containing TEXT, if given).
fn run_command(command: &str, root: &Path, target: &Path) -> Result<String> {
    let (command, only) = match command.split_once(" | grep ") {
        Some((command, text)) => (command, Some(text.trim())),
        None => (command, None),
    };
    let words: Vec<&str> = command.split_whitespace().collect();
    let (binary, args) = match words.as_slice() {
        ["cargo", "run", "-p", program, rest @ ..] => match rest {
            ["--", args @ ..] => (target.join("debug").join(program), args),
            [] => (target.join("debug").join(program), &[][..]),
            _ => bail!("arguments follow `--` in `{command}`"),
        },
        // This very tool, run again as its own program.
        ["cargo", "xtask", args @ ..] => (std::env::current_exe()?, args),
        _ => bail!(
            "an output marker runs `cargo run -p PROGRAM [-- ARGS]` or `cargo xtask ...`, not `{command}`"
        ),
    };
    eprintln!("running {command}");
    let output = Command::new(binary)
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {command}"))?;
    if !output.status.success() {
        bail!("`{command}` failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(match only {
        Some(text) => stdout
            .lines()
            .filter(|line| line.contains(text))
            .map(|line| line.to_owned() + "\n")
            .collect(),
        None => stdout.into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_written_under_its_marker_and_replaced_later() {
        let page = "# Title\n\n<!-- output: cargo run -p x -->\n\nafter\n";
        let once = rewrite(page, |_| Ok("one\ntwo\n".into())).unwrap();
        assert_eq!(
            once,
            "# Title\n\n<!-- output: cargo run -p x -->\n\n```text\n$ cargo run -p x\none\ntwo\n```\n\nafter\n"
        );
        let again = rewrite(&once, |_| Ok("three\n".into())).unwrap();
        assert!(again.contains("```text\n$ cargo run -p x\nthree\n```\n\nafter"), "{again}");
        assert!(!again.contains("one"), "{again}");
    }

    #[test]
    fn three_equal_lines_or_more_are_shown_once_and_counted() {
        let corner = "a: top\na:   [1]\na:   [1]\na:   [1]\na:   [1]\nb\nb\nc\n";
        let shown = trim_repeats(corner);
        assert_eq!(
            shown,
            ["a: top", "a:   [1]", "⋮ 3 more lines like the one above", "b", "b", "c"]
        );
    }
}

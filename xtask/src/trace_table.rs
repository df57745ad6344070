//! `cargo xtask trace-table`: every program's scenes run with `--trace`, each with an
//! 8 MB array, and what each scene's summary says in all, side by side: the bytes
//! sent through pipes and sockets, and the shared mappings made. It is the table
//! behind the benchmark: the copies move the array through calls, the shares map it
//! and move nothing, the manager sends small messages, the queue maps windows.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{target_directory, workspace_root};

/// Each program's run: every scene, with an 8 MB array (1000 x 1000 f64; 2,000,000
/// f32 in mmap; 1,000,000 f64 in shm and manager), few children.
const RUNS: [(&str, &[&str]); 6] = [
    ("argument", &["--n", "1000"]),
    ("pipe", &["--n", "1000"]),
    ("queue", &["--n", "1000", "--producers", "2"]),
    ("mmap", &["--n", "2000000", "--children", "4"]),
    ("shm", &["--n", "1000000"]),
    ("manager", &["--n", "1000000", "--clients", "2"]),
];

/// One scene's row.
struct Row {
    program: &'static str,
    scene: String,
    sent: String,
    shared: String,
    /// What no call shows, from the summary's notes.
    notes: Vec<&'static str>,
}

pub fn run() -> Result<bool> {
    let root = workspace_root()?;
    let target = target_directory(&root)?;
    crate::build_programs(&root, RUNS.iter().map(|(program, _)| *program), false)?;
    let mut rows = Vec::new();
    for (program, args) in RUNS {
        let binary = target.join("debug").join(format!("examples-{program}"));
        eprintln!("running examples-{program} {} --trace", args.join(" "));
        rows.extend(rows_of(program, &traced(&binary, args, &root)?));
    }
    // At most 80 columns: 8 + 20 + 12 + 8 and the longest notes, 27.
    let head = ["program", "scene", "sent by", "shared", "what no call shows"];
    println!("{:<8} {:<20} {:>12} {:>8}  {}", head[0], head[1], head[2], head[3], head[4]);
    println!("{:<8} {:<20} {:>12} {:>8}", "", "", "pipe, socket", "mappings");
    for Row { program, scene, sent, shared, notes } in rows {
        let line = format!("{program:<8} {scene:<20} {sent:>12} {shared:>8}  {}", notes.join(", "));
        println!("{}", line.trim_end());
    }
    Ok(true)
}

/// What a traced run printed.
fn traced(binary: &Path, args: &[&str], root: &Path) -> Result<String> {
    let output = Command::new(binary)
        .args(args)
        .arg("--trace")
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        bail!("{} failed: {}", binary.display(), String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The rows of one program's output: each summary's heading names the scene, its
/// `in all` line gives the figures, the notes after it what no call shows.
fn rows_of(program: &'static str, stdout: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut scene = None;
    for line in stdout.lines() {
        let Some(text) = line.strip_prefix("trace: ") else { continue };
        if text.contains(" system calls by ") {
            scene = text.split(": ").next().map(str::to_owned);
        } else if let Some(all) = text.strip_prefix("in all: ") {
            let (sent, shared) =
                all.split_once(" sent through pipes and sockets, ").unwrap_or(("?", "?"));
            let shared = shared.split(' ').next().unwrap_or("?").to_owned();
            let scene = scene.take().unwrap_or_default();
            let sent = sent.to_owned();
            rows.push(Row { program, scene, sent, shared, notes: Vec::new() });
        } else if let Some(row) = rows.last_mut() {
            let notes = [
                ("the array itself is copied through", "the array, via windows"),
                ("reads and writes of a shared mapping", "shared pages"),
                ("writes into a MAP_PRIVATE mapping", "copy on write"),
                ("fork copies no page", "fork"),
            ];
            row.notes.extend(notes.iter().filter(|(n, _)| text.starts_with(n)).map(|(_, s)| *s));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_gives_a_row() {
        let stdout = "=== queue: x ===\ntrace: queue: 412 system calls by 3 processes; the ones that matter:\nparent: trace: x\ntrace: in all: 363 bytes sent through pipes and sockets, 8 shared mappings\ntrace: the array itself is copied through those shared windows, by plain\n";
        let rows = rows_of("queue", stdout);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(
            (row.scene.as_str(), row.sent.as_str(), row.shared.as_str()),
            ("queue", "363 bytes", "8")
        );
        assert_eq!(row.notes, ["the array, via windows"]);
    }
}

//! Every exercise of the workshop, solved: each solution on a page under
//! docs/exercises/ is applied to a copy of the workspace, the copy is built, and the
//! changed program is run with the page's check (see `docs_check::exercise`). So a
//! solution that no longer applies to today's scene file, or a program that no longer
//! does what the page says it does once changed, fails here.
//!
//! The copy holds only what the programs need (the top Cargo.toml and Cargo.lock,
//! and every member but xtask and docs-check), with every solution applied at once:
//! the exercises change different files. It is built once, into the workspace's own
//! target directory, so that the dependencies compiled there already are used as
//! they are and only the copy's members are compiled (cargo tells them apart from
//! the real ones by their path). Its programs are renamed `exercise-examples-X`,
//! so the real programs' binaries are never replaced by changed ones.
//!
//! Each check with an exit status runs three times, and must hold every time: a page
//! that states what only some runs print is wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use docs_check::exercise::{self, Outcome, Solution};

/// A program that is meant to exit must do so within this time.
const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn every_solution_applies_builds_and_does_what_its_page_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("in the workspace");
    let pages = exercise_pages(root);
    assert!(pages.len() >= 6, "expected an exercise page per program, found {}", pages.len());
    let mut solutions = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("readable page");
        let found =
            exercise::solutions(&text).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(!found.is_empty(), "{} has no checked solution", page.display());
        solutions.extend(found.into_iter().map(|s| (page.clone(), s)));
    }

    let copy = Path::new(env!("CARGO_TARGET_TMPDIR")).join("exercise-workspace");
    let members = copy_workspace(root, &copy);
    let mut problems = Vec::new();
    for (page, solution) in &solutions {
        let file = copy.join(&solution.file);
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {}: {e}", page.display(), solution.file));
        match exercise::apply(&source, &solution.hunks) {
            Ok(changed) => std::fs::write(&file, changed).expect("writable copy"),
            Err(e) => problems.push(format!("{}:{}: {}", page.display(), solution.line, e)),
        }
    }
    assert!(problems.is_empty(), "solutions that no longer apply:\n{}", problems.join("\n"));

    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp");
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build.current_dir(&copy).args(["build", "--quiet", "--offline", "--bins"]);
    build.arg("--target-dir").arg(target);
    // Its members are built once and run at small sizes: unoptimised, without
    // incremental state, they compile in a fraction of the time and print the same.
    // (The dependencies are unoptimised in every build already: see Cargo.toml.)
    build.env("CARGO_PROFILE_DEV_OPT_LEVEL", "0").env("CARGO_INCREMENTAL", "0");
    for member in members.iter().filter(|m| m.starts_with("examples-")) {
        build.args(["-p", member]);
    }
    let status = build.status().expect("could not run cargo build");
    assert!(status.success(), "the changed programs do not build ({status}): see above");

    for (page, solution) in &solutions {
        let runs = match solution.outcome {
            Outcome::Exits(_) if !solution.kill_paused => 3,
            _ => 1,
        };
        if let Err(e) = (0..runs).try_for_each(|_| check(solution)) {
            problems.push(format!(
                "{}:{}: `{}`: {e}",
                page.display(),
                solution.line,
                solution.command
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "solutions that do not do what the page says:\n{}",
        problems.join("\n\n")
    );
}

/// docs/exercises/*.md but the workshop's index.
fn exercise_pages(root: &Path) -> Vec<PathBuf> {
    let dir = root.join("docs").join("exercises");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

/// A fresh copy of what the programs need; returns the members it keeps.
fn copy_workspace(root: &Path, copy: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    let (head, rest) = manifest.split_once("members = [").expect("Cargo.toml lists members");
    let (list, tail) = rest.split_once(']').expect("the members list ends");
    let members: Vec<String> = list
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty() && m != "xtask" && m != "docs-check")
        .collect();
    let listed: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    let manifest = format!("{head}members = [{}]{tail}", listed.join(", "));

    // Only the sources go.
    for member in &members {
        let _ = std::fs::remove_dir_all(copy.join(member));
        copy_dir(&root.join(member), &copy.join(member));
        if member.starts_with("examples-") {
            rename_program(&copy.join(member).join("Cargo.toml"), member);
        }
    }
    std::fs::write(copy.join("Cargo.toml"), manifest).expect("writable copy");
    std::fs::copy(root.join("Cargo.lock"), copy.join("Cargo.lock")).expect("Cargo.lock");
    members
}

/// The program of `package` in the copy is `exercise-PACKAGE`, from the same
/// source, so that it never takes the place of the real one in the shared target.
fn rename_program(manifest: &Path, package: &str) {
    let text = std::fs::read_to_string(manifest).expect("a member's Cargo.toml");
    let text = text.replacen("[package]\n", "[package]\nautobins = false\n", 1);
    let program = format!("\n[[bin]]\nname = \"exercise-{package}\"\npath = \"src/main.rs\"\n");
    std::fs::write(manifest, text + &program).expect("writable copy");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("a directory entry");
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("a file type").is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&source, &target);
            }
        } else {
            std::fs::copy(&source, &target).expect("a copied file");
        }
    }
}

/// Waits for the first `pause: WHO (pid N)` line in the output and kills pid N.
fn kill_the_paused_child(output: &Path) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        let printed = std::fs::read_to_string(output).unwrap_or_default();
        let pid = printed.lines().find_map(|line| {
            let rest = line.strip_prefix("pause: ")?.split_once("(pid ")?.1;
            rest.split_once(')').map(|(pid, _)| pid.to_owned())
        });
        if let Some(pid) = pid {
            let status = Command::new("kill").args(["-KILL", &pid]).status();
            return match status {
                Ok(status) if status.success() => Ok(()),
                _ => Err(format!("could not kill the paused child {pid}")),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no child paused within {} s", DEADLINE.as_secs()))
}

/// Runs the changed program as the check says and compares.
fn check(solution: &Solution) -> Result<(), String> {
    let words: Vec<&str> = solution.command.split_whitespace().collect();
    let ["cargo", "run", "-p", package, rest @ ..] = words.as_slice() else {
        return Err("a check runs `cargo run -p PROGRAM [-- ARGS]`".into());
    };
    let args = rest.strip_prefix(&["--"][..]).unwrap_or(rest);
    if args.contains(&"--trace") && !test_support::strace_works(&solution.command) {
        return Ok(());
    }
    let output = std::env::temp_dir().join(format!("exercise-{}.out", std::process::id()));
    let log = std::fs::File::create(&output).map_err(|e| e.to_string())?;
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp");
    let mut child = Command::new(target.join("debug").join(format!("exercise-{package}")))
        .args(args)
        // Kept open and never written: a paused child waits for a line that never
        // comes, and a closed input would let it go on.
        .stdin(Stdio::piped())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    if solution.kill_paused {
        kill_the_paused_child(&output)?;
    }
    let started = Instant::now();
    let limit = match solution.outcome {
        Outcome::Exits(_) => DEADLINE,
        Outcome::RunningAfter(seconds) => Duration::from_secs(seconds),
    };
    let mut status = None;
    while started.elapsed() < limit && status.is_none() {
        std::thread::sleep(Duration::from_millis(50));
        status = child.try_wait().map_err(|e| e.to_string())?;
    }
    let interrupted = status.is_none();
    if interrupted {
        // Hung, as meant or not: SIGINT, after which the program cleans up and ends.
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let waited = Instant::now();
        while status.is_none() && waited.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
            status = child.try_wait().map_err(|e| e.to_string())?;
        }
        if status.is_none() {
            let _ = child.kill();
            status = child.wait().ok();
        }
    }
    let printed = std::fs::read_to_string(&output).unwrap_or_default();
    let _ = std::fs::remove_file(&output);
    let code = status.and_then(|s| s.code());
    let outcome = match (&solution.outcome, interrupted) {
        (Outcome::Exits(expected), false) if code == Some(*expected) => Ok(()),
        (Outcome::Exits(expected), _) => Err(format!("expected exit {expected}, got {code:?}")),
        (Outcome::RunningAfter(_), true) if code == Some(130) => Ok(()),
        (Outcome::RunningAfter(s), true) => {
            Err(format!("still running after {s} s, but SIGINT ended it with {code:?}, not 130"))
        }
        (Outcome::RunningAfter(s), false) => {
            Err(format!("expected it to be running after {s} s, but it exited with {code:?}"))
        }
    };
    let missing: Vec<&String> = solution.prints.iter().filter(|t| !printed.contains(*t)).collect();
    let there: Vec<&String> = solution.lacks.iter().filter(|t| printed.contains(*t)).collect();
    let mut wrong: Vec<String> = outcome.err().into_iter().collect();
    if !missing.is_empty() {
        wrong.push(format!("it did not print {missing:?}"));
    }
    if !there.is_empty() {
        wrong.push(format!("it printed {there:?}, which the page says it does not"));
    }
    match wrong.is_empty() {
        true => Ok(()),
        false => Err(format!("{}; it printed:\n{printed}", wrong.join("; "))),
    }
}

//! `xtask doctor` run for real: one line per check, and its exit status says
//! whether a required one failed.

use std::path::Path;
use std::process::{Command, Output};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn doctor(tmpdir: &Path) -> (Output, Vec<String>) {
    let output = Command::new(XTASK).arg("doctor").env("TMPDIR", tmpdir).output().unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    // Only a single word longer than a line (a long path) may pass 80 columns.
    let fits = |line: &str| line.len() <= 80 || !line.trim().contains(' ');
    assert!(stdout.lines().all(fits), "lines over 80 columns:\n{stdout}");
    // A check's text is wrapped to 80 columns: its lines joined again, detail lines
    // (indented 10) kept apart.
    let mut lines: Vec<String> = Vec::new();
    for line in stdout.lines() {
        match lines.last_mut() {
            Some(last) if line.starts_with("        ") && !line.starts_with("          ") => {
                last.push(' ');
                last.push_str(line.trim_start());
            }
            Some(last) if line.starts_with("           ") => {
                last.push(' ');
                last.push_str(line.trim_start());
            }
            _ => lines.push(line.to_string()),
        }
    }
    (output, lines)
}

/// The check lines: those that start with a status.
fn checks(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|line| !line.starts_with(' ') && !line.starts_with("doctor:"))
        .map(|l| l.as_str())
        .collect()
}

#[test]
fn every_check_has_a_line_and_the_status_follows_them() {
    let (output, lines) = doctor(&std::env::temp_dir());
    let checks = checks(&lines);
    let labels: Vec<&str> = checks
        .iter()
        .map(|line| line.split_once(": ").expect("status and label, then a colon").0)
        .map(|head| head.split_whitespace().nth(1).expect("a label after the status"))
        .collect();
    assert_eq!(
        labels,
        ["linux", "/dev/shm", "memory", "TMPDIR", "rust", "python", "strace"],
        "{lines:#?}"
    );
    for line in &checks {
        let status = line.split_whitespace().next().unwrap();
        assert!(["ok", "MISSING", "note"].contains(&status), "{line}");
    }
    let missing = checks.iter().any(|line| line.starts_with("MISSING"));
    assert_eq!(output.status.success(), !missing, "{lines:#?}");
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(if missing { "doctor: not ready" } else { "doctor: ready" }),
        "{last}"
    );
    assert!(checks[0].starts_with("ok      linux"), "this test runs on Linux: {}", checks[0]);
}

#[test]
fn a_missing_tmpdir_is_missing_and_fails() {
    let (output, lines) = doctor(Path::new("/no/such/directory"));
    let tmpdir = lines.iter().find(|l| l.contains(" TMPDIR: ")).expect("a TMPDIR line");
    assert!(
        tmpdir.starts_with("MISSING TMPDIR: /no/such/directory: it is not a directory"),
        "{tmpdir}"
    );
    assert_eq!(output.status.code(), Some(1), "{lines:#?}");
}

#[test]
fn a_tmpdir_too_long_for_a_socket_is_missing_and_fails() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let long = base.join("x".repeat(90usize.saturating_sub(base.as_os_str().len()).max(1)));
    std::fs::create_dir_all(&long).unwrap();
    let (output, lines) = doctor(&long);
    std::fs::remove_dir(&long).unwrap();
    let tmpdir = lines.iter().find(|l| l.contains(" TMPDIR: ")).expect("a TMPDIR line");
    assert!(tmpdir.starts_with("MISSING TMPDIR: "), "{tmpdir}");
    assert!(tmpdir.contains("need one of at most 76"), "{tmpdir}");
    assert_eq!(output.status.code(), Some(1), "{lines:#?}");
}

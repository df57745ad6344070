//! Runs the real `examples-argument` binary at small sizes and checks what happens
//! between the parent and its child processes.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use test_support::processes_with;

const BIN: &str = env!("CARGO_BIN_EXE_examples-argument");
const DEADLINE: Duration = Duration::from_secs(60);

/// A command for the program, tagged with an environment variable that every
/// child inherits, so a test can find the processes of its own run.
fn program(marker: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env("EXAMPLES_TEST_MARKER", marker);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// Runs to completion, or fails the test if the program is still running after
/// the deadline: a hang is a bug.
fn run_with_deadline(mut command: Command) -> Output {
    let child = command.spawn().expect("the program starts");
    let pid = Pid::from_raw(child.id() as i32);
    let (done, finished) = mpsc::channel();
    thread::spawn(move || done.send(child.wait_with_output()));
    match finished.recv_timeout(DEADLINE) {
        Ok(output) => output.expect("the program's output can be read"),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("the program did not finish within {DEADLINE:?}");
        }
    }
}

fn run(marker: &str, args: &[&str]) -> Output {
    run_with_deadline(program(marker, args))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that no process of this run is left, allowing the kernel a moment to
/// deliver a parent-death signal.
fn assert_no_process_left(marker: &str) {
    let started = Instant::now();
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "processes left behind: {left:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// One `error:` line from the parent. (A child that panics on purpose prints its
/// own panic message too, so "panicked" is only checked where no child is asked to.)
fn assert_error_line(output: &Output, expected_exit: i32, expected_text: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(expected_exit), "stderr: {err}");
    let error_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "want one error line, got: {err}");
    assert!(error_lines[0].contains(expected_text), "stderr: {err}");
}

fn assert_one_line_error(output: &Output, expected_exit: i32, expected_text: &str) {
    assert_error_line(output, expected_exit, expected_text);
    let err = stderr(output);
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "stderr: {err}");
}

#[test]
fn argument_scene_the_child_changes_only_its_copy() {
    let output = run("argument-scene", &["argument", "--n", "7"]);
    let out = stdout(&output);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(out.contains("=== argument:"), "{out}");
    // The child saw ones, then its own zeros ...
    assert!(out.contains("child:   [1.0, 1.0, 1.0, 1.0, 1.0]"), "{out}");
    assert!(out.contains("child:   [0.0, 0.0, 0.0, 0.0, 0.0]"), "{out}");
    assert!(out.contains("child: deserialized an array of shape (7, 7)"), "{out}");
    // ... and the parent, after the child exited, still sees ones everywhere.
    let parent_rows: Vec<&str> = out.lines().filter(|l| l.starts_with("parent:   [")).collect();
    assert_eq!(parent_rows, vec!["parent:   [1.0, 1.0, 1.0, 1.0, 1.0]"; 5], "{out}");
    assert!(out.contains("verdict: copy: the parent still sees 1.0 in all 49 elements"), "{out}");
}

#[test]
fn inherit_scene_the_forked_child_writes_its_own_pages() {
    let output = run("inherit-scene", &["inherit", "--n", "300"]);
    let out = stdout(&output);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(out.contains("=== inherit:"), "{out}");
    assert!(out.contains("child:   [0.0, 0.0, 0.0, 0.0, 0.0]"), "{out}");
    // 300 x 300 f64 is 720 KB: the child's writes copy at least that many pages, and
    // the kernel's count (pagemap) is exactly the pages the changed values lie on.
    assert!(out.contains("child: it changed 90000 values (720000 bytes, "), "{out}");
    let pages: Vec<u64> = out
        .lines()
        .find_map(|l| l.strip_prefix("child:   which lie on "))
        .map(|rest| rest.split(' ').filter_map(|word| word.parse().ok()).collect())
        .unwrap_or_else(|| panic!("no page count in: {out}"));
    assert!(pages.len() == 2 && pages[0] == pages[1], "{pages:?}: {out}");
    assert!(pages[0] >= 720_000 / 4096, "only {pages:?} pages copied: {out}");
    assert!(out.contains("; the kernel copied those "), "{out}");
    assert!(
        out.contains("verdict: copy-on-write: the parent still sees 1.0 in all 90000 elements"),
        "{out}"
    );
}

#[test]
fn no_scene_runs_every_scene_in_the_tutorials_order() {
    let output = run("every-scene", &["--n", "20"]);
    let out = stdout(&output);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let headings: Vec<&str> = out.lines().filter(|l| l.starts_with("=== ")).collect();
    assert_eq!(headings.len(), 2, "{out}");
    assert!(headings[0].starts_with("=== argument:"), "{out}");
    assert!(headings[1].starts_with("=== inherit:"), "{out}");
    assert_eq!(test_support::verdicts(&out).len(), 2, "{out}");
    assert_no_process_left("every-scene");
}

#[test]
fn bad_command_lines_get_one_clear_error_line() {
    for (args, exit, text) in [
        (&["--n", "0"][..], 2, "0 is not in 1.."),
        (&["--n", "abc"][..], 2, "invalid digit found in string"),
        (&["--n", "-5"][..], 2, "unexpected argument"),
        (&["pipe"][..], 2, "unrecognized subcommand"),
        (&["argument", "--children", "3"][..], 2, "unexpected argument"),
        // 10^10 x 10^10 f64 overflows; 10^6 x 10^6 is 8 TB: neither is allocated.
        (&["--n", "10000000000"][..], 1, "does not fit in the address space"),
        (&["inherit", "--n", "1000000"][..], 1, "choose a smaller --n"),
    ] {
        let output = run("bad-input", args);
        assert_one_line_error(&output, exit, text);
    }
}

#[test]
fn a_failing_child_fails_the_parent_in_both_scenes() {
    for scene in ["argument", "inherit"] {
        for (fault, text) in [
            ("exit", "the child process failed: exit status 3"),
            ("panic", "the child process failed: exit status 101"),
        ] {
            let marker = format!("fault-{scene}-{fault}");
            let mut command = program(&marker, &[scene, "--n", "50"]);
            command.env("EXAMPLES_CHILD_FAULT", fault);
            let output = run_with_deadline(command);
            assert_error_line(&output, 1, text);
            assert!(!stdout(&output).contains("verdict:"), "{}", stdout(&output));
            assert_no_process_left(&marker);
        }
    }
}

/// Waits until the run has a process besides the parent: the child.
fn wait_for_child(marker: &str, parent: i32) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(&pid) = processes_with(marker).iter().find(|&&p| p != parent) {
            return pid;
        }
        assert!(started.elapsed() < DEADLINE, "no child appeared");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_child_is_reported_not_waited_for_forever() {
    for scene in ["argument", "inherit"] {
        let marker = format!("kill-child-{scene}");
        let mut command = program(&marker, &[scene, "--n", "50"]);
        command.env("EXAMPLES_CHILD_FAULT", "sleep");
        let parent = command.spawn().unwrap();
        let child = wait_for_child(&marker, parent.id() as i32);
        kill(Pid::from_raw(child), Signal::SIGKILL).unwrap();
        let output = parent.wait_with_output().unwrap();
        assert_one_line_error(&output, 1, "killed by signal 9 (SIGKILL)");
        assert_no_process_left(&marker);
    }
}

#[test]
fn a_child_does_not_outlive_a_killed_parent() {
    for scene in ["argument", "inherit"] {
        let marker = format!("kill-parent-{scene}");
        let mut command = program(&marker, &[scene, "--n", "50"]);
        command.env("EXAMPLES_CHILD_FAULT", "sleep");
        let mut parent = command.spawn().unwrap();
        wait_for_child(&marker, parent.id() as i32);
        parent.kill().unwrap();
        parent.wait().unwrap();
        assert_no_process_left(&marker);
    }
}

#[test]
fn bench_prints_one_line_per_method_in_the_protocol_format() {
    let output = run("bench", &["bench", "--n", "1000", "--repeats", "1"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let out = stdout(&output);
    let methods: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(methods, ["floor", "inherit", "argument"], "{out}");
    for line in out.lines() {
        let keys: Vec<&str> =
            line.split(' ').skip(1).map(|field| field.split('=').next().unwrap()).collect();
        assert_eq!(keys, ["median", "min", "max", "peak_parent_mb", "peak_child_mb"], "{line}");
    }
    assert_no_process_left("bench");
}

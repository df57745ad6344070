//! Runs the real program at small sizes. Every run has its own marker and TMPDIR
//! (test-support) and a deadline: a hang is a failure, never a stuck test, and a
//! run that finishes must leave no process behind.

use nix::sys::signal::Signal;
use test_support::{Launch, Outcome, Run, error_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-pipe");

fn start(args: &[&str], fault: Option<&str>) -> Run {
    Launch::new(BIN, "examples-pipe", args).child_fault(fault).start()
}

fn run(args: &[&str]) -> Outcome {
    start(args, None).finish()
}

fn run_with_fault(args: &[&str], fault: &str) -> Outcome {
    start(args, Some(fault)).finish()
}

fn assert_clean_failure(output: &Outcome, code: i32) {
    assert_eq!(output.status.code(), Some(code), "stderr: {}", output.stderr);
    assert_eq!(error_lines(&output.stderr).len(), 1, "stderr: {}", output.stderr);
    assert!(!output.stdout.contains("verdict:"), "stdout: {}", output.stdout);
}

#[test]
fn pipe_scene_delivers_a_full_copy() {
    let out = run(&["pipe", "--n", "300"]);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert_eq!(out.stderr, "");
    let stdout = &out.stdout;
    assert!(stdout.starts_with("=== pipe: "), "{stdout}");
    assert!(stdout.contains("child: made ones of shape (300, 300), 720000 bytes"), "{stdout}");
    assert!(
        stdout.contains("child: top-left 5x5 corner:\nchild:   [1.0, 1.0, 1.0, 1.0, 1.0]\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("parent: top-left 5x5 corner:\nparent:   [1.0, 1.0, 1.0, 1.0, 1.0]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("parent: received 720000 bytes in "), "{stdout}");
    assert!(stdout.contains(" GB/s)"), "{stdout}");
    assert!(stdout.contains("parent: peak memory "), "{stdout}");
    assert!(stdout.contains("child: peak memory "), "{stdout}");
    let verdicts = test_support::verdicts(stdout);
    assert_eq!(verdicts.len(), 1, "{stdout}");
    assert!(
        verdicts[0].starts_with("verdict: copy: all 90000 elements arrived as 1.0"),
        "{stdout}"
    );
}

#[test]
fn default_sequence_runs_every_scene() {
    let out = run(&["--n", "200"]);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert_eq!(out.stdout.matches("=== pipe: ").count(), 1, "{}", out.stdout);
    assert!(out.stdout.contains("verdict: copy: all 40000 elements"), "{}", out.stdout);
}

#[test]
fn the_pipe_buffer_size_can_be_chosen() {
    let out = run(&["pipe", "--n", "100", "--pipe-size", "65536"]);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("its buffer widened to 65536 bytes"), "{}", out.stdout);
    assert!(out.stdout.contains("verdict: copy: all 10000 elements"), "{}", out.stdout);
}

#[test]
fn a_socketpair_carries_the_same_frame() {
    let out = run(&["pipe", "--n", "300", "--via", "socketpair"]);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("made a Unix socketpair"), "{}", out.stdout);
    assert!(out.stdout.contains("verdict: copy: all 90000 elements"), "{}", out.stdout);
}

#[test]
fn bad_command_lines_are_usage_errors() {
    for args in [
        &["--n", "0"][..],
        &["--n", "abc"],
        &["nope"],
        &["pipe", "--via", "carrier-pigeon"],
        &["pipe", "--pipe-size", "0"],
    ] {
        let out = run(args);
        assert_clean_failure(&out, 2);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn impossible_sizes_fail_before_allocating() {
    for (args, message) in [
        (&["--n", "5000000000"][..], "does not fit in the address space"),
        (&["--n", "10000000"], "of memory is available"),
        (&["--via", "socketpair", "--pipe-size", "65536"], "a socketpair has socket buffers"),
    ] {
        let out = run(args);
        assert_clean_failure(&out, 1);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert!(!out.stdout.contains("child:"), "{args:?} started a child: {}", out.stdout);
    }
}

#[test]
fn a_child_that_exits_is_a_clear_error() {
    let out = run_with_fault(&["--n", "50"], "exit");
    assert_clean_failure(&out, 1);
    assert!(out.stderr.contains("child: failing on purpose (EXAMPLES_CHILD_FAULT=exit)"));
    assert!(
        out.stderr.contains("error: the child process failed: exit status 3 ("),
        "{}",
        out.stderr
    );
}

#[test]
fn a_child_that_panics_is_a_clear_error() {
    let out = run_with_fault(&["--n", "50"], "panic");
    assert_clean_failure(&out, 1);
    assert!(
        out.stderr.contains("error: the child process failed: exit status 101"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_truncated_stream_is_a_clear_error() {
    // The child's stream is cut after the 32-byte header and half of the 80000 data
    // bytes; the child itself goes on and exits 0, as if nothing were wrong.
    let out = run_with_fault(&["--n", "100"], "truncate:40032");
    assert_clean_failure(&out, 1);
    assert!(
        out.stderr.contains(
            "error: receiving the array: the stream ended after 40000 of 80000 data bytes"
        ),
        "{}",
        out.stderr
    );
}

/// Starts a run whose child sleeps, and waits until that child exists.
fn start_with_sleeping_child() -> Run {
    let run = start(&["--n", "50"], Some("sleep"));
    run.child_pid();
    run
}

#[test]
fn sigterm_kills_the_child_and_says_so() {
    let mut run = start_with_sleeping_child();
    run.signal_parent(Signal::SIGTERM);
    let out = run.finish();
    assert_eq!(out.status.code(), Some(143), "stderr: {}", out.stderr);
    assert_eq!(error_lines(&out.stderr), ["error: interrupted by SIGTERM; cleaned up"]);
}

#[test]
fn a_killed_parent_takes_its_child_along() {
    let mut run = start_with_sleeping_child();
    run.signal_parent(Signal::SIGKILL);
    let out = run.finish();
    assert_eq!(out.status.code(), None);
}

#[test]
fn the_hidden_child_refuses_a_descriptor_that_is_not_a_pipe() {
    for (fd, message) in [("1", "3 or higher"), ("250", "is not open")] {
        let out = Launch::new(BIN, "examples-pipe", &["child", "pipe", "3", fd]).start().finish();
        assert_eq!(out.status.code(), Some(1), "stderr: {}", out.stderr);
        assert!(out.stderr.starts_with("child: error: "), "{}", out.stderr);
        assert!(out.stderr.contains(message), "{}", out.stderr);
    }
}

#[test]
fn bench_prints_one_line_per_method_in_the_protocol_format() {
    let out = run(&["bench", "--n", "1013", "--repeats", "1"]);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    let methods: Vec<&str> = out.stdout.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(methods, ["floor", "pipe"], "{}", out.stdout);
    for line in out.stdout.lines() {
        let fields: Vec<(&str, &str)> = line
            .split(' ')
            .skip(1)
            .map(|field| field.split_once('=').expect("key=value"))
            .collect();
        let keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, ["median", "min", "max", "peak_parent_mb", "peak_child_mb"], "{line}");
        for (key, value) in fields {
            assert!(value.parse::<f64>().is_ok(), "{key}={value} in {line}");
        }
    }
    // The pipe row's child received the array and reported its own peak memory.
    let pipe = out.stdout.lines().nth(1).unwrap();
    assert!(!pipe.ends_with(" peak_child_mb=0"), "{pipe}");
}

#[test]
fn an_unknown_bench_method_is_an_error() {
    let out = run(&["bench-run", "carrier-pigeon", "--n", "10"]);
    assert_clean_failure(&out, 1);
    assert!(out.stderr.contains("unknown bench method"), "{}", out.stderr);
}

#[test]
fn bench_runs_only_the_methods_asked_for() {
    let out = run(&["bench", "--methods", "floor", "--n", "1000", "--repeats", "1"]);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    let methods: Vec<&str> = out.stdout.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(methods, ["floor"], "{}", out.stdout);
    let out = run(&["bench", "--methods", "floor,carrier-pigeon", "--n", "10"]);
    assert_clean_failure(&out, 1);
    assert!(out.stderr.contains("unknown bench method \"carrier-pigeon\""), "{}", out.stderr);
}

#[test]
fn bench_refuses_flags_of_the_pipe_scene() {
    for args in [&["bench", "--via", "socketpair"][..], &["bench", "--pipe-size", "65536"]] {
        let out = run(args);
        assert_clean_failure(&out, 1);
        assert!(out.stderr.contains("applies to the scenes, not to bench"), "{}", out.stderr);
    }
}

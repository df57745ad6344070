//! The fault suite (docs/reliability.md): what tests/pipe.rs does not already try.
//! A child killed mid-scene, SIGINT, two runs at once, and more bad input. Every
//! run gets its own marker (an environment variable every process of the run
//! inherits) and its own empty TMPDIR; afterwards no process of the run may be left
//! and TMPDIR must still be empty.

use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use test_support::{Launch, Run, error_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-pipe");

/// A run with its own marker and TMPDIR (test-support).
fn start(args: &[&str], fault: Option<&str>) -> Run {
    Launch::new(BIN, "examples-pipe-faults", args).child_fault(fault).start()
}

/// The child, asleep once it has done its task, is killed: the parent reports the
/// death in one line, within a few seconds (a stream cut short by it would be only
/// the symptom, added in brackets).
#[test]
fn a_child_killed_mid_scene_fails_the_parent_promptly() {
    let mut run = start(&["pipe", "--n", "50"], Some("sleep"));
    let child = run.child_pid();
    thread::sleep(Duration::from_millis(300));
    run.kill_child(child);
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    let errors = error_lines(&outcome.stderr);
    assert_eq!(errors.len(), 1, "{}", outcome.stderr);
    assert!(
        errors[0].starts_with("error: the child process was killed by signal 9 (SIGKILL)"),
        "{}",
        outcome.stderr
    );
    assert!(!outcome.stdout.contains("verdict:"), "{}", outcome.stdout);
}

/// SIGINT (Ctrl-C) to the parent mid-scene; pipe.rs tries SIGTERM.
#[test]
fn sigint_to_the_parent_kills_the_child_and_says_so() {
    // SIGHUP too: a closed terminal gets the same cleanup.
    for (signal, code) in [(Signal::SIGINT, 130), (Signal::SIGHUP, 129)] {
        let mut run = start(&["pipe", "--n", "50"], Some("sleep"));
        run.child_pid();
        thread::sleep(Duration::from_millis(300));
        run.signal_parent(signal);
        let outcome = run.finish();
        assert_eq!(outcome.status.code(), Some(code), "{}", outcome.stderr);
        let expected = format!("error: interrupted by {signal}; cleaned up");
        assert_eq!(error_lines(&outcome.stderr), [expected.as_str()]);
    }
}

/// Two runs at the same time, each the default sequence at a small size: a pipe has
/// no name, so each run has its own.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = start(&["--n", "300"], None);
    let second = start(&["--n", "301"], None);
    for (outcome, n) in [(first.finish(), 300), (second.finish(), 301)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts = test_support::verdicts(&outcome.stdout);
        assert_eq!(verdicts.len(), 1, "{}", outcome.stdout);
        assert!(verdicts[0].contains(&format!("all {} elements arrived", n * n)), "{verdicts:?}");
    }
}

/// Bad input that pipe.rs does not try: each is one `error:` line on stderr, a
/// non-zero exit, no backtrace, and no child started.
#[test]
fn more_bad_input_is_one_clear_error() {
    for (args, code) in [
        (&["--n"][..], 2),
        (&["--n", ""][..], 2),
        (&["--n", "-5"][..], 2),
        (&["--n", "1.5"][..], 2),
        (&["--n", "18446744073709551616"][..], 2),
        (&["--via"][..], 2),
        (&["--pipe-size", "3000000000"][..], 2),
        (&["--bogus"][..], 2),
        (&["pipe", "extra"][..], 2),
        // Far above /proc/sys/fs/pipe-max-size: the kernel refuses it.
        (&["--n", "3", "--pipe-size", "2147483647"][..], 1),
    ] {
        let outcome = start(args, None).finish();
        assert_eq!(outcome.status.code(), Some(code), "{args:?}: {}", outcome.stderr);
        assert_eq!(error_lines(&outcome.stderr).len(), 1, "{args:?}: {}", outcome.stderr);
        assert!(
            !outcome.stderr.contains("panicked") && !outcome.stderr.contains("backtrace"),
            "{args:?}: {}",
            outcome.stderr
        );
        assert!(!outcome.stdout.contains("child:"), "{args:?}: {}", outcome.stdout);
    }
}

/// `| head`: standard output closed early, by the parent's line or the child's.
#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    let lines = [1, 2, 5, 9, 12, 14];
    test_support::check_closed_output(BIN, "examples-pipe-head", &["--n", "300"], &lines);
}

/// `> /dev/full`: standard output on a full device is one line, status 1.
#[test]
fn a_full_standard_output_is_one_clear_error() {
    test_support::check_full_output(BIN, "examples-pipe-full", &["--n", "300"]);
}

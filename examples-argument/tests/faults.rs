//! The fault suite (docs/reliability.md): what tests/argument.rs does not already
//! try. Signals to the parent mid-scene, two runs at once, and more bad input. Every
//! run gets its own marker (an environment variable every process of the run
//! inherits) and its own empty TMPDIR; afterwards no process of the run may be left
//! and TMPDIR must still be empty.

use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use test_support::{Launch, Run, error_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-argument");

/// A run with its own marker and TMPDIR (test-support), and SIGINT and SIGTERM at
/// their default actions, as a program started from a terminal has them.
fn start(args: &[&str], fault: Option<&str>) -> Run {
    Launch::new(BIN, "examples-argument-faults", args).child_fault(fault).default_signals().start()
}

/// SIGINT and SIGTERM to the parent, mid-scene, while its child works: the
/// plumbing's cleanup stops and reaps the child, says so in one line, and exits
/// with 128 + the signal's number, as every program does; nothing survives it.
#[test]
fn sigint_and_sigterm_to_the_parent_leave_nothing() {
    for scene in ["argument", "inherit"] {
        for signal in [Signal::SIGINT, Signal::SIGTERM] {
            let mut run = start(&[scene, "--n", "50"], Some("sleep"));
            // The child prints its first corner after the fault switch: wait for
            // the child to exist, then a moment for it to reach its task.
            run.wait_for_line("parent: created ones");
            run.child_pid();
            thread::sleep(Duration::from_millis(200));
            run.signal_parent(signal);
            let outcome = run.finish();
            assert_eq!(
                outcome.status.code(),
                Some(128 + signal as i32),
                "{scene} {signal}: {:?} {}",
                outcome.status,
                outcome.stderr
            );
            let expected = format!("error: interrupted by {signal}; cleaned up");
            assert_eq!(error_lines(&outcome.stderr), [expected.as_str()], "{scene}");
            assert!(!outcome.stdout.contains("verdict:"), "{}", outcome.stdout);
            assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        }
    }
}

/// The same as the kill test in argument.rs, with the deadline the fault suite
/// asks for: the parent reports the killed child within a few seconds.
#[test]
fn a_child_killed_mid_scene_fails_the_parent_promptly() {
    for scene in ["argument", "inherit"] {
        let mut run = start(&[scene, "--n", "50"], Some("sleep"));
        run.wait_for_line("parent: created ones");
        let child = run.child_pid();
        thread::sleep(Duration::from_millis(200));
        run.kill_child(child);
        let outcome = run.finish();
        assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
        assert_eq!(
            error_lines(&outcome.stderr),
            ["error: the child process was killed by signal 9 (SIGKILL)"],
            "{scene}"
        );
    }
}

/// Two runs at the same time, each the whole default sequence at a small size.
/// Nothing here has a name two runs could share; the test keeps it that way.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = start(&["--n", "300"], None);
    let second = start(&["--n", "301"], None);
    for (outcome, n) in [(first.finish(), 300), (second.finish(), 301)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let elements = format!("in all {} elements", n * n);
        let verdicts = test_support::verdicts(&outcome.stdout);
        assert_eq!(verdicts.len(), 2, "{}", outcome.stdout);
        assert!(verdicts.iter().all(|v| v.contains(&elements)), "{verdicts:?}");
    }
}

/// Bad input that argument.rs does not try: each is one `error:` line on stderr,
/// a non-zero exit, no backtrace, and no child started.
#[test]
fn more_bad_input_is_one_clear_error() {
    for (args, code) in [
        (&["--n"][..], 2),
        (&["--n", ""][..], 2),
        (&["--n", "1.5"][..], 2),
        (&["--n", "1e4"][..], 2),
        // One more than u64::MAX: not a number this program can take.
        (&["--n", "18446744073709551616"][..], 2),
        (&["--bogus"][..], 2),
        (&["argument", "--path", "/tmp/x"][..], 2),
        (&["inherit", "extra"][..], 2),
        // 3,037,000,500^2 * 8 bytes overflows: refused before allocating.
        (&["argument", "--n", "3037000500"][..], 1),
        // 2,000,000^2 f64 = 32 TB, twice: more than any machine here has.
        (&["argument", "--n", "2000000"][..], 1),
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

/// The child's half started by hand, with no parent of ours and no pipe handed
/// over: it reads no array, says so in one line, and changes nothing.
#[test]
fn a_child_started_by_hand_does_nothing_but_say_why() {
    let outcome = Launch::new(BIN, "examples-argument-faults", &["child", "argument", "250"])
        .start()
        .finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("child: error: descriptor 250 is not open in the child"),
        "{}",
        outcome.stderr
    );
    assert!(!outcome.stdout.contains("child:"), "{}", outcome.stdout);
}

/// `| head`: standard output closed early, by the parent's line or a child's.
#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    let lines = [1, 2, 4, 10, 20, 30];
    test_support::check_closed_output(BIN, "examples-argument-head", &["--n", "300"], &lines);
}

/// `> /dev/full`: standard output on a full device is one line, status 1.
#[test]
fn a_full_standard_output_is_one_clear_error() {
    test_support::check_full_output(BIN, "examples-argument-full", &["--n", "300"]);
}

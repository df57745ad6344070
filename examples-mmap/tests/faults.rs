//! The fault suite (docs/reliability.md): what tests/mmap.rs does not already try.
//! Killed children and SIGINT in the one-child scenes, what a killed parent leaves,
//! two runs at once, the permissions of the file, and more bad paths and input.
//! Every
//! run gets its own marker (an environment variable every process of the run
//! inherits) and its own empty TMPDIR; afterwards no process of the run may be left
//! and TMPDIR must still be empty.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use test_support::{Launch, Run, error_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-mmap");

/// A run with its own marker and TMPDIR (test-support).
fn start(args: &[&str], fault: Option<&str>) -> Run {
    start_in(args, fault, None)
}

/// `tmpdir`: a TMPDIR of the test's choosing, not checked afterwards; None: a
/// fresh empty one, checked.
fn start_in(args: &[&str], fault: Option<&str>, tmpdir: Option<&str>) -> Run {
    Launch::new(BIN, "examples-mmap-faults", args).child_fault(fault).tmpdir(tmpdir).start()
}

/// The scenes with one child, which tests/mmap.rs fails only by exit and panic: a
/// child killed mid-scene is reported within a few seconds, and the scratch
/// directory is removed.
#[test]
fn a_child_killed_mid_scene_fails_the_parent_promptly() {
    for scene in ["one-child", "copy-on-write"] {
        let mut run = start(&[scene, "--n", "100"], Some("sleep"));
        let child = run.children(1)[0];
        thread::sleep(Duration::from_millis(300));
        run.kill_child(child);
        let outcome = run.finish();
        assert_eq!(outcome.status.code(), Some(1), "{scene}: {}", outcome.stderr);
        assert_eq!(
            error_lines(&outcome.stderr),
            ["error: the child process was killed by signal 9 (SIGKILL)"],
            "{scene}"
        );
    }
}

/// SIGINT and SIGTERM in the one-child scenes (tests/mmap.rs tries them in
/// many-children-locked), SIGHUP in many-children: one line, and the scratch
/// directory is gone.
#[test]
fn sigint_sigterm_and_sighup_clean_up() {
    for (scene, signal, code) in [
        ("one-child", Signal::SIGINT, 130),
        ("copy-on-write", Signal::SIGTERM, 143),
        // The terminal closed: the same cleanup as SIGTERM.
        ("many-children", Signal::SIGHUP, 129),
    ] {
        let mut run = start(&[scene, "--n", "100"], Some("sleep"));
        run.children(1);
        thread::sleep(Duration::from_millis(300));
        run.signal_parent(signal);
        let outcome = run.finish();
        assert_eq!(outcome.status.code(), Some(code), "{scene}: {}", outcome.stderr);
        let expected = format!("error: interrupted by {signal}; cleaned up");
        assert_eq!(error_lines(&outcome.stderr), [expected.as_str()]);
    }
}

/// SIGKILL gives the parent no chance to remove its scratch directory, but its
/// watchdog does, and the children go by their parent-death signal: nothing of the
/// run is left in TMPDIR (the scratch directory existed until then, 0700).
#[test]
fn a_parent_killed_mid_scene_leaves_nothing() {
    let mut run = start(&["many-children", "--n", "1000", "--children", "3"], Some("sleep"));
    run.children(3);
    let scratch: Vec<_> = std::fs::read_dir(run.tmpdir()).unwrap().flatten().collect();
    assert_eq!(scratch.len(), 1, "{scratch:?}");
    assert!(scratch[0].file_name().to_string_lossy().starts_with("examples-mmap-"));
    assert_eq!(scratch[0].metadata().unwrap().permissions().mode() & 0o777, 0o700);
    run.signal_parent(Signal::SIGKILL);
    let outcome = run.finish();
    assert_eq!(outcome.status.signal(), Some(9));
}

/// Two runs at the same time, each the whole default sequence at a small size,
/// each with its own scratch directory.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = start(&["--n", "3000", "--children", "3"], None);
    let second = start(&["--n", "3001", "--children", "3"], None);
    for (outcome, n) in [(first.finish(), 3000), (second.finish(), 3001)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts = test_support::verdicts(&outcome.stdout);
        assert_eq!(verdicts.len(), 4, "{}", outcome.stdout);
        assert!(verdicts[2].contains(&format!("all {n} values are exactly 3")), "{verdicts:?}");
    }
}

/// A file the program creates at --path is the user's alone, like the scratch
/// directory (0700) that holds the default file.
#[test]
fn a_file_created_at_path_is_the_users_alone() {
    let dir =
        std::env::temp_dir().join(format!("examples-mmap-faults-{}-perm", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kept.f32");
    let outcome =
        start(&["one-child", "--n", "100", "--path", path.to_str().unwrap()], None).finish();
    assert!(outcome.status.success(), "{}", outcome.stderr);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(mode & 0o777, 0o600);
}

/// Paths and input that tests/mmap.rs does not try: each is one `error:` line,
/// a non-zero exit, no backtrace and no child.
#[test]
fn more_bad_paths_and_input_are_one_clear_error() {
    for (args, code, text) in [
        // A directory, not a file.
        (&["one-child", "--path", "/tmp"][..], 1, "cannot create /tmp"),
        // Under a file, not a directory.
        (&["one-child", "--path", "/proc/self/status/data.f32"][..], 1, "cannot create"),
        (&["one-child", "--path", ""][..], 2, "a value is required"),
        (&["--n"][..], 2, ""),
        (&["--n", ""][..], 2, ""),
        (&["--n", "1.5"][..], 2, ""),
        (&["--n", "18446744073709551616"][..], 2, ""),
        (&["--children", "abc"][..], 2, ""),
        (&["--bogus"][..], 2, ""),
        (&["one-child", "extra"][..], 2, ""),
        (&["one-child", "--name", "x"][..], 2, ""),
        // bench measures one child of this program; it refuses the scenes' flags.
        (&["bench", "--n", "10", "--children", "3"][..], 1, "--children applies to"),
        (&["bench", "--n", "10", "--child-cmd", "true"][..], 1, "--child-cmd applies to"),
    ] {
        let outcome = start(args, None).finish();
        assert_eq!(outcome.status.code(), Some(code), "{args:?}: {}", outcome.stderr);
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{args:?}: {}", outcome.stderr);
        assert!(errors[0].contains(text), "{args:?}: {}", outcome.stderr);
        assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        assert!(!outcome.stdout.contains("child"), "{args:?}: {}", outcome.stdout);
    }
    // TMPDIR, where the scratch directory goes, missing or not a directory.
    for tmpdir in ["/nonexistent/examples-mmap", "/proc/self/status"] {
        let outcome = start_in(&["one-child", "--n", "10"], None, Some(tmpdir)).finish();
        assert_eq!(outcome.status.code(), Some(1), "{tmpdir}: {}", outcome.stderr);
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{tmpdir}: {}", outcome.stderr);
        let expected = format!("error: cannot create a directory in {tmpdir}");
        assert!(errors[0].starts_with(&expected), "{}", outcome.stderr);
    }
}

/// `| head`: standard output closed early, by the parent's line or a child's.
#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    let args = ["--n", "100000", "--children", "4"];
    test_support::check_closed_output(BIN, "examples-mmap-head", &args, &[1, 3, 4, 9, 15, 25]);
}

/// --pause holds this program's own child; another program cannot be held: one
/// clear line, at the command line. bench measures as it is, without pauses.
#[test]
fn pause_is_refused_where_no_child_can_be_held() {
    for (args, code) in [
        (&["one-child", "--pause", "--child-cmd", "true"][..], 2),
        (&["bench", "--n", "10", "--pause"][..], 1),
    ] {
        let outcome = start(args, None).finish();
        assert_eq!(outcome.status.code(), Some(code), "{args:?}: {}", outcome.stderr);
        assert_eq!(error_lines(&outcome.stderr).len(), 1, "{args:?}: {}", outcome.stderr);
    }
}

/// The watchdog's own SIGINT, SIGTERM or SIGHUP ends it within a few seconds and
/// removes nothing: the parent is alive, and owns its scratch directory, which it
/// still removes itself at the end.
#[test]
fn a_signalled_watchdog_ends_and_removes_nothing() {
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let mut run = start(&["many-children", "--n", "1000", "--children", "2"], Some("sleep"));
        run.children(2);
        let watchdog: Vec<i32> = test_support::every_process_with(run.marker())
            .into_iter()
            .filter(|pid| !test_support::processes_with(run.marker()).contains(pid))
            .collect();
        assert_eq!(watchdog.len(), 1, "one watchdog per run");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(watchdog[0]), signal).unwrap();
        let gone = std::time::Instant::now();
        while test_support::every_process_with(run.marker()).contains(&watchdog[0]) {
            assert!(gone.elapsed() < Duration::from_secs(3), "{signal}: the watchdog lives on");
            thread::sleep(Duration::from_millis(20));
        }
        let left = std::fs::read_dir(run.tmpdir()).unwrap().count();
        assert_eq!(left, 1, "{signal}: the watchdog removed the live run's directory");
        run.signal_parent(Signal::SIGINT);
        assert_eq!(run.finish().status.code(), Some(130));
    }
}

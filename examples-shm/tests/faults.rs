//! The fault suite (docs/reliability.md): what tests/shm.rs does not already try.
//! Faults in the copy-in and anonymous scenes, SIGTERM in named, two runs at once
//! with default names, and more bad input. Every run gets its own marker (an
//! environment variable every process of the run inherits) and its own empty
//! TMPDIR; afterwards no process of the run may be left, TMPDIR must still be
//! empty, and /dev/shm must hold no segment with the run's default name.

use nix::sys::signal::Signal;
use test_support::{Launch, Outcome, Run, error_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-shm");

/// A run with its own marker and TMPDIR (test-support).
fn start(args: &[&str], fault: Option<&str>) -> Run {
    Launch::new(BIN, "examples-shm-faults", args).child_fault(fault).start()
}

/// `Run::finish` (nothing of the run left: no process, nothing in TMPDIR), and
/// no segment in /dev/shm with the run's default name either.
fn finish(run: Run) -> Outcome {
    let parent = run.pid();
    let outcome = run.finish();
    let segments = segments_of(parent);
    assert!(segments.is_empty(), "left in /dev/shm: {segments:?}");
    outcome
}

/// Segments in /dev/shm with the default name of a run whose parent is `pid`:
/// "exshm-<pid>-<random>".
fn segments_of(pid: u32) -> Vec<String> {
    let prefix = format!("exshm-{pid}-");
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

/// The forked child of copy-in (shm.rs kills the children of named and anonymous)
/// is killed mid-scene: one line, within a few seconds, nothing left.
#[test]
fn a_child_killed_in_copy_in_fails_the_parent_promptly() {
    let mut run = start(&["copy-in", "--n", "1000"], Some("sleep-after"));
    run.wait_for_line("child: forked");
    let child = run.child_pid();
    run.kill_child(child);
    let outcome = finish(run);
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    assert_eq!(
        error_lines(&outcome.stderr),
        ["error: the child process was killed by signal 9 (SIGKILL)"]
    );
}

/// The signals shm.rs does not send: SIGTERM in named with a default name, SIGINT
/// in anonymous. One line, exit 128 + the signal, nothing left.
#[test]
fn sigint_and_sigterm_in_the_other_scenes_clean_up() {
    for (scene, signal, ready) in [
        ("named", Signal::SIGTERM, "child: attached to"),
        ("anonymous", Signal::SIGINT, "child: forked"),
        // The terminal closed: the same cleanup as SIGTERM, the name unlinked.
        ("copy-in", Signal::SIGHUP, "child: forked"),
    ] {
        let mut run = start(&[scene, "--n", "1000"], Some("sleep-after"));
        run.wait_for_line(ready);
        run.signal_parent(signal);
        let outcome = finish(run);
        assert_eq!(outcome.status.code(), Some(128 + signal as i32), "{scene}: {}", outcome.stderr);
        let expected = format!("error: interrupted by {signal}; cleaned up");
        assert_eq!(error_lines(&outcome.stderr), [expected.as_str()], "{scene}");
    }
}

/// SIGKILL of the parent in copy-in (shm.rs tries named and anonymous): the
/// mapping has no name, so nothing can be left but the child, which dies by its
/// parent-death signal.
#[test]
fn a_parent_killed_in_copy_in_leaves_nothing() {
    let mut run = start(&["copy-in", "--n", "1000"], Some("sleep-after"));
    run.wait_for_line("child: forked");
    run.signal_parent(Signal::SIGKILL);
    let outcome = finish(run);
    assert_eq!(outcome.status.code(), None, "killed, not exited");
}

/// Two runs at the same time, each the whole default sequence at a small size
/// with the default segment name: each run's name is its own (pid and random).
#[test]
fn two_runs_at_once_with_default_names_do_not_interfere() {
    let first = start(&["--n", "3000"], None);
    let second = start(&["--n", "3001"], None);
    for (outcome, n) in [(finish(first), 3000), (finish(second), 3001)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts = test_support::verdicts(&outcome.stdout);
        assert_eq!(verdicts.len(), 3, "{}", outcome.stdout);
        let elements = format!("in all {n} elements");
        assert!(verdicts.iter().all(|v| v.contains(&elements)), "{verdicts:?}");
    }
}

/// Bad input that shm.rs does not try: one `error:` line, a non-zero exit, no
/// backtrace, and no segment or child made.
#[test]
fn more_bad_input_is_one_clear_error() {
    for (args, code) in [
        (&["--n"][..], 2),
        (&["--n", ""][..], 2),
        (&["--n", "-5"][..], 2),
        (&["--n", "1.5"][..], 2),
        (&["--n", "18446744073709551616"][..], 2),
        (&["--bogus"][..], 2),
        (&["named", "extra"][..], 2),
        (&["named", "--name", ""][..], 2),
        (&["named", "--name", ".."][..], 2),
        (&["named", "--name", "café"][..], 2),
        // bench makes its own segments with its own child: named's flags are refused.
        (&["bench", "--n", "10", "--name", "x"][..], 1),
        (&["bench", "--n", "10", "--keep"][..], 1),
        (&["bench", "--n", "10", "--replace"][..], 1),
        (&["bench", "--n", "10", "--child-cmd", "true"][..], 1),
        // 2^61 f64 is 2^64 bytes: more than any address space.
        (&["named", "--n", "2305843009213693952"][..], 1),
    ] {
        let outcome = finish(start(args, None));
        assert_eq!(outcome.status.code(), Some(code), "{args:?}: {}", outcome.stderr);
        assert_eq!(error_lines(&outcome.stderr).len(), 1, "{args:?}: {}", outcome.stderr);
        assert!(
            !outcome.stderr.contains("panicked") && !outcome.stderr.contains("backtrace"),
            "{args:?}: {}",
            outcome.stderr
        );
        assert!(!outcome.stdout.contains("parent: created"), "{args:?}");
    }
}

/// A name that does not exist, where one is opened rather than created: the
/// hidden child, started by hand as its parent would start it.
#[test]
fn opening_a_missing_segment_is_one_clear_error() {
    let name = format!("/exshm-t{}-missing", std::process::id());
    let run = Launch::new(BIN, "examples-shm-faults", &["child", "named", &name, "10"]).start();
    let outcome = finish(run);
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    // A child's error line names the child: the one `error:` line is the parent's.
    assert_eq!(
        outcome.stderr.lines().collect::<Vec<_>>(),
        [format!("child: error: there is no shared-memory segment named {name}").as_str()]
    );
}

/// `| head`: standard output closed early, by the parent's line or a child's.
#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    let args = ["--n", "100000"];
    test_support::check_closed_output(BIN, "examples-shm-head", &args, &[1, 3, 4, 6, 15, 18]);
}

/// `> /dev/full`: standard output on a full device is one line, status 1.
#[test]
fn a_full_standard_output_is_one_clear_error() {
    test_support::check_full_output(BIN, "examples-shm-full", &["--n", "1000"]);
}

/// The inode of /dev/shm/NAME, if there is such a segment.
fn inode_of(name: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/dev/shm/{name}")).ok().map(|meta| meta.ino())
}

/// Run A makes `--name X`; run B takes the name with `--replace` while A still runs;
/// then A is interrupted. A's cleanup leaves the name alone: it holds B's segment,
/// not A's. B's own cleanup removes it.
#[test]
fn an_interrupted_run_leaves_a_name_another_run_took() {
    let name = format!("exshm-t{}-taken", std::process::id());
    let args = ["named", "--n", "1000", "--name", &name];
    let mut first = start(&args, Some("sleep"));
    first.children(1);
    let first_segment = inode_of(&name).expect("the first run's segment");
    let mut second = start(&[&args[..], &["--replace"]].concat(), Some("sleep"));
    second.children(1);
    let taken = std::time::Instant::now();
    let second_segment = loop {
        match inode_of(&name) {
            Some(inode) if inode != first_segment => break inode,
            _ => assert!(taken.elapsed() < test_support::PROMPTLY, "the name was never taken"),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    first.signal_parent(Signal::SIGINT);
    assert_eq!(finish(first).status.code(), Some(130));
    assert_eq!(inode_of(&name), Some(second_segment), "the first run removed the second's");
    second.signal_parent(Signal::SIGINT);
    assert_eq!(finish(second).status.code(), Some(130));
    assert_eq!(inode_of(&name), None, "the second run's own cleanup removes it");
}

/// /dev/shm (a tmpfs of its own, 64 KiB, in a mount namespace) too small for the
/// segment: one line that says so in sizes a person reads, and nothing is made.
#[test]
fn a_full_dev_shm_is_one_clear_error() {
    for args in [&["named", "--n", "100000"][..], &["bench", "--n", "100000", "--repeats", "1"]] {
        let launch = Launch::new(BIN, "examples-shm-faults", args).with_small_dev_shm(c"size=64k");
        let Some(launch) = launch else {
            eprintln!("skipped: a mount namespace of its own needs root");
            return;
        };
        let outcome = finish(launch.start());
        assert_eq!(outcome.status.code(), Some(1), "{args:?}: {}", outcome.stderr);
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{args:?}: {}", outcome.stderr);
        assert!(errors[0].contains(" /exshm-"), "{}", errors[0]);
        let said = " needs 800000 bytes; /dev/shm has 65536 bytes free";
        assert!(errors[0].ends_with(said), "{}", errors[0]);
        assert!(!errors[0].contains("Bad address") && !errors[0].contains(" 0 MB"));
    }
}

/// The named scene's flags given to a scene without a name: said, not ignored, in
/// lines of at most 80 columns; no segment is made.
#[test]
fn the_named_scenes_flags_elsewhere_are_said_to_be_unused() {
    let name = format!("exshm-t{}-unused", std::process::id());
    for scene in ["anonymous", "copy-in"] {
        let args = [scene, "--n", "1000", "--name", &name, "--keep", "--replace"];
        let outcome = finish(start(&args, None));
        assert!(outcome.status.success(), "{scene}: {}", outcome.stderr);
        let said = "parent: --name, --keep, --replace are not used here:\n\
                    parent:   this memory has no name, and only a fork of this program gets it";
        assert!(outcome.stdout.contains(said), "{scene}: {}", outcome.stdout);
        assert_eq!(inode_of(&name), None, "{scene}");
    }
}

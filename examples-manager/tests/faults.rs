//! The fault suite (docs/reliability.md): what tests/cli.rs does not already try.
//! A killed parent, SIGTERM, a server that panics or dies while a child waits on
//! it, a dead client among busy ones, two runs at once, and a TMPDIR the sockets
//! cannot live in. Every
//! run gets its own marker (an environment variable every process of the run
//! inherits) and its own empty TMPDIR; afterwards no process of the run may be left
//! and TMPDIR must still be empty.

use std::os::unix::process::ExitStatusExt;
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use test_support::{Launch, Run, error_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-manager");

/// A run with its own marker and TMPDIR (test-support). `fault`: which switch
/// (EXAMPLES_CHILD_FAULT or EXAMPLES_SERVER_FAULT), and how.
fn start(args: &[&str], fault: Option<(&str, &str)>) -> Run {
    start_in(args, fault, None)
}

/// `tmpdir`: a TMPDIR of the test's choosing, not checked afterwards; None: a
/// fresh empty one, checked. Its name is short: the sockets live in there, and a
/// socket's path must fit in 108 bytes.
fn start_in(args: &[&str], fault: Option<(&str, &str)>, tmpdir: Option<&str>) -> Run {
    let launch = Launch::new(BIN, "examples-manager-faults", args)
        .env_remove("EXAMPLES_SERVER_FAULT")
        .short_tmpdir("emf")
        .tmpdir(tmpdir);
    match fault {
        Some((switch, fault)) => launch.env(switch, fault),
        None => launch,
    }
    .start()
}

/// Waits until the run has `count` processes started in the role `role` ("server"
/// or "child": `examples-manager child ROLE SOCKET`); returns their pids, oldest first.
fn processes(run: &Run, role: &str, count: usize) -> Vec<i32> {
    let what = format!("the {role} process");
    let mut found = run.wait_for_processes(count, &what, |pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmdline.split(|&b| b == 0).nth(2) == Some(role.as_bytes())
    });
    found.sort();
    found
}

/// SIGKILL of the parent mid-scene: no code of it runs, so the server and the
/// children must end by themselves (their parent-death signal), and no socket
/// directory may be left (each is removed as soon as its process has called back).
#[test]
fn a_parent_killed_mid_scene_leaves_nothing() {
    for (args, children) in [
        (&["child-proxy", "--n", "100"][..], 1),
        (&["mutate", "--n", "100", "--clients", "3"][..], 1),
    ] {
        let mut run = start(args, Some(("EXAMPLES_CHILD_FAULT", "sleep")));
        processes(&run, "server", 1);
        processes(&run, "child", children);
        // Killed while a process is still calling back, the parent would leave its
        // socket directory: the limit docs/reliability.md states.
        run.wait_until_connected();
        thread::sleep(Duration::from_millis(300));
        run.signal_parent(Signal::SIGKILL);
        let outcome = run.finish();
        assert_eq!(outcome.status.signal(), Some(9), "{args:?}");
    }
}

/// SIGTERM to the parent mid-scene (cli.rs tries SIGINT): one line, exit 143, and
/// the server and the child end with it.
#[test]
fn sigterm_to_the_parent_cleans_up() {
    let mut run = start(&["child-proxy", "--n", "100"], Some(("EXAMPLES_CHILD_FAULT", "sleep")));
    processes(&run, "child", 1);
    thread::sleep(Duration::from_millis(300));
    run.signal_parent(Signal::SIGTERM);
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(143), "{}", outcome.stderr);
    assert_eq!(error_lines(&outcome.stderr), ["error: interrupted by SIGTERM; cleaned up"]);
}

/// The server dying in ways cli.rs does not try: a panic or an exit before it
/// answers (the parent waits for its first answer before a scene uses it), in every
/// scene, and a SIGKILL while the mutate scene's clients use it. The parent says how
/// the server ended, in one line, within a few seconds.
#[test]
fn a_server_that_dies_fails_the_scene_promptly() {
    for scene in ["hosted-sum", "child-proxy", "slice", "mutate"] {
        for (fault, status) in [("panic", 101), ("exit", 3)] {
            let args = [scene, "--n", "100", "--clients", "2"];
            let outcome = start(&args, Some(("EXAMPLES_SERVER_FAULT", fault))).finish();
            assert_eq!(outcome.status.code(), Some(1), "{args:?}: {}", outcome.stderr);
            let expected = format!(
                "error: the server process failed: exit status {status}: the server did not answer `shape`"
            );
            let errors = error_lines(&outcome.stderr);
            assert!(errors.len() == 1 && errors[0].starts_with(&expected), "{args:?}: {errors:?}");
            assert!(!outcome.stdout.contains("verdict:"), "{}", outcome.stdout);
        }
    }

    // Killed while a child works: whether a child or the parent notices first, the
    // server's death is the story, in one line.
    let mut run = start(&["mutate", "--n", "100000000", "--clients", "4"], None);
    let server = processes(&run, "server", 1)[0];
    processes(&run, "child", 1);
    run.kill_child(server);
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    let errors = error_lines(&outcome.stderr);
    assert_eq!(errors.len(), 1, "{}", outcome.stderr);
    assert!(
        errors[0].starts_with("error: the server process was killed by signal 9 (SIGKILL): "),
        "{}",
        outcome.stderr
    );
}

/// Two runs at the same time, each the whole default sequence at a small size:
/// each has its own server, sockets and children.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = start(&["--n", "2000", "--clients", "2"], None);
    let second = start(&["--n", "3000", "--clients", "2"], None);
    for (outcome, n) in [(first.finish(), 2000), (second.finish(), 3000)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts = test_support::verdicts(&outcome.stdout);
        assert_eq!(verdicts.len(), 5, "{}", outcome.stdout);
        assert!(
            verdicts[4].contains(&format!("left exactly 2 in all {n} elements")),
            "{verdicts:?}"
        );
    }
}

/// The only path this program uses is TMPDIR, where its sockets live. One it
/// cannot use is one clear error line, with no process started and no backtrace.
#[test]
fn a_tmpdir_the_sockets_cannot_live_in_is_one_clear_error() {
    let long = format!("/tmp/{}", "d".repeat(100));
    for tmpdir in ["/nonexistent/examples-manager", "/proc/self/status", &long] {
        let outcome = start_in(&["slice", "--n", "8"], None, Some(tmpdir)).finish();
        assert_eq!(outcome.status.code(), Some(1), "{tmpdir}: {}", outcome.stderr);
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{tmpdir}: {}", outcome.stderr);
        assert!(errors[0].contains("TMPDIR"), "{tmpdir}: {}", outcome.stderr);
        assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        assert!(!outcome.stdout.contains("parent: the server"), "{}", outcome.stdout);
    }
}

/// The socket directories are made by ipc-channel with the default permissions, so
/// the program sets a umask of 077 before making them: they and their sockets are
/// the user's alone. They last only until the process called back, so the test
/// reads the umask the parent works under, mid-scene.
#[test]
fn what_the_parent_creates_is_the_users_alone() {
    let mut run = start(&["child-proxy", "--n", "8"], Some(("EXAMPLES_CHILD_FAULT", "sleep")));
    processes(&run, "child", 1);
    let status = std::fs::read_to_string(format!("/proc/{}/status", run.pid())).unwrap();
    let umask = status.lines().find_map(|line| line.strip_prefix("Umask:")).map(str::trim);
    run.signal_parent(Signal::SIGTERM);
    run.finish();
    assert_eq!(umask, Some("0077"));
}

/// Bad input that cli.rs does not try: one `error:` line, a non-zero exit, no
/// backtrace, and no server started.
#[test]
fn more_bad_input_is_one_clear_error() {
    for (args, code) in [
        (&["--n"][..], 2),
        (&["--n", ""][..], 2),
        (&["--n", "1.5"][..], 2),
        (&["--n", "18446744073709551616"][..], 2),
        (&["--clients", "abc"][..], 2),
        (&["--clients", "-1"][..], 2),
        (&["--bogus"][..], 2),
        (&["slice", "extra"][..], 2),
        (&["mutate", "--path", "/tmp/x"][..], 2),
        // bench measures one child; --clients belongs to the mutate scene.
        (&["bench", "--n", "10", "--clients", "3"][..], 1),
        // 2^61 f64: 2^64 bytes, one more than any address space.
        (&["mutate", "--n", "2305843009213693952"][..], 1),
    ] {
        let outcome = start(args, None).finish();
        assert_eq!(outcome.status.code(), Some(code), "{args:?}: {}", outcome.stderr);
        assert_eq!(error_lines(&outcome.stderr).len(), 1, "{args:?}: {}", outcome.stderr);
        assert!(
            !outcome.stderr.contains("panicked") && !outcome.stderr.contains("backtrace"),
            "{args:?}: {}",
            outcome.stderr
        );
        assert!(!outcome.stdout.contains("parent: the server"), "{args:?}");
    }
}

/// `| head`: standard output closed early, by the parent's line or a child's.
#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    let args = ["--n", "1000", "--clients", "2"];
    test_support::check_closed_output(BIN, "em-head", &args, &[1, 2, 5, 9, 14, 22, 30]);
}

/// `> /dev/full`: standard output on a full device is one line, status 1.
#[test]
fn a_full_standard_output_is_one_clear_error() {
    test_support::check_full_output(BIN, "em-full", &["--n", "1000", "--clients", "2"]);
}

/// A TMPDIR whose name is not UTF-8, which ipc-channel cannot take for a socket's
/// path (it panicked): one line that names TMPDIR, and nothing left there. A newline
/// in the name is no problem: that run goes as usual.
#[test]
fn a_tmpdir_that_is_not_utf8_is_one_clear_error() {
    test_support::check_tmpdir_not_utf8(|name| {
        Launch::new(BIN, "examples-manager-faults", &["slice", "--n", "8"])
            .short_tmpdir("emf")
            .tmpdir_named(name)
            .start()
    });
}

/// A limit on processes (`ulimit -u`) that 60 clients exceed: one line, status 1,
/// and nothing left of the processes that did start.
#[test]
fn a_limit_on_processes_is_one_clear_error() {
    let args = ["mutate", "--n", "100", "--clients", "60"];
    test_support::check_process_limit(
        Launch::new(BIN, "examples-manager-faults", &args).short_tmpdir("emf"),
    );
}

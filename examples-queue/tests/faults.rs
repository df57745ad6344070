//! The fault suite (docs/reliability.md): what tests/queue.rs does not already try.
//! Killed children and parents mid-scene, SIGINT, two runs at once, and a TMPDIR
//! the sockets cannot live in. Every
//! run gets its own marker (an environment variable every process of the run
//! inherits) and its own empty TMPDIR; afterwards no process of the run may be left
//! and TMPDIR must still be empty.

use std::os::unix::process::ExitStatusExt;
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use test_support::{Launch, Run, error_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-queue");

/// A run with its own marker and TMPDIR (test-support).
fn start(args: &[&str], fault: Option<&str>) -> Run {
    start_in(args, fault, None)
}

/// `tmpdir`: a TMPDIR of the test's choosing, not checked afterwards; None: a
/// fresh empty one, checked. Its name is short: the sockets live in there, and a
/// socket's path must fit in 108 bytes.
fn start_in(args: &[&str], fault: Option<&str>, tmpdir: Option<&str>) -> Run {
    Launch::new(BIN, "examples-queue-faults", args)
        .child_fault(fault)
        .short_tmpdir("eqf")
        .tmpdir(tmpdir)
        .start()
}

/// Every scene, with the children asleep in their task (EXAMPLES_CHILD_FAULT=sleep)
/// until the test kills one with SIGKILL: the parent says which child died and how,
/// within a few seconds, and kills and reaps the others.
#[test]
fn a_child_killed_mid_scene_fails_the_parent_promptly() {
    for (args, children, expected) in [
        (
            &["queue", "--n", "8"][..],
            1,
            "error: the child process was killed by signal 9 (SIGKILL)",
        ),
        (
            &["argument-and-queue", "--n", "8"][..],
            1,
            "error: the child process was killed by signal 9 (SIGKILL)",
        ),
        // The other two producers sleep on with their put ends open: the queue does
        // not close, and the parent must not wait for them.
        (
            &["many-producers", "--n", "8", "--producers", "3"][..],
            3,
            "was killed by signal 9 (SIGKILL)",
        ),
    ] {
        let mut run = start(args, Some("sleep"));
        let pids = run.children(children);
        // Let the children reach their task (connected, asleep).
        run.wait_until_connected();
        thread::sleep(Duration::from_millis(300));
        run.kill_child(pids[0]);
        let outcome = run.finish();
        assert_eq!(outcome.status.code(), Some(1), "{args:?}: {}", outcome.stderr);
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{args:?}: {}", outcome.stderr);
        assert!(errors[0].contains(expected), "{args:?}: {}", outcome.stderr);
        assert!(!outcome.stdout.contains("verdict:"), "{}", outcome.stdout);
    }
}

/// SIGKILL of the parent mid-scene: no code of it runs, so the children must notice
/// by themselves (their parent-death signal) and the socket directories must
/// already be gone (each is removed as soon as its child has connected).
#[test]
fn a_parent_killed_mid_scene_leaves_nothing() {
    for (args, children) in [
        (&["queue", "--n", "8"][..], 1),
        (&["argument-and-queue", "--n", "8"][..], 1),
        (&["many-producers", "--n", "8", "--producers", "3"][..], 3),
    ] {
        let mut run = start(args, Some("sleep"));
        run.children(children);
        // Killed while a child is still connecting, the parent would leave that
        // child's socket directory: the limit docs/reliability.md states.
        run.wait_until_connected();
        thread::sleep(Duration::from_millis(300));
        run.signal_parent(Signal::SIGKILL);
        let outcome = run.finish();
        assert_eq!(outcome.status.signal(), Some(9), "{args:?}");
    }
}

/// SIGINT (Ctrl-C) and SIGTERM to the parent mid-scene: it kills its children,
/// removes what it made, and says so in one line. (queue.rs tries SIGTERM in
/// many-producers.)
#[test]
fn sigint_and_sigterm_to_the_parent_clean_up() {
    for (args, signal) in [
        (&["queue", "--n", "8"][..], Signal::SIGINT),
        (&["argument-and-queue", "--n", "8"][..], Signal::SIGTERM),
        (&["many-producers", "--n", "8", "--producers", "2"][..], Signal::SIGINT),
    ] {
        let mut run = start(args, Some("sleep"));
        run.children(1);
        run.wait_for_line("parent: start");
        thread::sleep(Duration::from_millis(300));
        run.signal_parent(signal);
        let outcome = run.finish();
        assert_eq!(
            outcome.status.code(),
            Some(128 + signal as i32),
            "{args:?}: {}",
            outcome.stderr
        );
        let expected = format!("error: interrupted by {signal}; cleaned up");
        assert_eq!(error_lines(&outcome.stderr), [expected.as_str()], "{args:?}");
    }
}

/// Two runs at the same time, each the whole default sequence at a small size:
/// each has its own sockets and its own children.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = start(&["--n", "40", "--producers", "3"], None);
    let second = start(&["--n", "41", "--producers", "3"], None);
    for (outcome, n) in [(first.finish(), 40), (second.finish(), 41)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts = test_support::verdicts(&outcome.stdout);
        assert_eq!(verdicts.len(), 3, "{}", outcome.stdout);
        assert!(verdicts[0].contains(&format!("in all {} elements", n * n)));
        assert!(verdicts[2].contains(&format!("all {} elements right", 3 * n * n)));
    }
}

/// The only path this program uses is TMPDIR, where its sockets live. One it
/// cannot use is one clear error line, with no child started and no backtrace.
#[test]
fn a_tmpdir_the_sockets_cannot_live_in_is_one_clear_error() {
    let long = format!("/tmp/{}", "d".repeat(100));
    for (tmpdir, expected) in [
        ("/nonexistent/examples-queue", "TMPDIR"),
        // A file, not a directory.
        ("/proc/self/status", "TMPDIR"),
        // A socket's path must fit in 108 bytes; this one would be cut short.
        (long.as_str(), "TMPDIR"),
    ] {
        let outcome = start_in(&["queue", "--n", "8"], None, Some(tmpdir)).finish();
        assert_eq!(outcome.status.code(), Some(1), "{tmpdir}: {}", outcome.stderr);
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{tmpdir}: {}", outcome.stderr);
        assert!(errors[0].contains(expected), "{tmpdir}: {}", outcome.stderr);
        assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        assert!(!outcome.stdout.contains("parent: started"), "{}", outcome.stdout);
    }
    let _ = std::fs::remove_dir(&long);
}

/// The socket directories are made by ipc-channel with the default permissions, so
/// the program sets a umask of 077 before making them: they and their sockets are
/// the user's alone. They last only until a child connects, so the test reads the
/// umask the parent works under, mid-scene.
#[test]
fn what_the_parent_creates_is_the_users_alone() {
    let mut run = start(&["queue", "--n", "8"], Some("sleep"));
    run.children(1);
    run.wait_for_line("parent: start");
    let status = std::fs::read_to_string(format!("/proc/{}/status", run.pid())).unwrap();
    let umask = status.lines().find_map(|line| line.strip_prefix("Umask:")).map(str::trim);
    run.signal_parent(Signal::SIGTERM);
    run.finish();
    assert_eq!(umask, Some("0077"));
}

/// `| head`: standard output closed early, by the parent's line or a child's.
#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    let args = ["--n", "300", "--producers", "2"];
    test_support::check_closed_output(BIN, "eq-head", &args, &[1, 2, 3, 9, 14, 40, 60]);
}

/// `> /dev/full`: standard output on a full device is one line, status 1.
#[test]
fn a_full_standard_output_is_one_clear_error() {
    test_support::check_full_output(BIN, "eq-full", &["--n", "300", "--producers", "2"]);
}

/// A TMPDIR whose name is not UTF-8, which ipc-channel cannot take for a socket's
/// path (it panicked): one line that names TMPDIR, and nothing left there. A newline
/// in the name is no problem: that run goes as usual.
#[test]
fn a_tmpdir_that_is_not_utf8_is_one_clear_error() {
    test_support::check_tmpdir_not_utf8(|name| {
        Launch::new(BIN, "examples-queue-faults", &["queue", "--n", "8"])
            .short_tmpdir("eqf")
            .tmpdir_named(name)
            .start()
    });
}

/// The socket a child calls back on, once its parent has made it.
fn socket_of(run: &Run) -> std::path::PathBuf {
    let started = std::time::Instant::now();
    loop {
        assert!(started.elapsed() < test_support::DEADLINE, "no socket to call back on");
        let found = std::fs::read_dir(run.tmpdir())
            .unwrap()
            .flatten()
            .filter_map(|run_dir| std::fs::read_dir(run_dir.path()).ok())
            .flatten()
            .flatten()
            .map(|socket_dir| socket_dir.path().join("socket"))
            .find(|socket| socket.exists());
        if let Some(socket) = found {
            return socket;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Another process of the same user connects to the socket the parent listens on
/// for its child, before the child does, and writes what is no call back: a message
/// that does not decode, and one that claims more parts than come (on which
/// ipc-channel panics). Each is one line, the child is stopped, nothing is left.
#[test]
fn garbage_on_the_socket_is_one_clear_error() {
    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
    use nix::sys::socket::{connect, send, socket};
    use std::os::fd::AsRawFd;
    for (total, expected) in [
        (48u64, "error: the child process did not call back properly: "),
        (1 << 20, "error: the socket for the child process got a message that is no call back"),
    ] {
        let run = start(&["queue", "--n", "8"], Some("sleep-before-connect"));
        run.children(1);
        let other = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::empty(), None);
        let other = other.unwrap();
        connect(other.as_raw_fd(), &UnixAddr::new(&socket_of(&run)).unwrap()).unwrap();
        // ipc-channel's frame: the size of this part, of the whole message, the data.
        let mut frame = 64u64.to_le_bytes().to_vec();
        frame.extend(total.to_le_bytes());
        frame.extend([0xab; 48]);
        send(other.as_raw_fd(), &frame, MsgFlags::empty()).unwrap();
        let outcome = run.finish();
        assert_eq!(outcome.status.code(), Some(1), "{total}: {}", outcome.stderr);
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{total}: {}", outcome.stderr);
        assert!(errors[0].starts_with(expected), "{total}: {}", errors[0]);
        assert!(!outcome.stderr.contains("panicked"), "{total}: {}", outcome.stderr);
    }
}

/// A limit on processes (`ulimit -u`) that 50 producers exceed: one line, status 1,
/// and nothing left of the children that did start.
#[test]
fn a_limit_on_processes_is_one_clear_error() {
    let args = ["many-producers", "--n", "8", "--producers", "50"];
    test_support::check_process_limit(
        Launch::new(BIN, "examples-queue-faults", &args).short_tmpdir("eqf"),
    );
}

//! `--trace`: the run under strace, and after the scene what its processes asked the
//! kernel to do. The pipe's lesson in system calls: the child writes the header and
//! the array into the pipe, the parent reads exactly that. Also what every program's
//! `--trace` promises (the trace-summary crate), tried here once: without strace, or
//! without ptrace, one line and status 2; Ctrl-C, SIGKILL and a closed output leave
//! nothing behind. Where strace cannot run, each test says so in one line and passes,
//! unless EXAMPLES_REQUIRE_STRACE=1.

use nix::sys::signal::Signal;
use test_support::{
    Launch, bytes_in, check_closed_output, error_lines, strace_works, trace_summary, traced,
    traced_run,
};

const BIN: &str = env!("CARGO_BIN_EXE_examples-pipe");
const HEADER: u64 = 32;

/// The traced run's standard output; None where strace cannot trace.
fn run(args: &[&str], test: &str) -> Option<String> {
    traced_run(Launch::new(BIN, "examples-pipe-trace", args), test)
}

/// The one line of `lines` that starts with `start`.
fn line<'a>(lines: &[&'a str], start: &str) -> &'a str {
    let found: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with(start)).collect();
    assert_eq!(found.len(), 1, "one line starting {start:?} in {lines:#?}");
    found[0]
}

#[test]
fn the_child_writes_the_header_and_the_array_into_the_pipe_and_the_parent_reads_them() {
    let n = 100;
    let Some(stdout) = run(
        &["pipe", "--n", &n.to_string(), "--trace"],
        "the_child_writes_the_header_and_the_array_into_the_pipe",
    ) else {
        return;
    };
    assert!(stdout.starts_with("trace: strace -D -f "), "{stdout}");
    let summary = trace_summary(&stdout, "pipe");
    let array = n * n * 8;
    let (parent, child) = (traced(&summary, "parent"), traced(&summary, "child"));
    let pipe = line(&parent, "pipe2 = fd ");
    let inode = &pipe[pipe.find("pipe:[").expect("the pipe's name")..];
    let wrote = line(&child, "write");
    assert_eq!(bytes_in(wrote), Some(array + HEADER), "{wrote}");
    assert!(wrote.contains(inode) && wrote.ends_with(", to parent"), "{wrote} / {pipe}");
    let read = line(&parent, "read");
    assert_eq!(bytes_in(read), Some(array + HEADER), "{read}");
    assert!(read.contains(inode) && read.ends_with(", from child"), "{read}");
    assert!(line(&child, "execve ").starts_with("execve examples-pipe child pipe 100 "));
    line(&child, "exited with status 0");
    let total = line(&summary, "trace: in all: ");
    assert!(total.ends_with(", 0 shared mappings"), "{total}");
    assert!(summary.iter().all(|l| l.chars().count() <= 80), "{summary:#?}");
}

#[test]
fn through_a_socketpair_the_same_bytes_go_through_a_socket() {
    let Some(stdout) = run(
        &["pipe", "--n", "50", "--via", "socketpair", "--trace"],
        "through_a_socketpair_the_same_bytes_go_through_a_socket",
    ) else {
        return;
    };
    let summary = trace_summary(&stdout, "pipe");
    let parent = traced(&summary, "parent");
    assert!(line(&parent, "socketpair(AF_UNIX, SOCK_STREAM) = fds ").len() > 30);
    let wrote = line(&traced(&summary, "child"), "write");
    assert_eq!(bytes_in(wrote), Some(50 * 50 * 8 + HEADER), "{wrote}");
    assert!(wrote.contains("(a socket), to parent"), "{wrote}");
}

/// No strace on PATH: one line saying how to get it, status 2, nothing started.
#[test]
fn without_strace_one_line_says_how_to_get_it() {
    let outcome = Launch::new(BIN, "examples-pipe-trace", &["pipe", "--n", "4", "--trace"])
        .env("PATH", "/nonexistent")
        .start()
        .finish();
    assert_eq!(outcome.status.code(), Some(2), "{}", outcome.stderr);
    assert_eq!(outcome.stdout, "");
    let errors = error_lines(&outcome.stderr);
    assert_eq!(outcome.stderr.lines().count(), 1, "{}", outcome.stderr);
    assert!(errors[0].contains("strace") && errors[0].contains("apt install strace"));
}

/// ptrace denied (a container's seccomp filter): one line saying so, status 2.
#[test]
fn where_ptrace_is_denied_one_line_says_so() {
    if !strace_works("where_ptrace_is_denied_one_line_says_so") {
        return;
    }
    let launch = Launch::new(BIN, "examples-pipe-trace", &["pipe", "--n", "4", "--trace"]);
    let outcome = launch.deny_ptrace().start().finish();
    assert_eq!(outcome.status.code(), Some(2), "{}", outcome.stderr);
    assert_eq!(outcome.stdout, "");
    assert_eq!(outcome.stderr.lines().count(), 1, "{}", outcome.stderr);
    assert!(outcome.stderr.starts_with("error: --trace needs ptrace"), "{}", outcome.stderr);
}

/// Ctrl-C (SIGINT) or SIGKILL to the traced run while its child is paused: the
/// program is told (strace passes SIGINT on; a killed parent's strace gets SIGTERM)
/// and cleans up; no process and no file is left.
#[test]
fn an_interrupted_or_killed_traced_run_leaves_nothing() {
    if !strace_works("an_interrupted_or_killed_traced_run_leaves_nothing") {
        return;
    }
    for (signal, status) in [(Signal::SIGINT, Some(130)), (Signal::SIGKILL, None)] {
        let args = ["pipe", "--n", "100", "--pause", "--trace"];
        let mut run = Launch::new(BIN, "examples-pipe-trace", &args).stdin_piped().start();
        run.wait_for_line("pause: press Enter");
        run.signal_parent(signal);
        let outcome = run.finish();
        assert_eq!(outcome.status.code(), status, "{signal}: {}", outcome.stderr);
        if signal == Signal::SIGINT {
            let errors = error_lines(&outcome.stderr);
            assert_eq!(errors, ["error: interrupted by SIGINT; cleaned up"], "{}", outcome.stderr);
        }
    }
}

/// strace that stops letting the program go (here: stopped with SIGSTOP) does not
/// hold the run forever: a process held in one tracing stop for 3 s gets strace
/// killed, the program ends untraced, and the run says the trace is incomplete.
#[test]
fn a_traced_run_whose_strace_stops_ends_and_says_so() {
    if !strace_works("a_traced_run_whose_strace_stops_ends_and_says_so") {
        return;
    }
    let args = ["pipe", "--n", "100", "--pause", "--trace"];
    let mut run = Launch::new(BIN, "examples-pipe-trace", &args).stdin_piped().start();
    run.wait_for_line("pause: press Enter");
    let is_strace = |pid: &i32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|name| name.trim() == "strace")
    };
    let strace = run.children(2).into_iter().find(is_strace).expect("strace runs");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(strace), Signal::SIGSTOP).unwrap();
    run.type_line(""); // the program goes on, into a stop strace never ends
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    let errors = error_lines(&outcome.stderr);
    let expected = "error: strace stopped serving the program: killed it; the trace is incomplete";
    assert_eq!(errors, [expected], "{}", outcome.stderr);
}

/// `--trace | head`: the run ends quietly, as without `--trace`.
#[test]
fn a_traced_run_whose_output_is_closed_ends_quietly() {
    if !strace_works("a_traced_run_whose_output_is_closed_ends_quietly") {
        return;
    }
    check_closed_output(BIN, "examples-pipe-trace", &["pipe", "--n", "4", "--trace"], &[1, 6]);
}

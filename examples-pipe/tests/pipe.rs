//! Runs the real program at small sizes. Every run has a deadline: a hang is a failure,
//! never a stuck test.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use test_support::error_lines;

const BIN: &str = env!("CARGO_BIN_EXE_examples-pipe");
const DEADLINE: Duration = Duration::from_secs(20);

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn start(args: &[&str], fault: Option<&str>) -> Child {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
        .env_remove("EXAMPLES_CHILD_FAULT")
        .env_remove("RUST_BACKTRACE");
    if let Some(fault) = fault {
        command.env("EXAMPLES_CHILD_FAULT", fault);
    }
    command.spawn().expect("start examples-pipe")
}

/// Waits for the program and collects its output, killing it at the deadline.
fn finish(mut child: Child) -> Output {
    let collect = |mut pipe: Box<dyn Read + Send>| {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        rx
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("examples-pipe did not finish within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    // A leftover process holding our pipes would block these: bounded too.
    let text = |rx: mpsc::Receiver<String>| {
        rx.recv_timeout(Duration::from_secs(5))
            .expect("output closed")
    };
    Output {
        status,
        stdout: text(stdout),
        stderr: text(stderr),
    }
}

fn run(args: &[&str]) -> Output {
    finish(start(args, None))
}

fn run_with_fault(args: &[&str], fault: &str) -> Output {
    let child = start(args, Some(fault));
    let parent = child.id();
    let output = finish(child);
    assert_no_child_left(parent);
    output
}

/// Child processes of the run whose parent had this pid: their command line says
/// `child-pipe ... --parent <pid>`, which is unique to that run.
fn children_of(parent: u32) -> Vec<u32> {
    let marker = ["--parent".to_string(), parent.to_string()];
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        if args.iter().any(|a| a == "child-pipe") && args.windows(2).any(|w| w == marker) {
            found.push(pid);
        }
    }
    found
}

fn assert_no_child_left(parent: u32) {
    let started = Instant::now();
    while !children_of(parent).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a child process was left behind"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn assert_clean_failure(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr: {}",
        output.stderr
    );
    assert_eq!(
        error_lines(&output.stderr).len(),
        1,
        "stderr: {}",
        output.stderr
    );
    assert!(
        !output.stdout.contains("verdict:"),
        "stdout: {}",
        output.stdout
    );
}

#[test]
fn pipe_scene_delivers_a_full_copy() {
    let out = run(&["pipe", "--n", "300"]);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert_eq!(out.stderr, "");
    let stdout = &out.stdout;
    assert!(stdout.starts_with("=== pipe: "), "{stdout}");
    assert!(
        stdout.contains("child: made ones of shape (300, 300), 0.72 MB"),
        "{stdout}"
    );
    assert!(
        stdout.contains("child: top-left 5x5 corner:\nchild:   [1.0, 1.0, 1.0, 1.0, 1.0]\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("parent: top-left 5x5 corner:\nparent:   [1.0, 1.0, 1.0, 1.0, 1.0]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("parent: received 0.72 MB in "), "{stdout}");
    assert!(stdout.contains(" GB/s)"), "{stdout}");
    assert!(stdout.contains("parent: peak memory: parent "), "{stdout}");
    let verdicts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("verdict:"))
        .collect();
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
    assert_eq!(
        out.stdout.matches("=== pipe: ").count(),
        1,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("verdict: copy: all 40000 elements"),
        "{}",
        out.stdout
    );
}

#[test]
fn the_pipe_buffer_size_can_be_chosen() {
    let out = run(&["pipe", "--n", "100", "--pipe-size", "65536"]);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert!(
        out.stdout.contains("its kernel buffer is 65536 bytes"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("verdict: copy: all 10000 elements"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_socketpair_carries_the_same_frame() {
    let out = run(&["pipe", "--n", "300", "--via", "socketpair"]);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert!(
        out.stdout.contains("made a Unix socketpair"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("verdict: copy: all 90000 elements"),
        "{}",
        out.stdout
    );
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
        (
            &["--n", "5000000000"][..],
            "does not fit in the address space",
        ),
        (&["--n", "10000000"], "of memory is available"),
        (
            &["--via", "socketpair", "--pipe-size", "65536"],
            "a socketpair has socket buffers",
        ),
    ] {
        let out = run(args);
        assert_clean_failure(&out, 1);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert!(
            !out.stdout.contains("child:"),
            "{args:?} started a child: {}",
            out.stdout
        );
    }
}

#[test]
fn a_child_that_exits_is_a_clear_error() {
    let out = run_with_fault(&["--n", "50"], "exit");
    assert_clean_failure(&out, 1);
    assert!(
        out.stderr
            .contains("child: failing on purpose (EXAMPLES_CHILD_FAULT=exit)")
    );
    assert!(
        out.stderr
            .contains("error: the child process failed: exit status 3 ("),
        "{}",
        out.stderr
    );
}

#[test]
fn a_child_that_panics_is_a_clear_error() {
    let out = run_with_fault(&["--n", "50"], "panic");
    assert_clean_failure(&out, 1);
    assert!(
        out.stderr
            .contains("error: the child process failed: exit status 101"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_truncated_stream_is_a_clear_error() {
    let out = run_with_fault(&["--n", "100"], "truncate");
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
fn start_with_sleeping_child() -> (Child, u32) {
    let child = start(&["--n", "50"], Some("sleep"));
    let parent = child.id();
    let started = Instant::now();
    while children_of(parent).is_empty() {
        assert!(started.elapsed() < DEADLINE, "the child never started");
        thread::sleep(Duration::from_millis(20));
    }
    (child, parent)
}

#[test]
fn sigterm_kills_the_child_and_says_so() {
    let (child, parent) = start_with_sleeping_child();
    kill(Pid::from_raw(parent as i32), Signal::SIGTERM).unwrap();
    let out = finish(child);
    assert_eq!(out.status.code(), Some(143), "stderr: {}", out.stderr);
    assert_eq!(
        error_lines(&out.stderr),
        ["error: interrupted by SIGTERM; cleaned up"]
    );
    assert_no_child_left(parent);
}

#[test]
fn a_killed_parent_takes_its_child_along() {
    let (child, parent) = start_with_sleeping_child();
    kill(Pid::from_raw(parent as i32), Signal::SIGKILL).unwrap();
    let out = finish(child);
    assert_eq!(out.status.code(), None);
    assert_no_child_left(parent);
}

#[test]
fn the_hidden_child_refuses_a_descriptor_that_is_not_a_pipe() {
    let me = std::process::id().to_string();
    for (fd, message) in [("1", "3 or higher"), ("250", "is not open")] {
        let out = run(&["child-pipe", "--fd", fd, "--parent", &me, "--n", "3"]);
        assert_eq!(out.status.code(), Some(1), "stderr: {}", out.stderr);
        assert!(out.stderr.starts_with("child: error: "), "{}", out.stderr);
        assert!(out.stderr.contains(message), "{}", out.stderr);
    }
}

/// Processes of bench runs started with this `--n`: `bench-run <method> --n <n>` and
/// `bench-child --fd <fd> --n <n>`. An unusual n makes the marker unique to the test.
fn bench_processes(n: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        let bench = args.iter().any(|a| a == "bench-run" || a == "bench-child");
        if bench && args.windows(2).any(|w| w[0] == "--n" && w[1] == n) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn bench_prints_one_line_per_method_in_the_protocol_format() {
    let out = run(&["bench", "--n", "1013", "--repeats", "1"]);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    let methods: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(methods, ["floor", "pipe"], "{}", out.stdout);
    for line in out.stdout.lines() {
        let fields: Vec<(&str, &str)> = line
            .split(' ')
            .skip(1)
            .map(|field| field.split_once('=').expect("key=value"))
            .collect();
        let keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
        assert_eq!(
            keys,
            ["median", "min", "max", "peak_parent_mb", "peak_child_mb"],
            "{line}"
        );
        for (key, value) in fields {
            assert!(value.parse::<f64>().is_ok(), "{key}={value} in {line}");
        }
    }
    // The pipe row's child received the array and reported its own peak memory.
    let pipe = out.stdout.lines().nth(1).unwrap();
    assert!(!pipe.ends_with(" peak_child_mb=0"), "{pipe}");
    assert!(
        bench_processes("1013").is_empty(),
        "a bench process was left"
    );
}

#[test]
fn an_unknown_bench_method_is_an_error() {
    let out = run(&["bench-run", "carrier-pigeon", "--n", "10"]);
    assert_clean_failure(&out, 1);
    assert!(
        out.stderr.contains("unknown bench method"),
        "{}",
        out.stderr
    );
}

#[test]
fn bench_refuses_flags_of_the_pipe_scene() {
    for args in [
        &["bench", "--via", "socketpair"][..],
        &["bench", "--pipe-size", "65536"],
    ] {
        let out = run(args);
        assert_clean_failure(&out, 1);
        assert!(
            out.stderr.contains("apply to the pipe scene"),
            "{}",
            out.stderr
        );
    }
}

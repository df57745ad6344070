//! Runs the real `examples-queue` binary at small sizes: every scene, the default
//! sequence, bad input, and children that fail, checking that nothing hangs and
//! nothing is left behind (processes, socket directories).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use test_support::processes_with;

const BIN: &str = env!("CARGO_BIN_EXE_examples-queue");
/// Far longer than any run here takes (well under a second): only a hang hits it.
const DEADLINE: Duration = Duration::from_secs(30);

/// One run of the program, with its own marker (an environment variable every
/// child inherits, to find its processes) and its own TMPDIR (where ipc-channel
/// makes the socket directories, to prove they are removed).
struct Run {
    marker: String,
    tmpdir: PathBuf,
}

impl Run {
    fn new(name: &str) -> Run {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let marker = format!("examples-queue-{name}-{}-{count}", std::process::id());
        // Short: a Unix socket path must fit in 108 bytes.
        let tmpdir = std::env::temp_dir().join(format!("eq-{}-{count}", std::process::id()));
        std::fs::create_dir_all(&tmpdir).unwrap();
        Run { marker, tmpdir }
    }

    fn command(&self, args: &[&str], fault: Option<&str>) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("EXAMPLES_TEST_MARKER", &self.marker)
            .env("TMPDIR", &self.tmpdir)
            .env_remove("EXAMPLES_CHILD_FAULT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(fault) = fault {
            command.env("EXAMPLES_CHILD_FAULT", fault);
        }
        command
    }

    /// Runs to the end, or fails the test if the program outlives the deadline.
    fn run(&self, args: &[&str], fault: Option<&str>) -> Output {
        let child = self.command(args, fault).spawn().expect("the program starts");
        let pid = child.id();
        let (done, finished) = mpsc::channel();
        thread::spawn(move || done.send(child.wait_with_output()));
        match finished.recv_timeout(DEADLINE) {
            Ok(output) => {
                let output = output.expect("the program's output can be read");
                self.assert_nothing_left();
                output
            }
            Err(_) => {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                panic!("the program hung: still running after {DEADLINE:?} ({args:?})");
            }
        }
    }

    /// No process of this run is alive, and no socket directory remains.
    fn assert_nothing_left(&self) {
        let started = Instant::now();
        // A moment for the kernel to deliver parent-death signals and reap.
        while !self.processes().is_empty() && started.elapsed() < Duration::from_secs(2) {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.processes(), Vec::<i32>::new(), "processes left behind");
        let left: Vec<_> = std::fs::read_dir(&self.tmpdir).unwrap().flatten().collect();
        assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    }

    /// Processes whose environment holds this run's marker.
    fn processes(&self) -> Vec<i32> {
        processes_with(&self.marker)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmpdir);
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "expected success, got {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

// ---------------------------------------------------------------------------------
// Every scene at a small size
// ---------------------------------------------------------------------------------

#[test]
fn queue_scene_gives_the_parent_a_copy_of_the_childs_ones() {
    let run = Run::new("queue");
    let output = run.run(&["queue", "--n", "20"], None);
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.starts_with("=== queue: "), "{out}");
    assert!(out.contains("child: made ones of shape (20, 20)"), "{out}");
    assert_eq!(count(&out, "child:   [1.0, 1.0, 1.0, 1.0, 1.0]"), 5, "{out}");
    assert_eq!(count(&out, "parent:   [1.0, 1.0, 1.0, 1.0, 1.0]"), 5, "{out}");
    assert!(out.contains("parent: got an array of shape (20, 20) from child 1"), "{out}");
    assert!(out.contains("parent: peak memory so far: "), "{out}");
    assert!(
        out.contains(
            "verdict: copy: the parent now owns its own array with 1.0 in all 400 elements"
        ),
        "{out}"
    );
    assert_eq!(stderr(&output), "");
}

/// 600 x 600 x 8 bytes = 2.88 MB: the bytes travel in three pieces of at most
/// 1 MiB, received one after the other into the same array.
#[test]
fn an_array_larger_than_one_piece_arrives_whole() {
    let run = Run::new("pieces");
    let output = run.run(&["argument-and-queue", "--n", "600"], None);
    assert_success(&output);
    let out = stdout(&output);
    assert!(
        out.contains(
            "parent: got an array of shape (600, 600) from child 1:\nparent:   2.9 MB in "
        ),
        "{out}"
    );
    let verdicts = test_support::verdicts(&out);
    assert!(
        verdicts[0].contains("the array from the queue has 0.0 in all 360000 elements"),
        "{out}"
    );
}

#[test]
fn argument_and_queue_scene_brings_back_zeros_and_leaves_the_parents_ones() {
    let run = Run::new("argq");
    let output = run.run(&["argument-and-queue", "--n", "30"], None);
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.starts_with("=== argument-and-queue: "), "{out}");
    assert!(out.contains("child: got its argument, its own copy, of shape (30, 30)"), "{out}");
    // The child sees ones, then its zeros; the parent sees the zeros that came
    // back, then its own ones.
    assert_eq!(count(&out, "child:   [1.0, 1.0, 1.0, 1.0, 1.0]"), 5, "{out}");
    assert_eq!(count(&out, "child:   [0.0, 0.0, 0.0, 0.0, 0.0]"), 5, "{out}");
    assert_eq!(count(&out, "parent:   [0.0, 0.0, 0.0, 0.0, 0.0]"), 5, "{out}");
    assert_eq!(count(&out, "parent:   [1.0, 1.0, 1.0, 1.0, 1.0]"), 5, "{out}");
    let verdicts = test_support::verdicts(&out);
    assert!(
        verdicts[0].starts_with(
            "verdict: copies both ways: the array from the queue has 0.0 in all 900 elements, \
             the parent's own array still has 1.0 in all 900"
        ),
        "{out}"
    );
}

#[test]
fn many_producers_scene_gets_each_childs_array_exactly_once() {
    let run = Run::new("many");
    let output = run.run(&["many-producers", "--n", "10", "--producers", "5"], None);
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.starts_with("=== many-producers: 5 children "), "{out}");
    for id in 1..=5 {
        let got = format!("parent: got child {id}'s array, 100 of 100 values {id}.0");
        assert_eq!(count(&out, &got), 1, "{got}\n{out}");
        assert_eq!(count(&out, &format!("child {id}: made an array of {id}.0s")), 1);
    }
    assert_eq!(count(&out, "parent: got child "), 5, "{out}");
    assert!(
        test_support::verdicts(&out)[0].starts_with("verdict: queue: 5 children put on one queue at once and the parent got each array exactly once, all 500 elements right"),
        "{out}"
    );
}

#[test]
fn a_single_producer_is_fine_too() {
    let run = Run::new("one");
    let output = run.run(&["many-producers", "--n", "3", "--producers", "1"], None);
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.starts_with("=== many-producers: 1 child put "), "{out}");
    assert!(out.contains("verdict: queue: 1 child put on one queue"), "{out}");
}

#[test]
fn default_sequence_runs_every_scene_in_order() {
    let run = Run::new("all");
    let output = run.run(&["--n", "12", "--producers", "2"], None);
    assert_success(&output);
    let out = stdout(&output);
    let headings: Vec<&str> = out.lines().filter(|l| l.starts_with("=== ")).collect();
    assert_eq!(headings.len(), 3, "{out}");
    assert!(headings[0].starts_with("=== queue: "));
    assert!(headings[1].starts_with("=== argument-and-queue: "));
    assert!(headings[2].starts_with("=== many-producers: 2 children "));
    let verdicts = test_support::verdicts(&out);
    assert_eq!(verdicts.len(), 3, "{out}");
    assert!(verdicts[0].contains("1.0 in all 144 elements"));
    assert!(verdicts[1].contains("0.0 in all 144 elements"));
    assert!(verdicts[2].contains("all 288 elements right"));
    // Scenes are separated by one blank line.
    assert_eq!(count(&out, "\n\n=== "), 2, "{out}");
}

// ---------------------------------------------------------------------------------
// Bad input: one clear error line, never a panic
// ---------------------------------------------------------------------------------

fn assert_one_clean_error(args: &[&str], code: i32) -> String {
    let run = Run::new("bad");
    let output = run.run(args, None);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {err}");
    let errors = err.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 1, "{args:?}: {err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    err
}

#[test]
fn bad_command_lines_are_usage_errors() {
    assert_one_clean_error(&["--n", "0"], 2);
    assert_one_clean_error(&["queue", "--n", "abc"], 2);
    assert_one_clean_error(&["no-such-scene"], 2);
    assert_one_clean_error(&["many-producers", "--producers", "0"], 2);
    assert_one_clean_error(&["--producers", "257"], 2);
    assert_one_clean_error(&["many-producers", "--producers", "-1"], 2);
    // bench measures one child and one queue; it does not ignore a scene's flag.
    let err = assert_one_clean_error(&["bench", "--n", "10", "--producers", "3"], 1);
    assert!(err.contains("--producers applies to"), "{err}");
}

#[test]
fn sizes_that_cannot_fit_are_refused_before_allocating() {
    // n * n * 8 overflows 64 bits.
    let err = assert_one_clean_error(&["queue", "--n", "5000000000"], 1);
    assert!(err.contains("--n 5000000000 is too large"), "{err}");
    // 80 TB per array: more than any test machine has.
    let err = assert_one_clean_error(&["argument-and-queue", "--n", "100000000"], 1);
    assert!(err.contains("of memory is available; choose a smaller --n"), "{err}");
    let err = assert_one_clean_error(&["many-producers", "--n", "1000000"], 1);
    // Four producers' arrays, and the one the parent is receiving.
    assert!(err.contains("5 arrays of 8000.0 GB"), "{err}");
}

// ---------------------------------------------------------------------------------
// Children that fail: a clear error, no hang, nothing left behind
// ---------------------------------------------------------------------------------

fn assert_child_failure(args: &[&str], fault: &str, expected: &str) {
    let run = Run::new(fault);
    let started = Instant::now();
    let output = run.run(args, Some(fault));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{args:?} {fault}: {err}");
    assert!(err.contains(expected), "{args:?} {fault}: expected {expected:?} in\n{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{err}");
    assert!(!stdout(&output).contains("verdict:"), "{}", stdout(&output));
    // Failing is quick: the parent does not sit out a timeout.
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
}

#[test]
fn a_child_that_exits_is_an_error_in_every_scene() {
    let status3 = "error: the child process failed: exit status 3";
    assert_child_failure(&["queue", "--n", "8"], "exit", status3);
    assert_child_failure(&["argument-and-queue", "--n", "8"], "exit", status3);
    assert_child_failure(
        &["many-producers", "--n", "8", "--producers", "3"],
        "exit",
        // The first child's exit is the story; whether the others were started before
        // the parent noticed it depends on timing.
        "error: child process 1 failed: exit status 3",
    );
}

#[test]
fn a_child_that_panics_is_an_error_in_every_scene() {
    let status101 = "error: the child process failed: exit status 101";
    assert_child_failure(&["queue", "--n", "8"], "panic", status101);
    assert_child_failure(&["argument-and-queue", "--n", "8"], "panic", status101);
    assert_child_failure(
        &["many-producers", "--n", "8", "--producers", "2"],
        "panic",
        "error: child process 1 failed: exit status 101",
    );
}

/// The ipc-channel pitfall: `IpcOneShotServer::accept` waits forever for a child
/// that died before connecting. The parent must notice the death instead.
#[test]
fn a_child_that_dies_before_connecting_does_not_hang_the_parent() {
    let fault = "exit-before-connect";
    let expected = "error: the child process failed: exit status 3, before it called back";
    assert_child_failure(&["queue", "--n", "8"], fault, expected);
    assert_child_failure(&["argument-and-queue", "--n", "8"], fault, expected);
    assert_child_failure(
        &["many-producers", "--n", "8"],
        fault,
        "error: child process 1 failed: exit status 3, before it called back",
    );
}

#[test]
fn sigterm_mid_scene_kills_the_children_and_removes_the_sockets() {
    let run = Run::new("term");
    let args = ["many-producers", "--n", "8", "--producers", "3"];
    let parent = run.command(&args, Some("sleep")).spawn().unwrap();
    // Wait until all three children are up (and asleep in their task).
    let started = Instant::now();
    while run.processes().len() < 4 {
        assert!(started.elapsed() < DEADLINE, "the children never started");
        thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(parent.id() as i32), Signal::SIGTERM).unwrap();
    let (done, finished) = mpsc::channel();
    thread::spawn(move || done.send(parent.wait_with_output()));
    let output = finished.recv_timeout(DEADLINE).expect("the parent stops after SIGTERM").unwrap();
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("error: interrupted by SIGTERM; cleaned up"),
        "{}",
        stderr(&output)
    );
    run.assert_nothing_left();
}

// ---------------------------------------------------------------------------------
// The bench, at a tiny size so it cannot rot (no timing is asserted)
// ---------------------------------------------------------------------------------

#[test]
fn bench_prints_one_line_per_method_in_the_protocol_format() {
    let run = Run::new("bench");
    // 300,000 values: 2.4 MB, several pieces.
    let output = run.run(&["bench", "--n", "300000", "--repeats", "1"], None);
    assert_success(&output);
    let out = stdout(&output);
    let methods: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(methods, ["floor", "queue"], "{out}");
    for line in out.lines() {
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
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_bench_child_that_fails_fails_the_bench() {
    let run = Run::new("benchfail");
    let output = run.run(&["bench", "--n", "1000", "--repeats", "1"], Some("exit"));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the queue run failed")
            && err.contains("the child process failed: exit status 3"),
        "{err}"
    );
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
}

//! Runs the real `examples-manager` binary at small sizes: every scene, the whole
//! default sequence, bad input, failing and killed processes. Every run has a
//! deadline (a hang fails the test) and afterwards no process of the run may be
//! left and no socket directory may remain in the run's private TMPDIR.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use test_support::processes_with;

const BIN: &str = env!("CARGO_BIN_EXE_examples-manager");
const DEADLINE: Duration = Duration::from_secs(30);

/// One run of the binary, tagged so that its processes can be found afterwards:
/// every process of the run inherits `EXAMPLES_TEST_MARKER=<marker>`.
struct Run {
    marker: String,
    tmpdir: PathBuf,
    child: Child,
    lines: Receiver<String>,
    stderr: Receiver<String>,
    started: Instant,
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Run {
        let marker = format!("manager-test-{}-{:x}", std::process::id(), unique());
        let tmpdir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&marker);
        std::fs::create_dir_all(&tmpdir).unwrap();
        let mut child = Command::new(BIN)
            .args(args)
            .envs(env.iter().copied())
            .env("EXAMPLES_TEST_MARKER", &marker)
            .env("TMPDIR", &tmpdir)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (line_tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = line_tx.send(line);
            }
        });
        let (err_tx, stderr) = mpsc::channel();
        let mut stderr_pipe = child.stderr.take().unwrap();
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        Run { marker, tmpdir, child, lines, stderr, started: Instant::now() }
    }

    /// Reads stdout until a line contains `needle`; returns that line.
    fn wait_for_line(&self, needle: &str) -> String {
        loop {
            let left = DEADLINE.saturating_sub(self.started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {needle:?} within the deadline"),
            }
        }
    }

    /// Waits for the parent (killing everything on expiry), collects its output and
    /// checks that nothing of the run is left behind.
    fn finish(mut self) -> Outcome {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > DEADLINE {
                kill_marked(&self.marker);
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the run did not end within {DEADLINE:?}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        // The pipes reach EOF only when every process holding them has exited.
        let left = Duration::from_secs(5);
        let stderr = self
            .stderr
            .recv_timeout(left)
            .expect("stderr stayed open: a process of the run survived the parent");
        let mut stdout = String::new();
        while let Ok(line) = self.lines.recv_timeout(left) {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        assert_no_process_left(&self.marker);
        let leftovers: Vec<_> = std::fs::read_dir(&self.tmpdir).unwrap().collect();
        assert!(leftovers.is_empty(), "left behind in TMPDIR: {leftovers:?}");
        let _ = std::fs::remove_dir(&self.tmpdir);
        Outcome { code: status.code(), stdout, stderr }
    }
}

/// A value that differs between runs within this test process (RandomState is
/// seeded afresh per instance).
fn unique() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    RandomState::new().hash_one(0u8)
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    Run::start(args, env).finish()
}

/// Pids of live processes whose environment holds our marker (and, if given, whose
/// role is `role`: `examples-manager child ROLE SOCKET`).
fn marked_pids(marker: &str, role: Option<&str>) -> Vec<u32> {
    processes_with(marker)
        .into_iter()
        .filter(|pid| {
            let Some(role) = role else { return true };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.split(|&b| b == 0).nth(2) == Some(role.as_bytes())
        })
        .map(|pid| pid as u32)
        .collect()
}

fn assert_no_process_left(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = marked_pids(marker, None);
        if pids.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            kill_marked(marker);
            panic!("processes left behind: {pids:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn kill_marked(marker: &str) {
    for pid in marked_pids(marker, None) {
        kill(pid, "-KILL");
    }
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid} failed");
}

fn verdicts(stdout: &str) -> Vec<String> {
    test_support::verdicts(stdout)
}

fn assert_scene_ok(args: &[&str], scene: &str) -> Outcome {
    let outcome = run(args, &[]);
    assert_eq!(outcome.code, Some(0), "stderr: {}", outcome.stderr);
    assert!(outcome.stderr.is_empty(), "stderr: {}", outcome.stderr);
    assert!(outcome.stdout.starts_with(&format!("=== {scene}: ")), "{}", outcome.stdout);
    let verdicts = verdicts(&outcome.stdout);
    assert_eq!(verdicts.len(), 1, "{}", outcome.stdout);
    assert!(verdicts[0].starts_with(&format!("verdict: {scene}: ")), "{}", verdicts[0]);
    outcome
}

#[test]
fn hosted_sum_compares_both_sums_and_reports_memory() {
    let outcome = assert_scene_ok(&["hosted-sum", "--n", "300000"], "hosted-sum");
    assert!(outcome.stdout.contains("verdict: hosted-sum: both sums are 300000;"));
    assert!(outcome.stdout.contains("parent: sum on the hosted array: 300000 in "));
    assert!(outcome.stdout.contains("parent: sum on a fetched copy: 300000 in "));
    assert!(outcome.stdout.contains("parent: peak memory: parent "));
}

#[test]
fn child_proxy_sums_in_parent_and_child() {
    let outcome = assert_scene_ok(&["child-proxy", "--n", "5000"], "child-proxy");
    assert!(outcome.stdout.contains("parent: sum through my proxy: 5000\n"));
    assert!(outcome.stdout.contains("child: sum through my proxy: 5000\n"));
}

#[test]
fn attribute_reports_shape_and_round_trip() {
    let outcome = assert_scene_ok(&["attribute", "--n", "777"], "attribute");
    assert!(outcome.stdout.contains("parent: shape through my proxy: [777]\n"));
    assert!(outcome.stdout.contains("(median of 1000)"));
}

#[test]
fn slice_returns_first_values() {
    let outcome = assert_scene_ok(&["slice", "--n", "5"], "slice");
    assert!(outcome.stdout.contains("parent: first 5 values: [1.0, 1.0, 1.0, 1.0, 1.0]\n"));
}

#[test]
fn mutate_is_seen_and_loses_no_update() {
    let outcome = assert_scene_ok(&["mutate", "--n", "1234", "--clients", "3"], "mutate");
    assert!(outcome.stdout.contains("parent: sum through my proxy after the child's fill: 0\n"));
    assert!(outcome.stdout.contains("parent: sum 3702; smallest element 3, largest 3\n"));
    for i in 1..=3 {
        assert!(outcome.stdout.contains(&format!("child {i}: added 1 to all 1234 elements")));
    }
}

#[test]
fn default_sequence_runs_every_scene_in_order() {
    let outcome = run(&["--n", "2000", "--clients", "2"], &[]);
    assert_eq!(outcome.code, Some(0), "stderr: {}", outcome.stderr);
    let verdicts = verdicts(&outcome.stdout);
    let scenes: Vec<&str> = verdicts.iter().map(|v| v.split(':').nth(1).unwrap().trim()).collect();
    assert_eq!(scenes, ["hosted-sum", "child-proxy", "attribute", "slice", "mutate"]);
    let headings = outcome.stdout.lines().filter(|l| l.starts_with("=== ")).count();
    assert_eq!(headings, 5);
}

fn assert_one_clean_error(outcome: &Outcome, code: i32, contains: &str) {
    assert_eq!(outcome.code, Some(code), "stderr: {}", outcome.stderr);
    let errors = outcome.stderr.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 1, "stderr: {}", outcome.stderr);
    assert!(outcome.stderr.contains(contains), "stderr: {}", outcome.stderr);
    assert!(!outcome.stderr.contains("panicked"), "stderr: {}", outcome.stderr);
    assert!(!outcome.stderr.contains("backtrace"), "stderr: {}", outcome.stderr);
}

#[test]
fn bad_command_lines_are_usage_errors() {
    for (args, contains) in [
        (&["--n", "0"][..], "--n"),
        (&["--n", "abc"][..], "--n"),
        (&["--n", "-5"][..], "-5"),
        (&["bogus"][..], "bogus"),
        (&["--clients", "0"][..], "--clients"),
        (&["mutate", "--clients", "65"][..], "--clients"),
    ] {
        let outcome = run(args, &[]);
        assert_one_clean_error(&outcome, 2, contains);
        assert!(outcome.stdout.is_empty(), "{args:?} printed {}", outcome.stdout);
    }
}

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    for args in [
        &["--n", "18446744073709551615"][..],
        &["hosted-sum", "--n", "1000000000000000"][..],
        &["slice", "--n", "1000000000000000"][..],
    ] {
        let outcome = run(args, &[]);
        assert_one_clean_error(&outcome, 1, "--n");
        assert!(!outcome.stdout.contains("server (process"), "{args:?}: a server was started");
    }
}

#[test]
fn failing_child_is_reported() {
    let outcome = run(&["child-proxy", "--n", "100"], &[("EXAMPLES_CHILD_FAULT", "exit")]);
    assert_eq!(outcome.code, Some(1));
    assert!(outcome.stderr.contains("child: failing on purpose (EXAMPLES_CHILD_FAULT=exit)"));
    assert!(outcome.stderr.contains("error: the child process failed: exit status 3"));
    assert!(verdicts(&outcome.stdout).is_empty());
}

#[test]
fn panicking_child_is_reported() {
    let outcome = run(&["child-proxy", "--n", "100"], &[("EXAMPLES_CHILD_FAULT", "panic")]);
    assert_eq!(outcome.code, Some(1));
    assert!(outcome.stderr.contains("error: the child process failed: exit status 101"));
}

#[test]
fn failing_client_in_mutate_is_reported() {
    let outcome =
        run(&["mutate", "--n", "100", "--clients", "3"], &[("EXAMPLES_CHILD_FAULT", "exit")]);
    assert_eq!(outcome.code, Some(1));
    assert!(outcome.stderr.contains("error: the child process failed: exit status 3"));
}

#[test]
fn failing_server_is_reported() {
    let outcome = run(&["attribute", "--n", "100"], &[("EXAMPLES_SERVER_FAULT", "exit")]);
    assert_eq!(outcome.code, Some(1));
    assert!(
        outcome.stderr.contains(
            "error: the server process failed: exit status 3: the server did not answer `shape`"
        ),
        "stderr: {}",
        outcome.stderr
    );
}

#[test]
fn server_killed_mid_scene_is_reported_promptly() {
    let run = Run::start(&["hosted-sum", "--n", "1000"], &[("EXAMPLES_SERVER_FAULT", "sleep")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(&pid) = marked_pids(&run.marker, Some("server")).first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the server never appeared");
        thread::sleep(Duration::from_millis(20));
    };
    // The parent is now waiting for its first answer from a server that sleeps.
    thread::sleep(Duration::from_millis(200));
    let killed_at = Instant::now();
    kill(pid, "-KILL");
    let outcome = run.finish();
    assert!(killed_at.elapsed() < Duration::from_secs(15), "the parent took too long to notice");
    assert_eq!(outcome.code, Some(1));
    assert!(
        outcome
            .stderr
            .contains("error: the server process was killed by signal 9 (SIGKILL): the server did not answer `shape`"),
        "stderr: {}",
        outcome.stderr
    );
    assert!(verdicts(&outcome.stdout).is_empty());
}

#[test]
fn child_killed_mid_scene_is_reported() {
    let run = Run::start(&["child-proxy", "--n", "1000"], &[("EXAMPLES_CHILD_FAULT", "sleep")]);
    run.wait_for_line("parent: sum through my proxy: 1000");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(&pid) = marked_pids(&run.marker, Some("child")).first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the child never appeared");
        thread::sleep(Duration::from_millis(20));
    };
    kill(pid, "-KILL");
    let outcome = run.finish();
    assert_eq!(outcome.code, Some(1));
    assert!(
        outcome.stderr.contains("error: the child process was killed by signal 9 (SIGKILL)"),
        "stderr: {}",
        outcome.stderr
    );
}

#[test]
fn ctrl_c_cleans_up_server_and_children() {
    let run = Run::start(&["mutate", "--n", "1000"], &[("EXAMPLES_CHILD_FAULT", "sleep")]);
    run.wait_for_line("parent: the server (process ");
    // Wait until the child exists too, so there is something to clean up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while marked_pids(&run.marker, Some("child")).is_empty() {
        assert!(Instant::now() < deadline, "the child never appeared");
        thread::sleep(Duration::from_millis(20));
    }
    kill(run.child.id(), "-INT");
    let outcome = run.finish();
    assert_eq!(outcome.code, Some(130));
    assert!(outcome.stderr.contains("error: interrupted by SIGINT; cleaned up"));
}

#[test]
fn bench_prints_one_line_per_method_in_the_protocol_format() {
    let outcome = run(&["bench", "--n", "1000", "--repeats", "1"], &[]);
    assert_eq!(outcome.code, Some(0), "stderr: {}", outcome.stderr);
    assert!(outcome.stderr.is_empty(), "stderr: {}", outcome.stderr);
    let methods: Vec<&str> =
        outcome.stdout.lines().map(|line| line.split(' ').next().unwrap()).collect();
    assert_eq!(methods, ["floor", "floor-manager", "manager"], "{}", outcome.stdout);
    for line in outcome.stdout.lines() {
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
}

#[test]
fn a_bench_run_of_the_manager_sums_in_the_child_and_reports_both_peaks() {
    let outcome = run(&["bench-run", "manager", "--n", "1000"], &[]);
    assert_eq!(outcome.code, Some(0), "stderr: {}", outcome.stderr);
    assert!(outcome.stdout.contains("child: sum through my proxy: 1000\n"));
    assert!(outcome.stdout.contains("parent: peak memory: server "));
    let last = outcome.stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("run seconds="), "{}", outcome.stdout);
}

#[test]
fn a_bench_run_blames_the_process_that_failed_of_the_two_started_at_once() {
    // The bench starts the server and the child side by side: either may fail
    // while the other is starting up, and the error names the one that did.
    let child_fault = [("EXAMPLES_CHILD_FAULT", "exit-before-connect")];
    assert_one_clean_error(
        &run(&["bench-run", "manager", "--n", "1000"], &child_fault),
        1,
        "error: the child process failed: exit status 3, before it called back",
    );
    let server_fault = [("EXAMPLES_SERVER_FAULT", "exit")];
    let outcome = run(&["bench-run", "manager", "--n", "1000"], &server_fault);
    assert_eq!(outcome.code, Some(1), "stderr: {}", outcome.stderr);
    let last = outcome.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: the server process failed: exit status 3"), "{last}");
}

#[test]
fn a_failing_child_fails_the_bench() {
    let outcome =
        run(&["bench", "--n", "1000", "--repeats", "1"], &[("EXAMPLES_CHILD_FAULT", "exit")]);
    assert_one_clean_error(
        &outcome,
        1,
        "the manager run failed: exit status 1: error: the child process failed: exit status 3",
    );
    // The floors have no child: they ran and printed before the manager failed.
    assert_eq!(outcome.stdout.lines().count(), 2, "{}", outcome.stdout);
}

#[test]
fn bench_refuses_bad_input() {
    assert_one_clean_error(&run(&["bench", "--repeats", "0"], &[]), 2, "--repeats");
    assert_one_clean_error(&run(&["bench", "--n", "0"], &[]), 2, "--n");
    assert_one_clean_error(
        &run(&["bench", "--n", "1000000000000000"], &[]),
        1,
        "of memory is available; choose a smaller --n",
    );
    assert_one_clean_error(
        &run(&["bench-run", "bogus", "--n", "10"], &[]),
        1,
        "unknown bench method \"bogus\"",
    );
}

//! The fault suite (docs/reliability.md): what tests/queue.rs does not already try.
//! Killed children and parents mid-scene, SIGINT, two runs at once, and a TMPDIR
//! the sockets cannot live in. Every
//! run gets its own marker (an environment variable every process of the run
//! inherits) and its own empty TMPDIR; afterwards no process of the run may be left
//! and TMPDIR must still be empty.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_examples-queue");
/// Only a hang comes near this: every run here takes well under a second.
const DEADLINE: Duration = Duration::from_secs(30);
/// After a fault, the parent must be gone this soon.
const PROMPTLY: Duration = Duration::from_secs(5);

/// One run of the program, with its output arriving line by line.
struct Run {
    marker: String,
    tmpdir: PathBuf,
    process: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: JoinHandle<String>,
    started: Instant,
    fault_at: Option<Instant>,
}

struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn start(args: &[&str], fault: Option<&str>) -> Run {
        Run::start_in(args, fault, None)
    }

    /// `tmpdir`: a TMPDIR of the test's choosing, not checked afterwards; None: a
    /// fresh empty one, checked.
    fn start_in(args: &[&str], fault: Option<&str>, tmpdir: Option<&str>) -> Run {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let marker = format!("examples-queue-faults-{}-{count}", std::process::id());
        // Short: the sockets live in here, and a socket's path must fit in 108 bytes.
        let own = std::env::temp_dir().join(format!("eqf-{}-{count}", std::process::id()));
        std::fs::create_dir_all(&own).unwrap();
        let tmpdir = tmpdir.map_or(own.clone(), PathBuf::from);
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("EXAMPLES_TEST_MARKER", &marker)
            .env("TMPDIR", &tmpdir)
            .env_remove("EXAMPLES_CHILD_FAULT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(fault) = fault {
            command.env("EXAMPLES_CHILD_FAULT", fault);
        }
        let mut process = command.spawn().expect("the program starts");
        let stdout = process.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut stderr = process.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Run {
            marker,
            tmpdir: own,
            process,
            lines,
            stdout: Vec::new(),
            stderr,
            started: Instant::now(),
            fault_at: None,
        }
    }

    /// Reads stdout until a line contains `needle`.
    fn wait_for_line(&mut self, needle: &str) {
        while self.started.elapsed() < DEADLINE {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                let found = line.contains(needle);
                self.stdout.push(line);
                if found {
                    return;
                }
            }
        }
        self.kill_everything();
        panic!("no line with {needle:?}; saw {:?}", self.stdout);
    }

    /// Waits until the run has `count` children; returns their pids.
    fn children(&self, count: usize) -> Vec<i32> {
        let parent = self.process.id() as i32;
        loop {
            let children: Vec<i32> = processes_with(&self.marker)
                .into_iter()
                .filter(|&p| p != parent)
                .collect();
            if children.len() >= count {
                return children;
            }
            assert!(
                self.started.elapsed() < DEADLINE,
                "the children never started"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every process started so far has connected: its socket
    /// directory, made in TMPDIR before it was started, is gone once it has.
    fn wait_until_connected(&self) {
        while std::fs::read_dir(&self.tmpdir).unwrap().next().is_some() {
            assert!(self.started.elapsed() < DEADLINE, "a child never connected");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill_child(&mut self, pid: i32) {
        self.fault_at = Some(Instant::now());
        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    }

    fn signal_parent(&mut self, signal: Signal) {
        self.fault_at = Some(Instant::now());
        kill(Pid::from_raw(self.process.id() as i32), signal).unwrap();
    }

    fn kill_everything(&mut self) {
        for pid in processes_with(&self.marker) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// Waits for the parent, promptly after a fault, then checks that nothing of
    /// the run is left: no process (orphans included) and nothing in TMPDIR.
    fn finish(mut self) -> Outcome {
        let status = loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                break status;
            }
            let late = match self.fault_at {
                Some(at) => at.elapsed() > PROMPTLY,
                None => self.started.elapsed() > DEADLINE,
            };
            if late {
                self.kill_everything();
                panic!("the parent was still running: {:?}", self.stdout);
            }
            thread::sleep(Duration::from_millis(10));
        };
        // Before reading to the end of the output: a survivor holds the pipes open.
        if let Err(left) = nothing_left(&self.marker) {
            self.kill_everything();
            panic!("processes left behind: {left:?}");
        }
        let mut stdout = std::mem::take(&mut self.stdout);
        stdout.extend(self.lines.iter());
        let stderr = self.stderr.join().unwrap();
        let left: Vec<_> = std::fs::read_dir(&self.tmpdir).unwrap().flatten().collect();
        assert!(left.is_empty(), "left in TMPDIR: {left:?}");
        let _ = std::fs::remove_dir(&self.tmpdir);
        Outcome {
            status,
            stdout: stdout.join("\n"),
            stderr,
        }
    }
}

/// Processes (zombies excluded: their environment reads empty) with the marker.
fn processes_with(marker: &str) -> Vec<i32> {
    let needle = format!("EXAMPLES_TEST_MARKER={marker}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|&b| b == 0)
            .any(|var| var == needle.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}

/// Allows the kernel a moment to deliver parent-death signals.
fn nothing_left(marker: &str) -> Result<(), Vec<i32>> {
    let started = Instant::now();
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return Ok(());
        }
        if started.elapsed() > PROMPTLY {
            return Err(left);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error:")).collect()
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
            "error: the child process failed: it was killed by signal 9 (SIGKILL)",
        ),
        (
            &["argument-and-queue", "--n", "8"][..],
            1,
            "error: the child process failed: it was killed by signal 9 (SIGKILL)",
        ),
        // The other two producers sleep on with their put ends open: the queue does
        // not close, and the parent must not wait for them.
        (
            &["many-producers", "--n", "8", "--producers", "3"][..],
            3,
            "it was killed by signal 9 (SIGKILL)",
        ),
    ] {
        let mut run = Run::start(args, Some("sleep"));
        let pids = run.children(children);
        // Let the children reach their task (connected, asleep).
        run.wait_until_connected();
        thread::sleep(Duration::from_millis(300));
        run.kill_child(pids[0]);
        let outcome = run.finish();
        assert_eq!(
            outcome.status.code(),
            Some(1),
            "{args:?}: {}",
            outcome.stderr
        );
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
        let mut run = Run::start(args, Some("sleep"));
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
        (
            &["many-producers", "--n", "8", "--producers", "2"][..],
            Signal::SIGINT,
        ),
    ] {
        let mut run = Run::start(args, Some("sleep"));
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
        assert_eq!(
            error_lines(&outcome.stderr),
            [expected.as_str()],
            "{args:?}"
        );
    }
}

/// Two runs at the same time, each the whole default sequence at a small size:
/// each has its own sockets and its own children.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = Run::start(&["--n", "40", "--producers", "3"], None);
    let second = Run::start(&["--n", "41", "--producers", "3"], None);
    for (outcome, n) in [(first.finish(), 40), (second.finish(), 41)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts: Vec<&str> = outcome
            .stdout
            .lines()
            .filter(|l| l.starts_with("verdict:"))
            .collect();
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
        let outcome = Run::start_in(&["queue", "--n", "8"], None, Some(tmpdir)).finish();
        assert_eq!(
            outcome.status.code(),
            Some(1),
            "{tmpdir}: {}",
            outcome.stderr
        );
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{tmpdir}: {}", outcome.stderr);
        assert!(errors[0].contains(expected), "{tmpdir}: {}", outcome.stderr);
        assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        assert!(
            !outcome.stdout.contains("parent: started"),
            "{}",
            outcome.stdout
        );
    }
    let _ = std::fs::remove_dir(&long);
}

/// The socket directories are made by ipc-channel with the default permissions, so
/// the program sets a umask of 077 before making them: they and their sockets are
/// the user's alone. They last only until a child connects, so the test reads the
/// umask the parent works under, mid-scene.
#[test]
fn what_the_parent_creates_is_the_users_alone() {
    let mut run = Run::start(&["queue", "--n", "8"], Some("sleep"));
    run.children(1);
    run.wait_for_line("parent: start");
    let status = std::fs::read_to_string(format!("/proc/{}/status", run.process.id())).unwrap();
    let umask = status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))
        .map(str::trim);
    run.signal_parent(Signal::SIGTERM);
    run.finish();
    assert_eq!(umask, Some("0077"));
}

//! The fault suite (docs/reliability.md): what tests/cli.rs does not already try.
//! A killed parent, SIGTERM, a server that panics or dies while a child waits on
//! it, a dead client among busy ones, two runs at once, and a TMPDIR the sockets
//! cannot live in. Every
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

const BIN: &str = env!("CARGO_BIN_EXE_examples-manager");
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
    /// `fault`: which switch (EXAMPLES_CHILD_FAULT or EXAMPLES_SERVER_FAULT), and how.
    fn start(args: &[&str], fault: Option<(&str, &str)>) -> Run {
        Run::start_in(args, fault, None)
    }

    /// `tmpdir`: a TMPDIR of the test's choosing, not checked afterwards; None: a
    /// fresh empty one, checked.
    fn start_in(args: &[&str], fault: Option<(&str, &str)>, tmpdir: Option<&str>) -> Run {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let marker = format!("examples-manager-faults-{}-{count}", std::process::id());
        // Short: the sockets live in here, and a socket's path must fit in 108 bytes.
        let own = std::env::temp_dir().join(format!("emf-{}-{count}", std::process::id()));
        std::fs::create_dir_all(&own).unwrap();
        let tmpdir = tmpdir.map_or(own.clone(), PathBuf::from);
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("EXAMPLES_TEST_MARKER", &marker)
            .env("TMPDIR", &tmpdir)
            .env_remove("EXAMPLES_CHILD_FAULT")
            .env_remove("EXAMPLES_SERVER_FAULT")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((switch, fault)) = fault {
            command.env(switch, fault);
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

    /// Waits until the run has `count` processes started with the hidden
    /// sub-command `role` ("server" or "child"); returns their pids, oldest first.
    fn processes(&self, role: &str, count: usize) -> Vec<i32> {
        loop {
            let mut found: Vec<i32> = processes_with(&self.marker)
                .into_iter()
                .filter(|&pid| {
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    cmdline.split(|&b| b == 0).nth(1) == Some(role.as_bytes())
                })
                .collect();
            if found.len() >= count {
                found.sort();
                return found;
            }
            assert!(
                self.started.elapsed() < DEADLINE,
                "no {role} process started"
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

    fn kill_process(&mut self, pid: i32) {
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

/// SIGKILL of the parent mid-scene: no code of it runs, so the server and the
/// children must end by themselves (their parent-death signal), and no socket
/// directory may be left (each is removed as soon as its process has called back).
#[test]
fn a_parent_killed_mid_scene_leaves_nothing() {
    for (args, children) in [
        (&["child-proxy", "--n", "100"][..], 1),
        (&["mutate", "--n", "100", "--clients", "3"][..], 1),
    ] {
        let mut run = Run::start(args, Some(("EXAMPLES_CHILD_FAULT", "sleep")));
        run.processes("server", 1);
        run.processes("child", children);
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
    let mut run = Run::start(
        &["child-proxy", "--n", "100"],
        Some(("EXAMPLES_CHILD_FAULT", "sleep")),
    );
    run.processes("child", 1);
    thread::sleep(Duration::from_millis(300));
    run.signal_parent(Signal::SIGTERM);
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(143), "{}", outcome.stderr);
    assert_eq!(
        error_lines(&outcome.stderr),
        ["error: interrupted by SIGTERM; cleaned up"]
    );
}

/// The server dying in ways cli.rs does not try: a panic, an exit in the scenes
/// with children, and a SIGKILL while a child is waiting for its answer. The
/// parent says how the server ended, in one line, within a few seconds.
#[test]
fn a_server_that_dies_fails_the_scene_promptly() {
    for (args, fault, expected) in [
        (
            &["slice", "--n", "100"][..],
            "panic",
            "error: the server process failed: exit status 101: the server did not answer `sum`",
        ),
        (
            &["child-proxy", "--n", "100"][..],
            "exit",
            "error: the server process failed: exit status 3: the server did not answer `sum`",
        ),
        (
            &["mutate", "--n", "100", "--clients", "2"][..],
            "exit",
            "error: the server process failed: exit status 3: the child process failed: exit status 1",
        ),
    ] {
        let outcome = Run::start(args, Some(("EXAMPLES_SERVER_FAULT", fault))).finish();
        assert_eq!(
            outcome.status.code(),
            Some(1),
            "{args:?}: {}",
            outcome.stderr
        );
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{args:?}: {}", outcome.stderr);
        assert!(
            errors[0].starts_with(expected),
            "{args:?}: {}",
            outcome.stderr
        );
        assert!(!outcome.stdout.contains("verdict:"), "{}", outcome.stdout);
    }

    // The server stops answering (asleep) while the mutate scene's child waits in
    // its first request; then it is killed.
    let mut run = Run::start(
        &["mutate", "--n", "100"],
        Some(("EXAMPLES_SERVER_FAULT", "sleep")),
    );
    let server = run.processes("server", 1)[0];
    run.processes("child", 1);
    thread::sleep(Duration::from_millis(300));
    run.kill_process(server);
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    assert_eq!(
        error_lines(&outcome.stderr),
        [
            "error: the server process was killed by signal 9 (SIGKILL): the child process failed: exit status 1"
        ]
    );
}

/// Two runs at the same time, each the whole default sequence at a small size:
/// each has its own server, sockets and children.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = Run::start(&["--n", "2000", "--clients", "2"], None);
    let second = Run::start(&["--n", "3000", "--clients", "2"], None);
    for (outcome, n) in [(first.finish(), 2000), (second.finish(), 3000)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts: Vec<&str> = outcome
            .stdout
            .lines()
            .filter(|l| l.starts_with("verdict:"))
            .collect();
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
        let outcome = Run::start_in(&["slice", "--n", "8"], None, Some(tmpdir)).finish();
        assert_eq!(
            outcome.status.code(),
            Some(1),
            "{tmpdir}: {}",
            outcome.stderr
        );
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{tmpdir}: {}", outcome.stderr);
        assert!(errors[0].contains("TMPDIR"), "{tmpdir}: {}", outcome.stderr);
        assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        assert!(
            !outcome.stdout.contains("parent: the server"),
            "{}",
            outcome.stdout
        );
    }
}

/// The socket directories are made by ipc-channel with the default permissions, so
/// the program sets a umask of 077 before making them: they and their sockets are
/// the user's alone. They last only until the process called back, so the test
/// reads the umask the parent works under, mid-scene.
#[test]
fn what_the_parent_creates_is_the_users_alone() {
    let mut run = Run::start(
        &["child-proxy", "--n", "8"],
        Some(("EXAMPLES_CHILD_FAULT", "sleep")),
    );
    run.processes("child", 1);
    let status = std::fs::read_to_string(format!("/proc/{}/status", run.process.id())).unwrap();
    let umask = status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))
        .map(str::trim);
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
        // 2^61 f64: 2^64 bytes, one more than any address space.
        (&["mutate", "--n", "2305843009213693952"][..], 1),
    ] {
        let outcome = Run::start(args, None).finish();
        assert_eq!(
            outcome.status.code(),
            Some(code),
            "{args:?}: {}",
            outcome.stderr
        );
        assert_eq!(
            error_lines(&outcome.stderr).len(),
            1,
            "{args:?}: {}",
            outcome.stderr
        );
        assert!(
            !outcome.stderr.contains("panicked") && !outcome.stderr.contains("backtrace"),
            "{args:?}: {}",
            outcome.stderr
        );
        assert!(!outcome.stdout.contains("parent: the server"), "{args:?}");
    }
}

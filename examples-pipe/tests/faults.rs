//! The fault suite (docs/reliability.md): what tests/pipe.rs does not already try.
//! A child killed mid-scene, SIGINT, two runs at once, and more bad input. Every
//! run gets its own marker (an environment variable every process of the run
//! inherits) and its own empty TMPDIR; afterwards no process of the run may be left
//! and TMPDIR must still be empty.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_examples-pipe");
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
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let marker = format!("examples-pipe-faults-{}-{count}", std::process::id());
        let tmpdir = std::env::temp_dir().join(&marker);
        std::fs::create_dir_all(&tmpdir).unwrap();
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
            tmpdir,
            process,
            lines,
            stdout: Vec::new(),
            stderr,
            started: Instant::now(),
            fault_at: None,
        }
    }

    /// The pid of the child: the process of this run that is not the parent.
    fn child_pid(&self) -> i32 {
        let parent = self.process.id() as i32;
        loop {
            if let Some(&pid) = processes_with(&self.marker).iter().find(|&&p| p != parent) {
                return pid;
            }
            assert!(self.started.elapsed() < DEADLINE, "no child appeared");
            thread::sleep(Duration::from_millis(20));
        }
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

/// The child, asleep before it sends anything, is killed: the parent reads an
/// early end of the stream, and reports the death (the cause) rather than the short
/// stream (the symptom), in one line, within a few seconds.
#[test]
fn a_child_killed_mid_scene_fails_the_parent_promptly() {
    let mut run = Run::start(&["pipe", "--n", "50"], Some("sleep"));
    let child = run.child_pid();
    thread::sleep(Duration::from_millis(300));
    run.fault_at = Some(Instant::now());
    kill(Pid::from_raw(child), Signal::SIGKILL).unwrap();
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    let errors = error_lines(&outcome.stderr);
    assert_eq!(errors.len(), 1, "{}", outcome.stderr);
    assert!(
        errors[0].starts_with("error: the child process failed: killed by signal 9 (SIGKILL)"),
        "{}",
        outcome.stderr
    );
    assert!(!outcome.stdout.contains("verdict:"), "{}", outcome.stdout);
}

/// SIGINT (Ctrl-C) to the parent mid-scene; pipe.rs tries SIGTERM.
#[test]
fn sigint_to_the_parent_kills_the_child_and_says_so() {
    let mut run = Run::start(&["pipe", "--n", "50"], Some("sleep"));
    run.child_pid();
    thread::sleep(Duration::from_millis(300));
    run.signal_parent(Signal::SIGINT);
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(130), "{}", outcome.stderr);
    assert_eq!(
        error_lines(&outcome.stderr),
        ["error: interrupted by SIGINT; cleaned up"]
    );
}

/// Two runs at the same time, each the default sequence at a small size: a pipe has
/// no name, so each run has its own.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = Run::start(&["--n", "300"], None);
    let second = Run::start(&["--n", "301"], None);
    for (outcome, n) in [(first.finish(), 300), (second.finish(), 301)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts: Vec<&str> = outcome
            .stdout
            .lines()
            .filter(|l| l.starts_with("verdict:"))
            .collect();
        assert_eq!(verdicts.len(), 1, "{}", outcome.stdout);
        assert!(
            verdicts[0].contains(&format!("all {} elements arrived", n * n)),
            "{verdicts:?}"
        );
    }
}

/// Bad input that pipe.rs does not try: each is one `error:` line on stderr, a
/// non-zero exit, no backtrace, and no child started.
#[test]
fn more_bad_input_is_one_clear_error() {
    for (args, code) in [
        (&["--n"][..], 2),
        (&["--n", ""][..], 2),
        (&["--n", "-5"][..], 2),
        (&["--n", "1.5"][..], 2),
        (&["--n", "18446744073709551616"][..], 2),
        (&["--via"][..], 2),
        (&["--pipe-size", "3000000000"][..], 2),
        (&["--bogus"][..], 2),
        (&["pipe", "extra"][..], 2),
        // Far above /proc/sys/fs/pipe-max-size: the kernel refuses it.
        (&["--n", "3", "--pipe-size", "2147483647"][..], 1),
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
        assert!(
            !outcome.stdout.contains("child:"),
            "{args:?}: {}",
            outcome.stdout
        );
    }
}

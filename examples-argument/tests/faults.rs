//! The fault suite (docs/reliability.md): what tests/argument.rs does not already
//! try. Signals to the parent mid-scene, two runs at once, and more bad input. Every
//! run gets its own marker (an environment variable every process of the run
//! inherits) and its own empty TMPDIR; afterwards no process of the run may be left
//! and TMPDIR must still be empty.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigHandler, Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_examples-argument");
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
        let marker = format!("examples-argument-faults-{}-{count}", std::process::id());
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
        // A test run started in the background by a script (`cargo test &`) ignores
        // SIGINT, and so would the program, which keeps the default action: give it
        // the default back, as a program started from a terminal has it.
        // SAFETY: this runs in the forked child before exec; `signal` (sigaction) is
        // async-signal-safe, and nothing is allocated.
        unsafe {
            command.pre_exec(|| {
                for signal in [Signal::SIGINT, Signal::SIGTERM] {
                    nix::sys::signal::signal(signal, SigHandler::SigDfl)?;
                }
                Ok(())
            });
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

/// SIGINT and SIGTERM to the parent, mid-scene, while its child works.
///
/// This program has nothing to remove but its child, and the child dies with the
/// parent by its parent-death signal. So the parent keeps the default action
/// (it ends, killed by the signal, as a shell reports it) and the test's claim is
/// that nothing survives it.
#[test]
fn sigint_and_sigterm_to_the_parent_leave_nothing() {
    for scene in ["argument", "inherit"] {
        for signal in [Signal::SIGINT, Signal::SIGTERM] {
            let mut run = Run::start(&[scene, "--n", "50"], Some("sleep"));
            // The child prints its first corner after the fault switch: wait for
            // the child to exist, then a moment for it to reach its task.
            run.wait_for_line("parent: created ones");
            run.child_pid();
            thread::sleep(Duration::from_millis(200));
            run.signal_parent(signal);
            let outcome = run.finish();
            assert_eq!(
                outcome.status.signal(),
                Some(signal as i32),
                "{scene} {signal}: {:?} {}",
                outcome.status,
                outcome.stderr
            );
            assert!(!outcome.stdout.contains("verdict:"), "{}", outcome.stdout);
            assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        }
    }
}

/// The same as the kill test in argument.rs, with the deadline the fault suite
/// asks for: the parent reports the killed child within a few seconds.
#[test]
fn a_child_killed_mid_scene_fails_the_parent_promptly() {
    for scene in ["argument", "inherit"] {
        let mut run = Run::start(&[scene, "--n", "50"], Some("sleep"));
        run.wait_for_line("parent: created ones");
        let child = run.child_pid();
        thread::sleep(Duration::from_millis(200));
        run.fault_at = Some(Instant::now());
        kill(Pid::from_raw(child), Signal::SIGKILL).unwrap();
        let outcome = run.finish();
        assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
        assert_eq!(
            error_lines(&outcome.stderr),
            ["error: the child process failed: it was killed by signal 9 (SIGKILL)"],
            "{scene}"
        );
    }
}

/// Two runs at the same time, each the whole default sequence at a small size.
/// Nothing here has a name two runs could share; the test keeps it that way.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = Run::start(&["--n", "300"], None);
    let second = Run::start(&["--n", "301"], None);
    for (outcome, n) in [(first.finish(), 300), (second.finish(), 301)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let elements = format!("in all {} elements", n * n);
        let verdicts: Vec<&str> = outcome
            .stdout
            .lines()
            .filter(|l| l.starts_with("verdict:"))
            .collect();
        assert_eq!(verdicts.len(), 2, "{}", outcome.stdout);
        assert!(
            verdicts.iter().all(|v| v.contains(&elements)),
            "{verdicts:?}"
        );
    }
}

/// Bad input that argument.rs does not try: each is one `error:` line on stderr,
/// a non-zero exit, no backtrace, and no child started.
#[test]
fn more_bad_input_is_one_clear_error() {
    for (args, code) in [
        (&["--n"][..], 2),
        (&["--n", ""][..], 2),
        (&["--n", "1.5"][..], 2),
        (&["--n", "1e4"][..], 2),
        // One more than u64::MAX: not a number this program can take.
        (&["--n", "18446744073709551616"][..], 2),
        (&["--bogus"][..], 2),
        (&["argument", "--path", "/tmp/x"][..], 2),
        (&["inherit", "extra"][..], 2),
        // 3,037,000,500^2 * 8 bytes overflows: refused before allocating.
        (&["argument", "--n", "3037000500"][..], 1),
        // 2,000,000^2 f64 = 32 TB, twice: more than any machine here has.
        (&["argument", "--n", "2000000"][..], 1),
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

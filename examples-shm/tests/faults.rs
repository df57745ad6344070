//! The fault suite (docs/reliability.md): what tests/shm.rs does not already try.
//! Faults in the copy-in and anonymous scenes, SIGTERM in named, two runs at once
//! with default names, and more bad input. Every run gets its own marker (an
//! environment variable every process of the run inherits) and its own empty
//! TMPDIR; afterwards no process of the run may be left, TMPDIR must still be
//! empty, and /dev/shm must hold no segment with the run's default name.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_examples-shm");
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
        let marker = format!("examples-shm-faults-{}-{count}", std::process::id());
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
        let segments = segments_of(self.process.id());
        assert!(segments.is_empty(), "left in /dev/shm: {segments:?}");
        let _ = std::fs::remove_dir(&self.tmpdir);
        Outcome {
            status,
            stdout: stdout.join("\n"),
            stderr,
        }
    }
}

/// Segments in /dev/shm with the default name of a run whose parent is `pid`:
/// "exshm-<pid>-<random>".
fn segments_of(pid: u32) -> Vec<String> {
    let prefix = format!("exshm-{pid}-");
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix))
        .collect()
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

/// The forked child of copy-in (shm.rs kills the children of named and anonymous)
/// is killed mid-scene: one line, within a few seconds, nothing left.
#[test]
fn a_child_killed_in_copy_in_fails_the_parent_promptly() {
    let mut run = Run::start(&["copy-in", "--n", "1000"], Some("sleep"));
    run.wait_for_line("child: forked");
    let child = run.child_pid();
    run.fault_at = Some(Instant::now());
    kill(Pid::from_raw(child), Signal::SIGKILL).unwrap();
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    assert_eq!(
        error_lines(&outcome.stderr),
        ["error: the child process failed: was killed by signal 9 (SIGKILL)"]
    );
}

/// The signals shm.rs does not send: SIGTERM in named with the default (early)
/// unlink, SIGINT in anonymous. One line, exit 128 + the signal, nothing left.
#[test]
fn sigint_and_sigterm_in_the_other_scenes_clean_up() {
    for (scene, signal, ready) in [
        ("named", Signal::SIGTERM, "child: attached to"),
        ("anonymous", Signal::SIGINT, "child: forked"),
    ] {
        let mut run = Run::start(&[scene, "--n", "1000"], Some("sleep"));
        run.wait_for_line(ready);
        run.signal_parent(signal);
        let outcome = run.finish();
        assert_eq!(
            outcome.status.code(),
            Some(128 + signal as i32),
            "{scene}: {}",
            outcome.stderr
        );
        let expected = format!("error: interrupted by {signal}; cleaned up");
        assert_eq!(error_lines(&outcome.stderr), [expected.as_str()], "{scene}");
    }
}

/// SIGKILL of the parent in copy-in (shm.rs tries named and anonymous): the
/// mapping has no name, so nothing can be left but the child, which dies by its
/// parent-death signal.
#[test]
fn a_parent_killed_in_copy_in_leaves_nothing() {
    let mut run = Run::start(&["copy-in", "--n", "1000"], Some("sleep"));
    run.wait_for_line("child: forked");
    run.signal_parent(Signal::SIGKILL);
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), None, "killed, not exited");
}

/// Two runs at the same time, each the whole default sequence at a small size
/// with the default segment name: each run's name is its own (pid and random).
#[test]
fn two_runs_at_once_with_default_names_do_not_interfere() {
    let first = Run::start(&["--n", "3000"], None);
    let second = Run::start(&["--n", "3001"], None);
    for (outcome, n) in [(first.finish(), 3000), (second.finish(), 3001)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts: Vec<&str> = outcome
            .stdout
            .lines()
            .filter(|l| l.starts_with("verdict:"))
            .collect();
        assert_eq!(verdicts.len(), 3, "{}", outcome.stdout);
        let elements = format!("in all {n} elements");
        assert!(
            verdicts.iter().all(|v| v.contains(&elements)),
            "{verdicts:?}"
        );
    }
}

/// Bad input that shm.rs does not try: one `error:` line, a non-zero exit, no
/// backtrace, and no segment or child made.
#[test]
fn more_bad_input_is_one_clear_error() {
    for (args, code) in [
        (&["--n"][..], 2),
        (&["--n", ""][..], 2),
        (&["--n", "-5"][..], 2),
        (&["--n", "1.5"][..], 2),
        (&["--n", "18446744073709551616"][..], 2),
        (&["--bogus"][..], 2),
        (&["named", "extra"][..], 2),
        (&["named", "--name", ""][..], 2),
        (&["named", "--name", ".."][..], 2),
        (&["named", "--name", "café"][..], 2),
        // 2^61 f64 is 2^64 bytes: more than any address space.
        (&["named", "--n", "2305843009213693952"][..], 1),
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
        assert!(!outcome.stdout.contains("parent: created"), "{args:?}");
    }
}

/// A name that does not exist, where one is opened rather than created: the
/// hidden child, started by hand as its parent would start it.
#[test]
fn opening_a_missing_segment_is_one_clear_error() {
    let name = format!("/exshm-t{}-missing", std::process::id());
    let parent = std::process::id().to_string();
    let outcome = Run::start(
        &[
            "child-named",
            "--name",
            &name,
            "--n",
            "10",
            "--parent-pid",
            &parent,
        ],
        None,
    )
    .finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    assert_eq!(
        error_lines(&outcome.stderr),
        [format!("error: there is no shared-memory segment named {name}").as_str()]
    );
}

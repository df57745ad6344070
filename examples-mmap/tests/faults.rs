//! The fault suite (docs/reliability.md): what tests/mmap.rs does not already try.
//! Killed children and SIGINT in the one-child scenes, what a killed parent leaves,
//! two runs at once, the permissions of the file, and more bad paths and input.
//! Every
//! run gets its own marker (an environment variable every process of the run
//! inherits) and its own empty TMPDIR; afterwards no process of the run may be left
//! and TMPDIR must still be empty.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_examples-mmap");
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
        let marker = format!("examples-mmap-faults-{}-{count}", std::process::id());
        let own = std::env::temp_dir().join(&marker);
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
    fn finish(self) -> Outcome {
        let (outcome, left) = self.finish_and_list();
        assert!(left.is_empty(), "left in TMPDIR: {left:?}");
        outcome
    }

    /// The same, but returns what is left in TMPDIR, with its permission bits (and
    /// then removes it), for the cases where the test expects something there.
    fn finish_and_list(mut self) -> (Outcome, Vec<(PathBuf, u32)>) {
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
        let left: Vec<(PathBuf, u32)> = std::fs::read_dir(&self.tmpdir)
            .unwrap()
            .flatten()
            .map(|entry| {
                let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
                (entry.path(), mode)
            })
            .collect();
        let _ = std::fs::remove_dir_all(&self.tmpdir);
        let outcome = Outcome {
            status,
            stdout: stdout.join("\n"),
            stderr,
        };
        (outcome, left)
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

/// The scenes with one child, which tests/mmap.rs fails only by exit and panic: a
/// child killed mid-scene is reported within a few seconds, and the scratch
/// directory is removed.
#[test]
fn a_child_killed_mid_scene_fails_the_parent_promptly() {
    for scene in ["one-child", "copy-on-write"] {
        let mut run = Run::start(&[scene, "--n", "100"], Some("sleep"));
        let child = run.children(1)[0];
        thread::sleep(Duration::from_millis(300));
        run.kill_child(child);
        let outcome = run.finish();
        assert_eq!(
            outcome.status.code(),
            Some(1),
            "{scene}: {}",
            outcome.stderr
        );
        assert_eq!(
            error_lines(&outcome.stderr),
            ["error: the child process failed: was killed by signal 9 (SIGKILL)"],
            "{scene}"
        );
    }
}

/// SIGINT and SIGTERM in the one-child scenes (tests/mmap.rs tries them in
/// many-children-locked): one line, and the scratch directory is gone.
#[test]
fn sigint_and_sigterm_in_the_one_child_scenes_clean_up() {
    for (scene, signal, code) in [
        ("one-child", Signal::SIGINT, 130),
        ("copy-on-write", Signal::SIGTERM, 143),
    ] {
        let mut run = Run::start(&[scene, "--n", "100"], Some("sleep"));
        run.children(1);
        thread::sleep(Duration::from_millis(300));
        run.signal_parent(signal);
        let outcome = run.finish();
        assert_eq!(
            outcome.status.code(),
            Some(code),
            "{scene}: {}",
            outcome.stderr
        );
        let expected = format!("error: interrupted by {signal}; cleaned up");
        assert_eq!(error_lines(&outcome.stderr), [expected.as_str()]);
    }
}

/// The limit docs/reliability.md states: SIGKILL gives the parent no chance to
/// remove its scratch directory, so the directory (owner-only) and its file stay
/// in TMPDIR. The children still go, by their parent-death signal.
#[test]
fn a_parent_killed_mid_scene_leaves_only_its_scratch_directory() {
    let mut run = Run::start(
        &["many-children", "--n", "1000", "--children", "3"],
        Some("sleep"),
    );
    run.children(3);
    thread::sleep(Duration::from_millis(300));
    run.signal_parent(Signal::SIGKILL);
    let (outcome, left) = run.finish_and_list();
    assert_eq!(outcome.status.signal(), Some(9));
    assert_eq!(left.len(), 1, "{left:?}");
    let (dir, mode) = &left[0];
    let name = dir.file_name().unwrap().to_string_lossy();
    assert!(name.starts_with("examples-mmap-"), "{left:?}");
    assert_eq!(*mode, 0o700, "{left:?}");
}

/// Two runs at the same time, each the whole default sequence at a small size,
/// each with its own scratch directory.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = Run::start(&["--n", "3000", "--children", "3"], None);
    let second = Run::start(&["--n", "3001", "--children", "3"], None);
    for (outcome, n) in [(first.finish(), 3000), (second.finish(), 3001)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts: Vec<&str> = outcome
            .stdout
            .lines()
            .filter(|l| l.starts_with("verdict:"))
            .collect();
        assert_eq!(verdicts.len(), 4, "{}", outcome.stdout);
        assert!(
            verdicts[2].contains(&format!("all {n} values are exactly 3")),
            "{verdicts:?}"
        );
    }
}

/// A file the program creates at --path is the user's alone, like the scratch
/// directory (0700) that holds the default file.
#[test]
fn a_file_created_at_path_is_the_users_alone() {
    let dir =
        std::env::temp_dir().join(format!("examples-mmap-faults-{}-perm", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kept.f32");
    let outcome = Run::start(
        &["one-child", "--n", "100", "--path", path.to_str().unwrap()],
        None,
    )
    .finish();
    assert!(outcome.status.success(), "{}", outcome.stderr);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(mode & 0o777, 0o600);
}

/// Paths and input that tests/mmap.rs does not try: each is one `error:` line,
/// a non-zero exit, no backtrace and no child.
#[test]
fn more_bad_paths_and_input_are_one_clear_error() {
    for (args, code, text) in [
        // A directory, not a file.
        (
            &["one-child", "--path", "/tmp"][..],
            1,
            "cannot create /tmp",
        ),
        // Under a file, not a directory.
        (
            &["one-child", "--path", "/proc/self/status/data.f32"][..],
            1,
            "cannot create",
        ),
        (&["one-child", "--path", ""][..], 2, "a value is required"),
        (&["--n"][..], 2, ""),
        (&["--n", ""][..], 2, ""),
        (&["--n", "1.5"][..], 2, ""),
        (&["--n", "18446744073709551616"][..], 2, ""),
        (&["--children", "abc"][..], 2, ""),
        (&["--bogus"][..], 2, ""),
        (&["one-child", "extra"][..], 2, ""),
        (&["one-child", "--name", "x"][..], 2, ""),
    ] {
        let outcome = Run::start(args, None).finish();
        assert_eq!(
            outcome.status.code(),
            Some(code),
            "{args:?}: {}",
            outcome.stderr
        );
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{args:?}: {}", outcome.stderr);
        assert!(errors[0].contains(text), "{args:?}: {}", outcome.stderr);
        assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        assert!(
            !outcome.stdout.contains("child"),
            "{args:?}: {}",
            outcome.stdout
        );
    }
    // TMPDIR, where the scratch directory goes, missing or not a directory.
    for tmpdir in ["/nonexistent/examples-mmap", "/proc/self/status"] {
        let outcome = Run::start_in(&["one-child", "--n", "10"], None, Some(tmpdir)).finish();
        assert_eq!(
            outcome.status.code(),
            Some(1),
            "{tmpdir}: {}",
            outcome.stderr
        );
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{tmpdir}: {}", outcome.stderr);
        let expected = format!("error: cannot create a temporary directory in {tmpdir}");
        assert!(errors[0].starts_with(&expected), "{}", outcome.stderr);
    }
}

//! Python beside the program, for real: Python children (docs/python/mmap_child.py)
//! in one-child and many-children, and a Python parent (docs/python/mmap_parent.py)
//! handing its numpy file to our child. Also the `--child-cmd` rules that need no
//! Python.
//!
//! The Python tests need a Python with numpy: EXAMPLES_PYTHON, else python3.
//! Without one they say so in one line and pass, unless EXAMPLES_REQUIRE_PYTHON=1
//! (CI sets it): then they fail.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use test_support::processes_with;

const BIN: &str = env!("CARGO_BIN_EXE_examples-mmap");
const DEADLINE: Duration = Duration::from_secs(30);

fn script(name: &str) -> String {
    format!("{}/../docs/python/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A Python with numpy, or None after one line saying the test was skipped.
fn python_with_numpy(test: &str) -> Option<String> {
    let python = std::env::var("EXAMPLES_PYTHON").unwrap_or_else(|_| "python3".into());
    let found = Command::new(&python)
        .args(["-c", "import numpy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Some(python);
    }
    assert!(
        std::env::var("EXAMPLES_REQUIRE_PYTHON").as_deref() != Ok("1"),
        "EXAMPLES_REQUIRE_PYTHON=1 but there is no Python with numpy at {python:?} \
         (set EXAMPLES_PYTHON)"
    );
    // Straight to stderr, not eprintln!: the test harness hides what a passing
    // test prints with the macros, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: no Python with numpy at {python:?} (set EXAMPLES_PYTHON)"
    );
    None
}

/// `--child-cmd` for a Python script (and its options), quoted for /bin/sh.
fn python_child(python: &str, script_name: &str, options: &str) -> String {
    format!("{} {} {options}", sh_quote(python), sh_quote(&script(script_name)))
        .trim_end()
        .to_string()
}

/// `args` with ` --fail FAULT` added to the value of `--child-cmd`.
fn with_fault(args: &[&str], fault: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    if let (Some(fault), Some(at)) = (fault, args.iter().position(|arg| arg == "--child-cmd")) {
        args[at + 1] = format!("{} --fail {fault}", args[at + 1]);
    }
    args
}

fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// One test's world: its own TMPDIR (so "nothing left behind" can be checked) and a
/// marker in the environment of every process it starts, Python's too.
struct World {
    tmp: PathBuf,
    marker: String,
}

impl World {
    fn new(tag: &str) -> World {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let marker = format!("mmap-py-test-{}-{count}-{tag}", std::process::id());
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&marker);
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        World { tmp, marker }
    }

    /// `fault`: the Python child's `--fail` option, added to its `--child-cmd`.
    fn start(&self, program: &str, args: &[&str], fault: Option<&str>) -> Started {
        let mut command = Command::new(program);
        command
            .args(with_fault(args, fault))
            .env("TMPDIR", &self.tmp)
            .env("EXAMPLES_TEST_MARKER", &self.marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let read = |mut pipe: Box<dyn Read + Send>| {
            thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = read(Box::new(child.stdout.take().unwrap()));
        let stderr = read(Box::new(child.stderr.take().unwrap()));
        Started { child, stdout, stderr }
    }

    fn run(&self, args: &[&str], fault: Option<&str>) -> Finished {
        self.start(BIN, args, fault).finish()
    }

    /// Pids of live processes whose environment holds our marker.
    fn processes(&self) -> Vec<u32> {
        processes_with(&self.marker).into_iter().map(|pid| pid as u32).collect()
    }

    /// Wait (bounded) until `count` of our processes are alive.
    fn wait_for_processes(&self, count: usize) {
        let until = Instant::now() + DEADLINE;
        while self.processes().len() < count {
            assert!(Instant::now() < until, "fewer than {count} processes started");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn left_in_tmp(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.tmp).unwrap().flatten().map(|e| e.path()).collect()
    }

    /// No process of ours alive, and the temporary directory empty.
    fn assert_nothing_left(&self) {
        let until = Instant::now() + Duration::from_secs(5);
        while !self.processes().is_empty() && Instant::now() < until {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.processes(), Vec::<u32>::new(), "processes left behind");
        assert_eq!(self.left_in_tmp(), Vec::<PathBuf>::new(), "left in TMPDIR");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

struct Started {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

impl Started {
    /// Wait for the exit (killing the program after the deadline) and collect its
    /// output. The pipes close when the last process holding them exits: a child
    /// left running would keep them open, and that is a failure, not a wait.
    fn finish(mut self) -> Finished {
        let until = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("the program did not finish within {DEADLINE:?}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        let until = Instant::now() + Duration::from_secs(5);
        while !(self.stdout.is_finished() && self.stderr.is_finished()) {
            assert!(
                Instant::now() < until,
                "the program exited, but something still holds its output open"
            );
            thread::sleep(Duration::from_millis(10));
        }
        Finished {
            status,
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
        }
    }
}

#[derive(Debug)]
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn error_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("error:")).collect()
    }

    fn verdicts(&self) -> Vec<String> {
        test_support::verdicts(&self.stdout)
    }

    /// The scratch file's path, from "parent: created PATH with ...".
    fn file(&self) -> &str {
        let created = self
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("parent: created "))
            .expect("a `parent: created` line");
        created.split(" with ").next().unwrap()
    }
}

fn send(pid: u32, signal: &str) {
    let status =
        Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

const ONES: &str = "[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]";
const TWOS: &str = "[2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]";

#[test]
fn a_python_child_maps_the_file_and_the_parent_sees_its_change() {
    let Some(python) = python_with_numpy("a_python_child_maps_the_file") else {
        return;
    };
    let world = World::new("one");
    let cmd = python_child(&python, "mmap_child.py", "");
    let done = world.run(&["one-child", "--n", "1000", "--child-cmd", &cmd], None);
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    // What the built-in child prints, now printed by Python, in the same place.
    let file = done.file();
    assert!(
        done.stdout.contains(&format!("parent: the child runs: {cmd} {file} 1000")),
        "{done:?}"
    );
    let expected = [
        format!("child: first 10 values: {ONES}"),
        format!("child: first 10 values: {TWOS}"),
        format!("parent: first 10 values: {TWOS}"),
    ];
    let lines: Vec<&str> = done.stdout.lines().filter(|l| l.contains("first 10 values")).collect();
    assert_eq!(lines[1..], expected, "{done:?}");
    assert_eq!(
        done.verdicts(),
        ["verdict: shared: the parent sees the child's 2 in all 1000 values; both mapped one file"],
        "{done:?}"
    );
    assert_eq!(done.stderr, "", "{done:?}");
    world.assert_nothing_left();
}

#[test]
fn python_children_race_without_a_lock_and_the_parent_counts_every_value() {
    let Some(python) = python_with_numpy("python_children_race") else {
        return;
    };
    let world = World::new("many");
    let cmd = python_child(&python, "mmap_child.py", "--quiet");
    let done = world
        .run(&["many-children", "--n", "200000", "--children", "3", "--child-cmd", &cmd], None);
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    let file = done.file();
    assert!(
        done.stdout.contains(&format!("parent: each child runs: {cmd} {file} 200000 ID")),
        "{done:?}"
    );
    assert!(!done.stdout.contains("child: "), "--quiet children print nothing");
    // Lost updates or none, the parent's tally over all values stands: whole
    // numbers from 1 to 3 only (anything else would be a bug and exit 1).
    let verdicts = done.verdicts();
    assert_eq!(verdicts.len(), 1, "{done:?}");
    assert!(
        verdicts[0].starts_with("verdict: no lock: ")
            && verdicts[0].contains(" of 200000 values ended below 3")
            || verdicts[0].starts_with("verdict: no lock: all 200000 values are 3;"),
        "{done:?}"
    );
    assert_eq!(done.stderr, "", "{done:?}");
    world.assert_nothing_left();
}

#[test]
fn a_python_parent_hands_its_numpy_file_to_our_child() {
    let Some(python) = python_with_numpy("a_python_parent_hands_its_file") else {
        return;
    };
    let world = World::new("parent");
    let done =
        world.start(&python, &[&script("mmap_parent.py"), BIN, "--n", "1000"], None).finish();
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    let expected = [
        format!("child: first 10 values: {ONES}"),
        format!("child: first 10 values: {TWOS}"),
        "child: memory: the array's 4000 bytes are too small to tell (under 1 MB)".into(),
        "python: the child exited with status 0".into(),
        format!("python: first 10 values: {TWOS}"),
        "python: 1000 of 1000 values are 2.0".into(),
        "python: ok: the Rust child's +1 is in every value of numpy's file".into(),
    ];
    let lines: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(lines[lines.len() - expected.len()..], expected, "{done:?}");
    assert_eq!(done.stderr, "", "{done:?}");
    world.assert_nothing_left();
}

#[test]
fn failing_python_children_are_a_clear_error_and_nothing_is_left() {
    let Some(python) = python_with_numpy("failing_python_children") else {
        return;
    };
    let cmd = python_child(&python, "mmap_child.py", "--quiet");
    // exit: sys.exit(3); panic: an uncaught exception, which Python ends with status 1.
    for (fault, status) in [("exit", 3), ("panic", 1)] {
        let world = World::new(fault);
        let done = world.run(&["one-child", "--n", "1000", "--child-cmd", &cmd], Some(fault));
        assert_eq!(done.status.code(), Some(1), "{fault}: {done:?}");
        let expected = format!(
            "error: the child process failed: exit status {status} (child command: {cmd} --fail {fault})"
        );
        assert_eq!(done.error_lines(), [expected.as_str()], "{done:?}");
        assert!(done.verdicts().is_empty(), "{done:?}");
        world.assert_nothing_left();

        let world = World::new(fault);
        let args = ["many-children", "--n", "1000", "--children", "3"];
        let done = world.run(&[&args[..], &["--child-cmd", &cmd]].concat(), Some(fault));
        assert_eq!(done.status.code(), Some(1), "{fault}: {done:?}");
        let errors = done.error_lines();
        assert_eq!(errors.len(), 1, "{done:?}");
        assert!(
            errors[0].starts_with("error: child ")
                && errors[0].contains(&format!(" of 3 failed: exit status {status}"))
                && errors[0].ends_with(&format!("(child command: {cmd} --fail {fault})")),
            "{done:?}"
        );
        world.assert_nothing_left();
    }
}

#[test]
fn ctrl_c_sigterm_or_sigkill_of_the_parent_stops_the_python_children() {
    let Some(python) = python_with_numpy("ctrl_c_sigterm_or_sigkill") else {
        return;
    };
    let cmd = python_child(&python, "mmap_child.py", "--quiet");
    for (signal, code) in [("INT", Some(130)), ("TERM", Some(143)), ("KILL", None)] {
        let world = World::new("signal");
        let args = ["many-children", "--n", "1000", "--children", "2"];
        let started =
            world.start(BIN, &[&args[..], &["--child-cmd", &cmd]].concat(), Some("sleep"));
        // The parent and its two Python children, which sleep once they have the file.
        world.wait_for_processes(3);
        send(started.child.id(), signal);
        let done = started.finish();
        assert_eq!(done.status.code(), code, "SIG{signal}: {done:?}");
        if code.is_some() {
            let expected = format!("error: interrupted by SIG{signal}; cleaned up");
            assert_eq!(done.error_lines(), [expected.as_str()], "{done:?}");
            world.assert_nothing_left();
        } else {
            // No code runs in a SIGKILLed parent: its watchdog removes the scratch
            // directory, and the Python children die of their parent-death signal.
            let until = Instant::now() + Duration::from_secs(5);
            while !world.left_in_tmp().is_empty() && Instant::now() < until {
                thread::sleep(Duration::from_millis(20));
            }
            world.assert_nothing_left();
        }
    }
}

#[test]
fn the_child_command_gets_path_and_size_as_separate_arguments() {
    // printf shows each argument it got between brackets; it adds nothing, so the
    // parent's check fails as it must: the verdict does not trust the child.
    let world = World::new("args");
    let done = world.run(&["one-child", "--n", "1000", "--child-cmd", "printf '<%s>'"], None);
    assert!(done.stdout.contains(&format!("<{}><1000>", done.file())), "{done:?}");
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert_eq!(
        done.error_lines(),
        ["error: expected 2 in all 1000 values after the child's +1, but 1000 are not 2"],
        "{done:?}"
    );
    world.assert_nothing_left();
}

#[test]
fn a_child_command_that_cannot_run_is_one_clear_error() {
    let world = World::new("missing");
    let cmd = "no-such-program-here --x";
    let done = world.run(&["one-child", "--n", "100", "--child-cmd", cmd], None);
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert_eq!(
        done.error_lines(),
        [format!("error: the child process failed: exit status 127 (child command: {cmd})")],
        "{done:?}"
    );
    assert!(done.stderr.contains("not found"), "the shell says why: {done:?}");
    world.assert_nothing_left();

    for empty in ["", "  "] {
        let done = world.run(&["one-child", "--child-cmd", empty], None);
        assert_eq!(done.status.code(), Some(2), "{done:?}");
        assert_eq!(done.error_lines().len(), 1, "{done:?}");
        assert!(done.stderr.contains("the child command is empty"), "{done:?}");
    }
}

#[test]
fn the_locked_and_copy_on_write_scenes_keep_their_own_children_and_say_why() {
    for scene in ["many-children-locked", "copy-on-write"] {
        let world = World::new("own");
        let done =
            world.run(&[scene, "--n", "1000", "--children", "2", "--child-cmd", "false"], None);
        assert_eq!(done.status.code(), Some(0), "{scene}: {done:?}");
        assert!(done.stdout.contains("parent: --child-cmd is not used here: "), "{done:?}");
        assert_eq!(done.verdicts().len(), 1, "{done:?}");
        world.assert_nothing_left();
    }
}

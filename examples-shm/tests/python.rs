//! Python beside the program, for real: a Python child (docs/python/shm_child.py)
//! in the `named` scene, and a Python parent (docs/python/shm_parent.py) lending
//! its segment to our child. Also the `--child-cmd` rules that need no Python.
//!
//! The Python tests need a Python with numpy: EXAMPLES_PYTHON, else python3.
//! Without one they say so in one line and pass, unless EXAMPLES_REQUIRE_PYTHON=1
//! (CI sets it): then they fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_examples-shm");
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

/// `--child-cmd` for a Python script, quoted for /bin/sh.
fn python_child(python: &str, script_name: &str) -> String {
    format!("{} {}", sh_quote(python), sh_quote(&script(script_name)))
}

fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Every process of one test carries this in its environment (Python's too, and
/// its resource tracker's), so the test finds its own processes and no others.
fn marker(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("shm-py-test-{}-{count}-{tag}", std::process::id())
}

fn unique_name(tag: &str) -> String {
    format!("exshm-p{}-{tag}", std::process::id())
}

fn dev_shm(name: &str) -> String {
    format!("/dev/shm/{}", name.trim_start_matches('/'))
}

fn processes_with(marker: &str) -> Vec<u32> {
    test_support::processes_with(marker).into_iter().map(|pid| pid as u32).collect()
}

/// Every process of the run, its watchdog too.
fn every_process_with(marker: &str) -> Vec<u32> {
    test_support::every_process_with(marker).into_iter().map(|pid| pid as u32).collect()
}

fn assert_nothing_left(marker: &str, segment: &str) {
    let until = Instant::now() + Duration::from_secs(5);
    while !every_process_with(marker).is_empty() && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(every_process_with(marker), Vec::<u32>::new(), "processes left behind");
    assert!(!Path::new(&dev_shm(segment)).exists(), "{} was left behind", dev_shm(segment));
}

struct Started {
    child: Child,
    lines: Receiver<String>,
    stdout_seen: Vec<String>,
    stderr: JoinHandle<String>,
}

/// `fault`: the Python child's `--fail` option, added to the value of `--child-cmd`.
fn start(program: &str, args: &[&str], fault: Option<&str>, marker: &str) -> Started {
    let mut args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    if let (Some(fault), Some(at)) = (fault, args.iter().position(|arg| arg == "--child-cmd")) {
        args[at + 1] = format!("{} --fail {fault}", args[at + 1]);
    }
    let mut command = Command::new(program);
    command.args(args).env("EXAMPLES_TEST_MARKER", marker);
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (sender, lines) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Started { child, lines, stdout_seen: Vec::new(), stderr }
}

impl Started {
    fn wait_for_line(&mut self, text: &str) {
        let until = Instant::now() + DEADLINE;
        while Instant::now() < until {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.stdout_seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) if self.child.try_wait().unwrap().is_some() => break,
                Err(_) => {}
            }
        }
        let _ = self.child.kill();
        panic!("no line with {text:?}; saw {:?}", self.stdout_seen);
    }

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
        // The pipes close when the last process holding them exits. A child left
        // running (say, one that missed its parent-death signal) would hold them
        // open: that is a failure, not something to wait out.
        let until = Instant::now() + Duration::from_secs(5);
        let mut stdout = self.stdout_seen;
        loop {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => stdout.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) if Instant::now() > until => {
                    panic!("the program exited, but something still holds its stdout open");
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        while !self.stderr.is_finished() {
            assert!(
                Instant::now() < until,
                "the program exited, but something still holds its stderr open"
            );
            thread::sleep(Duration::from_millis(10));
        }
        Finished { status, stdout: stdout.join("\n"), stderr: self.stderr.join().unwrap() }
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
}

fn send(pid: u32, signal: &str) {
    let status =
        Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

#[test]
fn a_python_child_attaches_by_name_and_the_parent_sees_its_change() {
    let Some(python) = python_with_numpy("a_python_child_attaches_by_name") else {
        return;
    };
    let marker = marker("child");
    let name = unique_name("child");
    let cmd = python_child(&python, "shm_child.py");
    let done =
        start(BIN, &["named", "--n", "1000", "--name", &name, "--child-cmd", &cmd], None, &marker)
            .finish();
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    let ones = "[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]";
    let twos = "[2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]";
    // What the built-in child prints, now printed by Python, in the same order.
    let command = format!("parent: the child runs: {cmd} /{name} 1000");
    assert!(done.stdout.contains(&command), "{done:?}");
    let expected = [
        format!("child: attached to /{name} by name (8000 bytes mapped)"),
        format!("child: first 10 values: {ones}"),
        "child: added 1 to all 1000 elements".into(),
    ];
    let lines: Vec<&str> = done.stdout.lines().collect();
    let at = lines.iter().position(|l| *l == expected[0]).expect("attached");
    assert_eq!(lines[at..at + expected.len()], expected, "{done:?}");
    assert!(done.stdout.contains(&format!("parent: first 10 values: {twos}")));
    assert_eq!(
        done.verdicts(),
        [format!(
            "verdict: named: the parent sees 2.0 in all 1000 elements: the child's +1 came \
             through the named segment, and /dev/shm/{name} is gone."
        )],
        "{done:?}"
    );
    // Nothing from Python's resource tracker: no "leaked shared_memory" warning,
    // no failed unlink of a name that was ours to remove.
    assert_eq!(done.stderr, "", "{done:?}");
    assert_nothing_left(&marker, &name);

    // --keep: the segment must outlive both processes. Had the Python child left
    // the segment registered with its resource tracker, the tracker would have
    // unlinked it as the child exited.
    let done = start(
        BIN,
        &["named", "--n", "1000", "--name", &name, "--keep", "--child-cmd", &cmd],
        None,
        &marker,
    )
    .finish();
    let kept = std::fs::read(dev_shm(&name));
    let _ = std::fs::remove_file(dev_shm(&name));
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    let kept = kept.expect("the kept segment is still in /dev/shm");
    assert!(
        kept.len() == 8000
            && kept.chunks(8).all(|b| f64::from_le_bytes(b.try_into().unwrap()) == 2.0),
        "the kept segment does not hold 1000 values of 2.0"
    );
    assert_eq!(done.stderr, "", "{done:?}");
    assert_nothing_left(&marker, &name);
}

#[test]
fn a_python_parent_lends_its_segment_to_our_child() {
    let Some(python) = python_with_numpy("a_python_parent_lends_its_segment") else {
        return;
    };
    let marker = marker("parent");
    let started = start(&python, &[&script("shm_parent.py"), BIN, "--n", "1000"], None, &marker);
    let segment = format!("pyshm-{}", started.child.id());
    let done = started.finish();
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    for line in [
        format!("child: attached to /{segment} by name (8000 bytes mapped)"),
        "child: first 10 values: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]".into(),
        "python: the child exited with status 0".into(),
        "python: 1000 of 1000 values are 2.0".into(),
        format!("python: unlinked /{segment}"),
    ] {
        assert!(done.stdout.contains(&line), "no {line:?} in {done:?}");
    }
    assert!(
        done.stdout
            .ends_with("python: ok: the Rust child's +1 is in every element of Python's segment")
    );
    assert_eq!(done.stderr, "", "{done:?}");
    assert_nothing_left(&marker, &segment);
}

#[test]
fn a_failing_python_child_is_a_clear_error_and_nothing_is_left() {
    let Some(python) = python_with_numpy("a_failing_python_child") else {
        return;
    };
    let cmd = python_child(&python, "shm_child.py");
    // exit: sys.exit(3); panic: an uncaught exception, which Python ends with status 1.
    for (fault, status) in [("exit", 3), ("panic", 1)] {
        let marker = marker(fault);
        let name = unique_name(fault);
        let done = start(
            BIN,
            &["named", "--n", "1000", "--name", &name, "--child-cmd", &cmd],
            Some(fault),
            &marker,
        )
        .finish();
        assert_eq!(done.status.code(), Some(1), "{fault}: {done:?}");
        let expected = format!(
            "error: the child process failed: exit status {status} (child command: {cmd} --fail {fault})"
        );
        assert_eq!(done.error_lines(), [expected.as_str()], "{fault}: {done:?}");
        assert!(done.verdicts().is_empty(), "{done:?}");
        assert_nothing_left(&marker, &name);
    }
}

#[test]
fn ctrl_c_or_sigkill_of_the_parent_stops_the_python_child_and_leaves_nothing() {
    let Some(python) = python_with_numpy("ctrl_c_or_sigkill_of_the_parent") else {
        return;
    };
    let cmd = python_child(&python, "shm_child.py");
    // With --keep the name is still there when the signal comes, so the cleanup
    // thread is what removes it. SIGKILL cannot be caught: the Python child dies
    // of the parent-death signal the parent set for it before exec.
    let cases: [(&[&str], &str, Option<i32>); 4] = [
        (&[], "INT", Some(130)),
        (&["--keep"], "INT", Some(130)),
        (&["--keep"], "TERM", Some(143)),
        (&[], "KILL", None),
    ];
    for (extra, signal, code) in cases {
        let marker = marker("signal");
        let name = unique_name("sig");
        let mut args = vec!["named", "--n", "1000", "--name", &name, "--child-cmd", &cmd];
        args.extend(extra);
        let mut started = start(BIN, &args, Some("sleep"), &marker);
        started.wait_for_line("child: attached to");
        // The Python child is running (and sleeping), and so, on Python before
        // 3.13, is its resource tracker.
        assert!(processes_with(&marker).len() >= 2, "no Python child seen");
        send(started.child.id(), signal);
        let done = started.finish();
        assert_eq!(done.status.code(), code, "{args:?}: {done:?}");
        if code.is_some() {
            let expected = format!("error: interrupted by SIG{signal}; cleaned up");
            assert_eq!(done.error_lines(), [expected.as_str()], "{done:?}");
        }
        assert_nothing_left(&marker, &name);
    }
}

#[test]
fn the_child_command_gets_name_and_size_as_separate_arguments() {
    // printf shows each argument it got between bars; it adds nothing, so the
    // parent's check fails as it must: the verdict does not trust the child.
    let marker = marker("args");
    let name = unique_name("args");
    let done = start(
        BIN,
        &["named", "--n", "1000", "--name", &name, "--child-cmd", "printf '<%s>'"],
        None,
        &marker,
    )
    .finish();
    assert!(done.stdout.contains(&format!("</{name}><1000>")), "{done:?}");
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert_eq!(
        done.error_lines(),
        ["error: expected 2.0 in all 1000 elements of the segment, but element 0 is 1"],
        "{done:?}"
    );
    assert_nothing_left(&marker, &name);
}

#[test]
fn a_child_command_that_cannot_run_is_one_clear_error() {
    let marker = marker("missing");
    let name = unique_name("missing");
    let done = start(
        BIN,
        &["named", "--n", "100", "--name", &name, "--child-cmd", "no-such-program-here --x"],
        None,
        &marker,
    )
    .finish();
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert_eq!(
        done.error_lines(),
        [
            "error: the child process failed: exit status 127 (child command: no-such-program-here --x)"
        ],
        "{done:?}"
    );
    assert!(done.stderr.contains("not found"), "the shell says why: {done:?}");
    assert_nothing_left(&marker, &name);

    for empty in ["", "   "] {
        let done = start(BIN, &["named", "--child-cmd", empty], None, &marker).finish();
        assert_eq!(done.status.code(), Some(2), "{done:?}");
        assert_eq!(done.error_lines().len(), 1, "{done:?}");
        assert!(done.stderr.contains("the child command is empty"), "{done:?}");
    }
}

#[test]
fn the_fork_scenes_keep_their_own_child_and_say_why() {
    for scene in ["anonymous", "copy-in"] {
        let marker = marker(scene);
        let done =
            start(BIN, &[scene, "--n", "1000", "--child-cmd", "false"], None, &marker).finish();
        assert_eq!(done.status.code(), Some(0), "{scene}: {done:?}");
        assert!(done.stdout.contains("parent: --child-cmd is not used here"), "{done:?}");
        assert!(done.stdout.contains("child: forked"), "{done:?}");
        assert_eq!(done.verdicts().len(), 1, "{done:?}");
        assert!(processes_with(&marker).is_empty());
    }
}

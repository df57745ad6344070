//! Runs the real binary at small sizes: verdicts, bad input, failing and killed
//! children, an interrupted or killed parent, and nothing left behind.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_examples-shm");
const DEADLINE: Duration = Duration::from_secs(30);

/// Every process of one test carries this in its environment, so the test can
/// find its own processes (spawned or forked) and no one else's.
fn marker(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("shm-test-{}-{count}-{tag}", std::process::id())
}

/// A segment name unique to this test run, short enough for the 31-byte limit.
fn unique_name(tag: &str) -> String {
    format!("exshm-t{}-{tag}", std::process::id())
}

fn dev_shm(name: &str) -> String {
    format!("/dev/shm/{}", name.trim_start_matches('/'))
}

/// Pids of live processes whose environment holds `marker` (zombies and processes
/// of other users read as empty or fail: they are skipped).
fn processes_with(marker: &str) -> Vec<u32> {
    test_support::processes_with(marker).into_iter().map(|pid| pid as u32).collect()
}

/// Every process of the run, its watchdog too.
fn every_process_with(marker: &str) -> Vec<u32> {
    test_support::every_process_with(marker).into_iter().map(|pid| pid as u32).collect()
}

fn assert_nothing_left(marker: &str, name: Option<&str>) {
    let until = Instant::now() + Duration::from_secs(5);
    while !every_process_with(marker).is_empty() && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(every_process_with(marker), Vec::<u32>::new(), "processes left behind");
    if let Some(name) = name {
        assert!(!Path::new(&dev_shm(name)).exists(), "{} was left behind", dev_shm(name));
    }
}

/// A started program whose stdout lines arrive on a channel.
struct Started {
    child: Child,
    lines: Receiver<String>,
    stdout_seen: Vec<String>,
    stderr: JoinHandle<String>,
}

fn start(args: &[&str], fault: Option<&str>, marker: &str) -> Started {
    let mut command = Command::new(BIN);
    command.args(args).env("EXAMPLES_TEST_MARKER", marker).env_remove("EXAMPLES_CHILD_FAULT");
    if let Some(fault) = fault {
        command.env("EXAMPLES_CHILD_FAULT", fault);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
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
    /// Wait (bounded) for a stdout line containing `text`.
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

    /// Wait for the exit (killing it after the deadline) and collect the output.
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
        let mut stdout = self.stdout_seen;
        stdout.extend(self.lines.iter());
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
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    fn error_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("error:")).collect()
    }

    fn verdicts(&self) -> Vec<String> {
        test_support::verdicts(&self.stdout)
    }
}

fn run(args: &[&str], fault: Option<&str>, marker: &str) -> Finished {
    start(args, fault, marker).finish()
}

/// Pid of the test's child process: the marked process that is not the parent.
fn child_pid(started: &Started, marker: &str) -> i32 {
    let parent = started.child.id();
    let others: Vec<u32> = processes_with(marker).into_iter().filter(|p| *p != parent).collect();
    assert_eq!(others.len(), 1, "expected exactly one child, found {others:?}");
    others[0] as i32
}

fn send(pid: i32, signal: &str) {
    let status =
        Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

fn assert_clean_success(done: &Finished, scene: &str) {
    assert_eq!(done.code(), Some(0), "{done:?}");
    assert_eq!(done.verdicts().len(), 1, "{done:?}");
    assert!(
        done.verdicts()[0].starts_with(&format!("verdict: {scene}: the parent sees 2.0 in all")),
        "{done:?}"
    );
    assert!(done.error_lines().is_empty(), "{done:?}");
}

#[test]
fn named_scene_sees_the_childs_change_and_removes_its_default_name() {
    let marker = marker("named");
    let done = run(&["named", "--n", "1000"], None, &marker);
    assert_clean_success(&done, "named");
    assert!(
        done.stdout
            .contains("child: first 10 values: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]")
    );
    assert!(
        done.stdout.contains(
            "parent: first 10 values: [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]"
        )
    );
    // The default name: unique per run, short enough for macOS, and gone now.
    let created = done.stdout.lines().find(|l| l.starts_with("parent: created /exshm-")).unwrap();
    let name = created.split_whitespace().nth(2).unwrap();
    assert!(name.len() <= 31, "{name} is longer than 31 bytes");
    assert!(done.stdout.contains(&format!("child: attached to {name} by name")), "{done:?}");
    assert!(created.contains("mode 0600"), "{created}");
    assert_nothing_left(&marker, Some(name));
}

#[test]
fn anonymous_and_copy_in_scenes_share_through_fork() {
    for scene in ["anonymous", "copy-in"] {
        let marker = marker(scene);
        let done = run(&[scene, "--n", "1000"], None, &marker);
        assert_clean_success(&done, scene);
        assert!(done.stdout.contains(
            "child: first 10 values: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]"
        ));
        assert_nothing_left(&marker, None);
    }
    let done = run(&["copy-in", "--n", "1000"], None, &marker("copy-in-cost"));
    assert!(done.stdout.contains("(extra cost: "), "{done:?}");
    assert!(done.verdicts()[0].contains("1.0 in the original"), "{done:?}");
}

#[test]
fn every_scene_runs_in_order_with_flags_applied_to_each() {
    let marker = marker("all");
    let name = unique_name("all");
    let done = run(&["--n", "2000", "--name", &name], None, &marker);
    assert_eq!(done.code(), Some(0), "{done:?}");
    let verdicts = done.verdicts();
    let scenes: Vec<&str> = verdicts.iter().map(|v| v.split(':').nth(1).unwrap().trim()).collect();
    assert_eq!(scenes, ["named", "anonymous", "copy-in"], "{done:?}");
    let headings = done.stdout.lines().filter(|l| l.starts_with("=== ")).count();
    assert_eq!(headings, 3);
    assert_eq!(done.stdout.lines().filter(|l| l.starts_with("parent: the scene took")).count(), 3);
    assert!(done.stdout.contains("in all 2000 elements"));
    assert_nothing_left(&marker, Some(&name));
}

#[test]
fn bad_command_lines_are_one_clear_error() {
    let long = "x".repeat(31);
    let cases: [&[&str]; 7] = [
        &["--n", "0"],
        &["--n", "abc"],
        &["no-such-scene"],
        &["named", "--name", "a/b"],
        &["named", "--name", "/"],
        &["named", "--name", &long],
        &["named", "--name", "bad name"],
    ];
    for args in cases {
        let done = run(args, None, &marker("bad"));
        assert_eq!(done.code(), Some(2), "{args:?}: {done:?}");
        assert_eq!(done.error_lines().len(), 1, "{args:?}: {done:?}");
        assert!(
            !done.stderr.contains("panicked") && !done.stderr.contains("backtrace"),
            "{done:?}"
        );
    }
}

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    for scene in ["named", "anonymous", "copy-in"] {
        let done = run(&[scene, "--n", "1000000000000000000"], None, &marker("huge"));
        assert_eq!(done.code(), Some(1), "{done:?}");
        assert_eq!(done.error_lines().len(), 1, "{done:?}");
        assert!(
            done.stderr.contains("choose a smaller --n") || done.stderr.contains("too large"),
            "{done:?}"
        );
        assert!(
            !done.stdout.contains("parent: created") && !done.stdout.contains("parent: mapped")
        );
    }
}

#[test]
fn an_existing_name_is_refused_unless_replace() {
    let name = unique_name("exists");
    let path = dev_shm(&name);
    std::fs::write(&path, b"someone else's data").unwrap();

    let done = run(&["named", "--n", "100", "--name", &name], None, &marker("exists"));
    assert_eq!(done.code(), Some(1), "{done:?}");
    assert_eq!(done.error_lines().len(), 1, "{done:?}");
    assert!(done.stderr.contains("already exists"), "{done:?}");
    assert!(done.stderr.contains(&format!("rm {path}")), "{done:?}");
    // Refused means untouched: still the other owner's bytes.
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's data");

    let marker = marker("replace");
    let done =
        run(&["named", "--n", "100", "--name", &format!("/{name}"), "--replace"], None, &marker);
    assert_clean_success(&done, "named");
    assert_nothing_left(&marker, Some(&name));
}

#[test]
fn keep_leaves_a_0600_segment_that_python_can_open() {
    let name = unique_name("keep");
    let path = dev_shm(&name);
    let done = run(&["named", "--n", "1000", "--name", &name, "--keep"], None, &marker("keep"));
    assert_eq!(done.code(), Some(0), "{done:?}");
    assert!(done.stdout.contains(&format!("rm {path}")), "{done:?}");
    assert!(
        done.stdout.contains(&format!("SharedMemory(name=\"{name}\", track=False)")),
        "{done:?}"
    );

    let metadata = std::fs::metadata(&path).expect("the kept segment");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 8000);
    assert!(bytes.chunks(8).all(|b| f64::from_le_bytes(b.try_into().unwrap()) == 2.0));

    // Python's own SharedMemory attaches by the name without the slash. (Without
    // numpy: a memoryview cast to 'd' is the same float64 view.)
    let script = r#"
import sys
from multiprocessing import shared_memory, resource_tracker
name = sys.argv[1]
try:
    shm = shared_memory.SharedMemory(name=name, track=False)       # 3.13+
except TypeError:
    shm = shared_memory.SharedMemory(name=name)
    resource_tracker.unregister(shm._name, "shared_memory")         # older
values = shm.buf.cast("d")
assert len(values) == 1000 and all(v == 2.0 for v in values), "not all 2.0"
values.release()
shm.close()
print("python ok")
"#;
    match Command::new("python3").args(["-c", script, &name]).output() {
        Ok(output) => {
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success() && stdout.contains("python ok"), "{output:?}");
            // Python's resource tracker did not unlink our segment behind our back.
            thread::sleep(Duration::from_millis(300));
            assert!(Path::new(&path).exists(), "Python removed the segment");
        }
        Err(err) => eprintln!("python3 not available ({err}); skipped the Python half"),
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_failing_child_is_a_clear_error_and_nothing_is_left() {
    for scene in ["named", "anonymous", "copy-in"] {
        for (fault, status) in [("exit", "exit status 3"), ("panic", "exit status 101")] {
            let marker = marker(fault);
            let name = unique_name(fault);
            let done = run(&[scene, "--n", "1000", "--name", &name], Some(fault), &marker);
            assert_eq!(done.code(), Some(1), "{scene} {fault}: {done:?}");
            let expected = format!("error: the child process failed: {status}");
            assert_eq!(done.error_lines(), [expected.as_str()], "{scene} {fault}: {done:?}");
            assert!(done.verdicts().is_empty());
            assert_nothing_left(&marker, Some(&name));
        }
    }
}

#[test]
fn a_killed_child_is_a_clear_error_and_nothing_is_left() {
    // --keep too: keeping applies to a successful run only; a failed one cleans up.
    let cases: [(&str, &[&str], &str); 3] = [
        ("named", &[], "child: attached to"),
        ("named", &["--keep"], "child: attached to"),
        ("anonymous", &[], "child: forked"),
    ];
    for (scene, extra, ready) in cases {
        let marker = marker("killchild");
        let name = unique_name("kc");
        let mut args = vec![scene, "--n", "1000", "--name", &name];
        args.extend(extra);
        let mut started = start(&args, Some("sleep-after"), &marker);
        started.wait_for_line(ready);
        send(child_pid(&started, &marker), "KILL");
        let done = started.finish();
        assert_eq!(done.code(), Some(1), "{args:?}: {done:?}");
        assert_eq!(
            done.error_lines(),
            ["error: the child process was killed by signal 9 (SIGKILL)"],
            "{done:?}"
        );
        assert_nothing_left(&marker, Some(&name));
    }
}

#[test]
fn sigint_and_sigterm_in_the_parent_still_clean_up() {
    // With --keep the name is still there when the signal arrives (no early
    // unlink), so this is the signal thread's shm_unlink at work.
    let cases: [(&str, &[&str], &str, i32, &str); 4] = [
        ("named", &[], "INT", 130, "child: attached to"),
        ("named", &["--keep"], "INT", 130, "child: attached to"),
        ("named", &["--keep"], "TERM", 143, "child: attached to"),
        ("copy-in", &[], "TERM", 143, "child: forked"),
    ];
    for (scene, extra, signal, code, ready) in cases {
        let marker = marker("interrupt");
        let name = unique_name("int");
        let mut args = vec![scene, "--n", "1000", "--name", &name];
        args.extend(extra);
        let mut started = start(&args, Some("sleep-after"), &marker);
        started.wait_for_line(ready);
        if extra.contains(&"--keep") {
            let mode = std::fs::metadata(dev_shm(&name)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the segment is for this user only");
        }
        send(started.child.id() as i32, signal);
        let done = started.finish();
        assert_eq!(done.code(), Some(code), "{args:?}: {done:?}");
        let expected = format!("error: interrupted by SIG{signal}; cleaned up");
        assert_eq!(done.error_lines(), [expected.as_str()], "{done:?}");
        assert_nothing_left(&marker, Some(&name));
    }
}

#[test]
fn sigkill_of_the_parent_leaves_nothing_once_the_child_has_attached() {
    let marker = marker("killparent");
    let name = unique_name("kp");
    let mut started =
        start(&["named", "--n", "1000", "--name", &name], Some("sleep-after"), &marker);
    started.wait_for_line("child: added 1");
    assert!(Path::new(&dev_shm(&name)).exists(), "named until the child is joined");
    send(started.child.id() as i32, "KILL");
    let done = started.finish();
    assert_eq!(done.status.code(), None, "killed, not exited");
    // No code ran in the parent: its watchdog unlinked the name, and the child
    // died of its parent-death signal.
    assert_nothing_left(&marker, Some(&name));

    // The same for the fork scenes: no name at all, the child dies with the parent.
    let marker = crate::marker("killparent-anon");
    let mut started = start(&["anonymous", "--n", "1000"], Some("sleep-after"), &marker);
    started.wait_for_line("child: forked");
    send(started.child.id() as i32, "KILL");
    started.finish();
    assert_nothing_left(&marker, None);
}

#[test]
fn sigkill_of_the_parent_with_keep_removes_the_segment_of_an_unfinished_run() {
    // --keep keeps the segment of a run that reached its verdict. A parent killed
    // before that removes nothing itself, and its watchdog removes the segment.
    let marker = marker("killkeep");
    let name = unique_name("kk");
    let mut started =
        start(&["named", "--n", "1000", "--name", &name, "--keep"], Some("sleep-after"), &marker);
    started.wait_for_line("child: attached to");
    assert!(Path::new(&dev_shm(&name)).exists(), "the kept segment while the child works");
    send(started.child.id() as i32, "KILL");
    started.finish();
    assert_nothing_left(&marker, Some(&name));
}

/// Segments whose name says a bench made them: "exshm-bench-<pid>-<random>".
fn bench_segments() -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("exshm-bench-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Bench segments that appeared since `before` and whose creator has exited:
/// left behind. (A segment of a live process may be another bench at work.)
fn bench_segments_left(before: &[String]) -> Vec<String> {
    bench_segments()
        .into_iter()
        .filter(|name| !before.contains(name))
        .filter(|name| {
            let pid = name.split('-').nth(2).unwrap_or("");
            !Path::new(&format!("/proc/{pid}")).exists()
        })
        .collect()
}

#[test]
fn bench_prints_one_line_per_method_and_leaves_no_segment_even_when_it_fails() {
    let before = bench_segments();
    let marker = marker("bench");
    let done = run(&["bench", "--n", "1000", "--repeats", "1"], None, &marker);
    assert_eq!(done.code(), Some(0), "{done:?}");
    let methods: Vec<&str> = done.stdout.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        methods,
        ["floor", "floor-named-shm", "floor-anonymous", "named-shm", "anonymous", "copy-in"],
        "{done:?}"
    );
    for line in done.stdout.lines() {
        let fields: Vec<(&str, &str)> =
            line.split(' ').skip(1).map(|field| field.split_once('=').unwrap()).collect();
        let keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, ["median", "min", "max", "peak_parent_mb", "peak_child_mb"], "{line}");
        assert!(fields.iter().all(|(_, value)| value.parse::<f64>().is_ok()), "{line}");
    }
    assert!(done.stderr.is_empty(), "{done:?}");
    assert_nothing_left(&marker, None);
    assert_eq!(bench_segments_left(&before), Vec::<String>::new());

    // A failing child stops the bench at the first method with a child, with
    // one error line; the segment of that run is gone all the same.
    for (fault, status) in [("exit", "exit status 3"), ("panic", "exit status 101")] {
        let marker = crate::marker("bench-fault");
        let done = run(&["bench", "--n", "1000", "--repeats", "1"], Some(fault), &marker);
        assert_eq!(done.code(), Some(1), "{fault}: {done:?}");
        let expected = format!(
            "error: the named-shm run failed: exit status 1: error: the child process failed: {status}"
        );
        assert_eq!(done.error_lines(), [expected.as_str()], "{done:?}");
        assert_eq!(done.stdout.lines().count(), 3, "only the floors: {done:?}");
        assert_nothing_left(&marker, None);
        assert_eq!(bench_segments_left(&before), Vec::<String>::new());
    }
    // The forked children fail the same way.
    for method in ["anonymous", "copy-in"] {
        let marker = crate::marker("bench-fork-fault");
        let done = run(&["bench-run", method, "--n", "1000"], Some("exit"), &marker);
        assert_eq!(done.code(), Some(1), "{method}: {done:?}");
        assert_eq!(
            done.error_lines(),
            ["error: the child process failed: exit status 3"],
            "{done:?}"
        );
        assert_nothing_left(&marker, None);
    }
}

#[test]
fn an_interrupted_bench_run_removes_its_segment() {
    // SIGINT: the run's own cleanup; SIGKILL: its watchdog's.
    for signal in ["INT", "KILL"] {
        let marker = marker("bench-int");
        let started = start(&["bench-run", "named-shm", "--n", "1000"], Some("sleep"), &marker);
        let pid = started.child.id();
        let prefix = format!("exshm-bench-{pid}-");
        // Wait until the segment exists and the child has started (it then sleeps).
        let until = Instant::now() + DEADLINE;
        while !(bench_segments().iter().any(|n| n.starts_with(&prefix))
            && processes_with(&marker).len() == 2)
        {
            assert!(Instant::now() < until, "the bench run never got going");
            thread::sleep(Duration::from_millis(20));
        }
        send(pid as i32, signal);
        let done = started.finish();
        if signal == "INT" {
            assert_eq!(done.code(), Some(130), "{done:?}");
            let expected = ["error: interrupted by SIGINT; cleaned up"];
            assert_eq!(done.error_lines(), expected, "{done:?}");
        }
        assert_nothing_left(&marker, None);
        let gone = Instant::now() + Duration::from_secs(3);
        while bench_segments().iter().any(|n| n.starts_with(&prefix)) {
            assert!(Instant::now() < gone, "SIG{signal}: the segment was left behind");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

//! Runs `examples-mmap bench` at a tiny n: the protocol's rows and format, and
//! nothing left behind in the temporary directory or the process table, also when
//! the child fails or a run is interrupted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_examples-mmap");
const DEADLINE: Duration = Duration::from_secs(40);

/// One test's world: its own TMPDIR, and a marker in the environment of every process
/// it starts, so that the test can find them.
struct World {
    tmp: PathBuf,
    marker: String,
}

impl World {
    fn new(tag: &str) -> World {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let marker = format!("mmap-bench-test-{}-{count}-{tag}", std::process::id());
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&marker);
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        World { tmp, marker }
    }

    fn spawn(&self, args: &[&str], fault: Option<&str>) -> Child {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("TMPDIR", &self.tmp)
            .env("EXAMPLES_TEST_MARKER", &self.marker)
            .env("RUST_BACKTRACE", "0")
            .env_remove("EXAMPLES_CHILD_FAULT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(fault) = fault {
            command.env("EXAMPLES_CHILD_FAULT", fault);
        }
        command.spawn().unwrap()
    }

    fn run(&self, args: &[&str], fault: Option<&str>) -> Output {
        finish(self.spawn(args, fault))
    }

    /// Pids of live processes (not zombies) whose environment holds our marker.
    fn processes(&self) -> Vec<u32> {
        let needle = format!("EXAMPLES_TEST_MARKER={}", self.marker);
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            let zombie = std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            });
            if !zombie
                && environ
                    .split(|&b| b == 0)
                    .any(|var| var == needle.as_bytes())
            {
                pids.push(pid);
            }
        }
        pids
    }

    /// No process of ours left (a killed child may take a moment to be reaped), and
    /// the temporary directory is empty again.
    fn assert_nothing_left(&self) {
        let started = Instant::now();
        while !self.processes().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "processes left behind: {:?}",
                self.processes()
            );
            thread::sleep(Duration::from_millis(50));
        }
        let left: Vec<_> = std::fs::read_dir(&self.tmp)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(left.is_empty(), "left in the temporary directory: {left:?}");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// Wait for the program, killing it if it outlives the deadline: a hang is a bug.
fn finish(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {DEADLINE:?}; stderr: {}",
                stderr(&output)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bench_prints_one_line_per_method_in_the_protocol_format() {
    let world = World::new("rows");
    let output = world.run(&["bench", "--n", "1000", "--repeats", "1"], None);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let out = stdout(&output);
    let methods: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(methods, ["floor", "floor-mmap", "mmap"], "{out}");
    for line in out.lines() {
        let fields: Vec<(&str, &str)> = line
            .split(' ')
            .skip(1)
            .map(|field| field.split_once('=').unwrap())
            .collect();
        let keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
        assert_eq!(
            keys,
            ["median", "min", "max", "peak_parent_mb", "peak_child_mb"],
            "{line}"
        );
        for (key, value) in fields {
            assert!(value.parse::<f64>().is_ok(), "{key} in {line}");
        }
    }
    // The mmap row's child reported its own peak: a few MB, not the parent's array.
    let mmap = out.lines().find(|l| l.starts_with("mmap ")).unwrap();
    let child_mb: u64 = mmap
        .rsplit_once("peak_child_mb=")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!((1..100).contains(&child_mb), "{mmap}");
    world.assert_nothing_left();
}

#[test]
fn a_failing_bench_child_fails_the_bench_and_leaves_nothing() {
    for fault in ["exit", "panic"] {
        let world = World::new(fault);
        let output = world.run(&["bench", "--n", "1000", "--repeats", "1"], Some(fault));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "stderr: {err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(errors[0].contains("the mmap run failed"), "{err}");
        assert!(errors[0].contains("the child process failed"), "{err}");
        world.assert_nothing_left();
    }
}

#[test]
fn an_interrupted_bench_run_kills_its_child_and_removes_the_file() {
    let world = World::new("sigterm");
    // The child sleeps once it has mapped the file: the run is mid-way.
    let run = world.spawn(&["bench-run", "mmap", "--n", "1000"], Some("sleep"));
    let started = Instant::now();
    while world.processes().len() < 2 {
        assert!(started.elapsed() < DEADLINE, "the child never started");
        thread::sleep(Duration::from_millis(20));
    }
    let scratch: Vec<PathBuf> = std::fs::read_dir(&world.tmp)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(scratch.len(), 1, "{scratch:?}");
    assert!(scratch[0].join("data.f64").exists(), "{scratch:?}");

    kill(Pid::from_raw(run.id() as i32), Signal::SIGTERM).unwrap();
    let output = finish(run);
    assert_eq!(
        output.status.code(),
        Some(128 + 15),
        "stderr: {}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("interrupted by SIGTERM"),
        "{}",
        stderr(&output)
    );
    world.assert_nothing_left();
}

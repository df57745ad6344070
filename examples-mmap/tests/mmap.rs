//! Runs the real binary at small sizes: every scene's verdict (and the file itself),
//! bad input, failing and killed children, an interrupted parent, and nothing left
//! behind in the temporary directory or the process table.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use test_support::processes_with;

const BIN: &str = env!("CARGO_BIN_EXE_examples-mmap");
const DEADLINE: Duration = Duration::from_secs(40);

/// One test's world: its own TMPDIR (so "nothing left behind" can be checked) and a
/// marker in the environment of every process it starts (so its processes can be found).
struct World {
    tmp: PathBuf,
    marker: String,
}

impl World {
    fn new(tag: &str) -> World {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let marker = format!("mmap-test-{}-{count}-{tag}", std::process::id());
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&marker);
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        World { tmp, marker }
    }

    fn command(&self, args: &[&str], fault: Option<&str>) -> Command {
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
        command
    }

    /// Run to the end, killing the program if it outlives the deadline.
    fn run(&self, args: &[&str], fault: Option<&str>) -> Output {
        let child = self.command(args, fault).spawn().unwrap();
        finish(child)
    }

    /// Pids of live processes (not zombies) whose environment holds our marker.
    fn processes(&self) -> Vec<u32> {
        processes_with(&self.marker).into_iter().map(|pid| pid as u32).collect()
    }

    /// Wait (bounded) until `count` of our processes are alive; returns their pids.
    fn wait_for_processes(&self, count: usize) -> Vec<u32> {
        let until = Instant::now() + DEADLINE;
        loop {
            let pids = self.processes();
            if pids.len() >= count {
                return pids;
            }
            assert!(Instant::now() < until, "only {} of {count} processes started", pids.len());
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// No process of ours alive, and the temporary directory empty.
    fn assert_nothing_left(&self) {
        let until = Instant::now() + Duration::from_secs(5);
        while !self.processes().is_empty() && Instant::now() < until {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.processes(), Vec::<u32>::new(), "processes left behind");
        let left: Vec<_> =
            std::fs::read_dir(&self.tmp).unwrap().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn finish(mut child: Child) -> Output {
    let until = Instant::now() + DEADLINE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "no exit within {DEADLINE:?}; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
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

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Exactly one line of stderr starts with `error:` and it contains `text`. Nothing
/// panicked, unless a child was told to (its panic message is on the shared stderr).
fn assert_one_error(output: &Output, code: i32, text: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{err}");
    let errors: Vec<&str> = err.lines().filter(|line| line.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "stderr:\n{err}");
    assert!(errors[0].contains(text), "expected {text:?} in {:?}", errors[0]);
    if !err.contains("(EXAMPLES_CHILD_FAULT=panic)") {
        assert!(!err.contains("panicked") && !err.contains("backtrace"), "stderr:\n{err}");
    }
}

/// The values of a kept file: raw little-endian f32, no header.
fn read_f32_file(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() % 4, 0);
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn one_child_sees_the_childs_change_in_every_value() {
    let world = World::new("one");
    let output = world.run(&["one-child"], None);
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.starts_with("=== one-child: "), "{out}");
    let ones = "[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]";
    let twos = "[2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]";
    let expected = [
        format!("parent: first 10 values: {ones}"),
        format!("child: first 10 values: {ones}"),
        format!("child: first 10 values: {twos}"),
        format!("parent: first 10 values: {twos}"),
    ];
    let corners: Vec<&str> = out.lines().filter(|l| l.contains("first 10 values")).collect();
    assert_eq!(corners, expected, "{out}");
    assert!(
        out.contains("verdict: shared: the parent sees the child's 2 in all 1000 values"),
        "{out}"
    );
    world.assert_nothing_left();
}

#[test]
fn the_kept_file_is_raw_little_endian_f32_that_numpy_can_open() {
    let world = World::new("keep");
    let path = world.tmp.join("kept.f32");
    let output = world.run(&["one-child", "--n", "4321", "--path", path.to_str().unwrap()], None);
    assert_success(&output);
    assert!(stdout(&output).contains("dtype='float32', mode='r+', shape=(4321,)"));
    let values = read_f32_file(&path);
    assert_eq!(values.len(), 4321, "no header, 4 bytes per value");
    assert!(values.iter().all(|&v| v == 2.0));
    std::fs::remove_file(&path).unwrap();
    world.assert_nothing_left();
}

#[test]
fn many_children_without_a_lock_reports_what_it_found() {
    let world = World::new("nolock");
    let output = world.run(&["many-children", "--n", "200000", "--children", "8"], None);
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.contains("=== many-children: 8 children add 1 at once, with no lock ==="), "{out}");
    assert!(out.contains("parent: floor: one process adding 1 to every value 8 times: "), "{out}");
    assert!(out.contains("parent: all 8 children finished after "), "{out}");
    assert!(out.contains("parent: checked all 200000 values: "), "{out}");
    // Lost updates may or may not happen; either verdict is honest, and it is one line.
    let verdicts: Vec<String> = test_support::verdicts(&out)
        .into_iter()
        .filter(|v| v.starts_with("verdict: no lock: "))
        .collect();
    assert_eq!(verdicts.len(), 1, "{out}");
    world.assert_nothing_left();
}

#[test]
fn many_children_with_the_lock_is_exactly_right() {
    let world = World::new("lock");
    let path = world.tmp.join("locked.f32");
    let args = ["many-children-locked", "--n", "1000000", "--children", "16"];
    let output = world.run(&[&args[..], &["--path", path.to_str().unwrap()]].concat(), None);
    assert_success(&output);
    let out = stdout(&output);
    assert_eq!(
        test_support::verdicts(&out),
        [
            "verdict: lock: all 1000000 values are exactly 16; not one of the 16 x 1000000 updates was lost"
        ],
        "{out}"
    );
    // Check the claim independently, from the file itself.
    let values = read_f32_file(&path);
    assert_eq!(values.len(), 1_000_000);
    let wrong = values.iter().filter(|&&v| v != 16.0).count();
    assert_eq!(wrong, 0, "{wrong} values are not 16");
    std::fs::remove_file(&path).unwrap();
    world.assert_nothing_left();
}

#[test]
fn copy_on_write_leaves_the_file_alone() {
    let world = World::new("cow");
    let path = world.tmp.join("cow.f32");
    let output = world.run(&["copy-on-write", "--path", path.to_str().unwrap()], None);
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.contains("child: first 10 values: [2.0, 2.0"), "{out}");
    assert!(
        out.contains("verdict: copy-on-write: the parent still sees 1 in all 1000 values"),
        "{out}"
    );
    assert!(read_f32_file(&path).iter().all(|&v| v == 1.0), "the child's writes reached the file");
    std::fs::remove_file(&path).unwrap();
    world.assert_nothing_left();
}

#[test]
fn every_scene_in_order_with_small_flags() {
    let world = World::new("all");
    let output = world.run(&["--n", "30000", "--children", "4"], None);
    assert_success(&output);
    let out = stdout(&output);
    let headings: Vec<&str> = out.lines().filter(|l| l.starts_with("=== ")).collect();
    let names: Vec<&str> = headings.iter().map(|h| h[4..].split(':').next().unwrap()).collect();
    assert_eq!(names, ["one-child", "many-children", "many-children-locked", "copy-on-write"]);
    let verdicts = test_support::verdicts(&out);
    assert_eq!(verdicts.len(), 4, "{out}");
    assert!(verdicts[2].starts_with("verdict: lock: all 30000 values are exactly 4;"), "{out}");
    world.assert_nothing_left();
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let world = World::new("usage");
    for args in [
        &["--n", "0"][..],
        &["--n", "abc"],
        &["--children", "0"],
        &["--children", "1001"],
        &["one-child", "--n", "-5"],
        &["no-such-scene"],
    ] {
        let output = world.run(args, None);
        assert_one_error(&output, 2, "");
        assert!(stdout(&output).is_empty(), "{args:?}");
    }
    world.assert_nothing_left();
}

#[test]
fn bad_paths_and_sizes_fail_before_anything_is_made() {
    let world = World::new("bad");
    let missing = world.tmp.join("no/such/dir/data.f32");
    let output = world.run(&["--path", missing.to_str().unwrap()], None);
    assert_one_error(&output, 1, "cannot create");
    assert!(stdout(&output).is_empty());

    // A read-only directory. Root ignores permission bits, so there we use sysfs,
    // where even root cannot create a file.
    let read_only = world.tmp.join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    std::fs::set_permissions(&read_only, PermissionsExt::from_mode(0o555)).unwrap();
    let root = std::fs::File::create(read_only.join("probe")).is_ok();
    let target = if root {
        PathBuf::from("/sys/examples-mmap-test.f32")
    } else {
        read_only.join("data.f32")
    };
    let output = world.run(&["one-child", "--path", target.to_str().unwrap()], None);
    assert_one_error(&output, 1, "cannot create");
    assert!(!target.exists());
    let _ = std::fs::remove_file(read_only.join("probe"));
    std::fs::remove_dir(&read_only).unwrap();

    // Far more than any disk: 4 PB.
    let output = world.run(&["many-children", "--n", "1000000000000000"], None);
    assert_one_error(&output, 1, "are free in");
    // More than the address space.
    let output = world.run(&["one-child", "--n", "18446744073709551615"], None);
    assert_one_error(&output, 1, "too large");
    world.assert_nothing_left();
}

#[test]
fn an_array_larger_than_memory_is_refused() {
    let world = World::new("memory");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:")).unwrap();
    let available: u64 = line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024;
    // Just over the available memory; the disk check comes first, so this test needs a
    // disk with more room than memory (it is so on the machines we run it on).
    let n = (available + (1 << 30)) / 4;
    let output = world.run(&["one-child", "--n", &n.to_string()], None);
    let err = stderr(&output);
    if err.contains("are free in") {
        eprintln!("skipped: the disk under TMPDIR is smaller than memory");
        return;
    }
    assert_one_error(&output, 1, "of memory is available");
    world.assert_nothing_left();
}

#[test]
fn a_failing_child_fails_the_parent_clearly() {
    let world = World::new("fail");
    let output = world.run(&["one-child"], Some("exit"));
    assert_one_error(&output, 1, "the child process failed: exit status 3");
    assert!(stderr(&output).contains("child: failing on purpose (EXAMPLES_CHILD_FAULT=exit)"));
    world.assert_nothing_left();

    let output = world.run(&["copy-on-write"], Some("panic"));
    assert_one_error(&output, 1, "the child process failed: exit status 101");
    world.assert_nothing_left();

    let output = world.run(&["many-children", "--n", "10000", "--children", "8"], Some("exit"));
    assert_one_error(&output, 1, "of 8 failed: exit status 3");
    world.assert_nothing_left();

    let output =
        world.run(&["many-children-locked", "--n", "10000", "--children", "8"], Some("panic"));
    assert_one_error(&output, 1, "of 8 failed: exit status 101");
    world.assert_nothing_left();
}

#[test]
fn a_killed_child_stops_its_siblings() {
    let world = World::new("killed");
    let child = world
        .command(&["many-children", "--n", "10000", "--children", "6"], Some("sleep"))
        .spawn()
        .unwrap();
    let parent = child.id();
    let pids = world.wait_for_processes(7);
    let victim = pids.into_iter().find(|&pid| pid != parent).unwrap();
    Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap();
    let output = finish(child);
    assert_one_error(&output, 1, "was killed by signal 9 (SIGKILL); stopped the 5 still running");
    world.assert_nothing_left();
}

#[test]
fn ctrl_c_and_sigterm_clean_up_mid_scene() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let world = World::new(signal);
        let args = ["many-children-locked", "--n", "10000", "--children", "4"];
        let child = world.command(&args, Some("sleep")).spawn().unwrap();
        world.wait_for_processes(5);
        // The scratch directory exists now, and only its owner may enter it.
        let dirs: Vec<_> = std::fs::read_dir(&world.tmp).unwrap().flatten().collect();
        assert_eq!(dirs.len(), 1);
        assert_eq!(dirs[0].metadata().unwrap().permissions().mode() & 0o777, 0o700);
        assert!(dirs[0].path().join("data.f32").exists());

        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let output = finish(child);
        assert_one_error(&output, code, &format!("interrupted by SIG{signal}; cleaned up"));
        world.assert_nothing_left();
    }
}

#[test]
fn children_die_with_a_killed_parent() {
    let world = World::new("parent");
    let args = ["many-children", "--n", "10000", "--children", "3"];
    let mut command = world.command(&args, Some("sleep"));
    // No pipes: a surviving child holding them open must not be what we wait for.
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    world.wait_for_processes(4);
    Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), None, "killed by a signal");
    // SIGKILL leaves the parent no chance to remove its scratch directory (World does),
    // but the children get the parent-death signal and go.
    let until = Instant::now() + Duration::from_secs(5);
    while !world.processes().is_empty() && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(world.processes(), Vec::<u32>::new(), "children outlived the parent");
}

#[test]
fn locked_children_wait_for_a_lock_held_by_another_process() {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;
    let world = World::new("held");
    let path = world.tmp.join("held.f32");
    let file = std::fs::File::create(&path).unwrap();
    // Any process can take part in the children's locking: lock the first value's bytes.
    let mut range = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 4,
        l_pid: 0,
    };
    fcntl(&file, FcntlArg::F_OFD_SETLK(&range)).unwrap();

    let args = ["many-children-locked", "--n", "100000", "--children", "4"];
    let mut child = world
        .command(&[&args[..], &["--path", path.to_str().unwrap()]].concat(), None)
        .spawn()
        .unwrap();
    // Wait for the parent and its 4 children, then give them time to finish if they could.
    let until = Instant::now() + DEADLINE;
    while world.processes().len() < 5 && child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < until, "the children did not start");
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "the children did not wait for our lock");
    assert!(read_f32_file(&path).iter().all(|&v| v == 0.0), "a child wrote without the lock");

    range.l_type = libc::F_UNLCK as libc::c_short;
    fcntl(&file, FcntlArg::F_OFD_SETLK(&range)).unwrap();
    let output = finish(child);
    assert_success(&output);
    assert!(stdout(&output).contains("verdict: lock: all 100000 values are exactly 4;"));
    assert!(read_f32_file(&path).iter().all(|&v| v == 4.0));
    drop(file);
    std::fs::remove_file(&path).unwrap();
    world.assert_nothing_left();
}

/// A Python with numpy: EXAMPLES_PYTHON, else python3. Without one the test skips with
/// a line, unless EXAMPLES_REQUIRE_PYTHON is set (CI sets it): then it fails.
fn python_with_numpy() -> Option<String> {
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
        std::env::var_os("EXAMPLES_REQUIRE_PYTHON").is_none(),
        "no Python with numpy at {python:?} (EXAMPLES_PYTHON)"
    );
    eprintln!("skipped: no Python with numpy (set EXAMPLES_PYTHON to one)");
    None
}

#[test]
fn numpy_opens_our_file_and_python_takes_part_in_the_lock() {
    let Some(python) = python_with_numpy() else {
        return;
    };
    let world = World::new("python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/python/mmap_numpy.py");
    let child = Command::new(python)
        .args([script, BIN, "--n", "200000", "--children", "4", "--hold", "0.5"])
        .env("TMPDIR", &world.tmp)
        .env("EXAMPLES_TEST_MARKER", &world.marker)
        .env_remove("EXAMPLES_CHILD_FAULT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = finish(child);
    assert_success(&output);
    let out = stdout(&output);
    assert!(out.contains("program still waiting: True, all values still 0: True"), "{out}");
    assert!(out.contains("all 200000 values are 4: True"), "{out}");
    world.assert_nothing_left();
}

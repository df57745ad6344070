//! The fault suite (docs/reliability.md): what tests/mmap.rs does not already try.
//! Killed children and SIGINT in the one-child scenes, what a killed parent leaves,
//! two runs at once, the permissions of the file, and more bad paths and input.
//! Every
//! run gets its own marker (an environment variable every process of the run
//! inherits) and its own empty TMPDIR; afterwards no process of the run may be left
//! and TMPDIR must still be empty.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use test_support::{Launch, Run, error_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-mmap");

/// A run with its own marker and TMPDIR (test-support).
fn start(args: &[&str], fault: Option<&str>) -> Run {
    start_in(args, fault, None)
}

/// `tmpdir`: a TMPDIR of the test's choosing, not checked afterwards; None: a
/// fresh empty one, checked.
fn start_in(args: &[&str], fault: Option<&str>, tmpdir: Option<&str>) -> Run {
    Launch::new(BIN, "examples-mmap-faults", args).child_fault(fault).tmpdir(tmpdir).start()
}

/// The scenes with one child, which tests/mmap.rs fails only by exit and panic: a
/// child killed mid-scene is reported within a few seconds, and the scratch
/// directory is removed.
#[test]
fn a_child_killed_mid_scene_fails_the_parent_promptly() {
    for scene in ["one-child", "copy-on-write"] {
        let mut run = start(&[scene, "--n", "100"], Some("sleep"));
        let child = run.children(1)[0];
        thread::sleep(Duration::from_millis(300));
        run.kill_child(child);
        let outcome = run.finish();
        assert_eq!(outcome.status.code(), Some(1), "{scene}: {}", outcome.stderr);
        assert_eq!(
            error_lines(&outcome.stderr),
            ["error: the child process was killed by signal 9 (SIGKILL)"],
            "{scene}"
        );
    }
}

/// SIGINT and SIGTERM in the one-child scenes (tests/mmap.rs tries them in
/// many-children-locked), SIGHUP in many-children: one line, and the scratch
/// directory is gone.
#[test]
fn sigint_sigterm_and_sighup_clean_up() {
    for (scene, signal, code) in [
        ("one-child", Signal::SIGINT, 130),
        ("copy-on-write", Signal::SIGTERM, 143),
        // The terminal closed: the same cleanup as SIGTERM.
        ("many-children", Signal::SIGHUP, 129),
    ] {
        let mut run = start(&[scene, "--n", "100"], Some("sleep"));
        run.children(1);
        thread::sleep(Duration::from_millis(300));
        run.signal_parent(signal);
        let outcome = run.finish();
        assert_eq!(outcome.status.code(), Some(code), "{scene}: {}", outcome.stderr);
        let expected = format!("error: interrupted by {signal}; cleaned up");
        assert_eq!(error_lines(&outcome.stderr), [expected.as_str()]);
    }
}

/// SIGKILL gives the parent no chance to remove its scratch directory, but its
/// watchdog does, and the children go by their parent-death signal: nothing of the
/// run is left in TMPDIR (the scratch directory existed until then, 0700).
#[test]
fn a_parent_killed_mid_scene_leaves_nothing() {
    let mut run = start(&["many-children", "--n", "1000", "--children", "3"], Some("sleep"));
    run.children(3);
    let scratch: Vec<_> = std::fs::read_dir(run.tmpdir()).unwrap().flatten().collect();
    assert_eq!(scratch.len(), 1, "{scratch:?}");
    assert!(scratch[0].file_name().to_string_lossy().starts_with("examples-mmap-"));
    assert_eq!(scratch[0].metadata().unwrap().permissions().mode() & 0o777, 0o700);
    run.signal_parent(Signal::SIGKILL);
    let outcome = run.finish();
    assert_eq!(outcome.status.signal(), Some(9));
}

/// Two runs at the same time, each the whole default sequence at a small size,
/// each with its own scratch directory.
#[test]
fn two_runs_at_once_do_not_interfere() {
    let first = start(&["--n", "3000", "--children", "3"], None);
    let second = start(&["--n", "3001", "--children", "3"], None);
    for (outcome, n) in [(first.finish(), 3000), (second.finish(), 3001)] {
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let verdicts = test_support::verdicts(&outcome.stdout);
        assert_eq!(verdicts.len(), 4, "{}", outcome.stdout);
        assert!(verdicts[2].contains(&format!("all {n} values are exactly 3")), "{verdicts:?}");
    }
}

/// A file the program creates at --path is the user's alone, like the scratch
/// directory (0700) that holds the default file.
#[test]
fn a_file_created_at_path_is_the_users_alone() {
    let dir = test_dir("perm");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kept.f32");
    let outcome =
        start(&["one-child", "--n", "100", "--path", path.to_str().unwrap()], None).finish();
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
        (&["one-child", "--path", "/tmp"][..], 1, "cannot use /tmp: it is a directory, not a"),
        // Under a file, not a directory.
        (&["one-child", "--path", "/proc/self/status/data.f32"][..], 1, "cannot create"),
        (&["one-child", "--path", ""][..], 2, "a value is required"),
        (&["--n"][..], 2, ""),
        (&["--n", ""][..], 2, ""),
        (&["--n", "1.5"][..], 2, ""),
        (&["--n", "18446744073709551616"][..], 2, ""),
        (&["--children", "abc"][..], 2, ""),
        (&["--bogus"][..], 2, ""),
        (&["one-child", "extra"][..], 2, ""),
        (&["one-child", "--name", "x"][..], 2, ""),
        // bench measures one child of this program; it refuses the scenes' flags.
        (&["bench", "--n", "10", "--children", "3"][..], 1, "--children applies to"),
        (&["bench", "--n", "10", "--child-cmd", "true"][..], 1, "--child-cmd applies to"),
    ] {
        let outcome = start(args, None).finish();
        assert_eq!(outcome.status.code(), Some(code), "{args:?}: {}", outcome.stderr);
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{args:?}: {}", outcome.stderr);
        assert!(errors[0].contains(text), "{args:?}: {}", outcome.stderr);
        assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        assert!(!outcome.stdout.contains("child"), "{args:?}: {}", outcome.stdout);
    }
    // TMPDIR, where the scratch directory goes, missing or not a directory.
    for tmpdir in ["/nonexistent/examples-mmap", "/proc/self/status"] {
        let outcome = start_in(&["one-child", "--n", "10"], None, Some(tmpdir)).finish();
        assert_eq!(outcome.status.code(), Some(1), "{tmpdir}: {}", outcome.stderr);
        let errors = error_lines(&outcome.stderr);
        assert_eq!(errors.len(), 1, "{tmpdir}: {}", outcome.stderr);
        let expected = format!("error: cannot create a directory in {tmpdir}");
        assert!(errors[0].starts_with(&expected), "{}", outcome.stderr);
    }
}

/// `| head`: standard output closed early, by the parent's line or a child's.
#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    let args = ["--n", "100000", "--children", "4"];
    test_support::check_closed_output(BIN, "examples-mmap-head", &args, &[1, 3, 4, 9, 15, 25]);
}

/// `> /dev/full`: standard output on a full device is one line, status 1.
#[test]
fn a_full_standard_output_is_one_clear_error() {
    test_support::check_full_output(BIN, "examples-mmap-full", &["--n", "1000", "--children", "2"]);
}

/// --pause holds this program's own child; another program cannot be held: one
/// clear line, at the command line. bench measures as it is, without pauses.
#[test]
fn pause_is_refused_where_no_child_can_be_held() {
    for (args, code) in [
        (&["one-child", "--pause", "--child-cmd", "true"][..], 2),
        (&["bench", "--n", "10", "--pause"][..], 1),
    ] {
        let outcome = start(args, None).finish();
        assert_eq!(outcome.status.code(), Some(code), "{args:?}: {}", outcome.stderr);
        assert_eq!(error_lines(&outcome.stderr).len(), 1, "{args:?}: {}", outcome.stderr);
    }
}

/// The watchdog's own SIGINT, SIGTERM or SIGHUP ends it within a few seconds and
/// removes nothing: the parent is alive, and owns its scratch directory, which it
/// still removes itself at the end.
#[test]
fn a_signalled_watchdog_ends_and_removes_nothing() {
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let mut run = start(&["many-children", "--n", "1000", "--children", "2"], Some("sleep"));
        run.children(2);
        let watchdog: Vec<i32> = test_support::every_process_with(run.marker())
            .into_iter()
            .filter(|pid| !test_support::processes_with(run.marker()).contains(pid))
            .collect();
        assert_eq!(watchdog.len(), 1, "one watchdog per run");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(watchdog[0]), signal).unwrap();
        let gone = std::time::Instant::now();
        while test_support::every_process_with(run.marker()).contains(&watchdog[0]) {
            assert!(gone.elapsed() < Duration::from_secs(3), "{signal}: the watchdog lives on");
            thread::sleep(Duration::from_millis(20));
        }
        let left = std::fs::read_dir(run.tmpdir()).unwrap().count();
        assert_eq!(left, 1, "{signal}: the watchdog removed the live run's directory");
        run.signal_parent(Signal::SIGINT);
        assert_eq!(run.finish().status.code(), Some(130));
    }
}

/// The bytes of a TMPDIR that, written as a line in a message about a path, would
/// add a message of its own: "announce Dir 0 VICTIM", what the watchdog once read as
/// "about to make VICTIM" and removed, VICTIM being `victim` (absolute, no newline).
fn tmpdir_naming(victim: &std::path::Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut name = b"x\nannounce Dir 0 ".to_vec();
    name.extend(victim.as_os_str().as_bytes());
    name.extend(b"\ny");
    name
}

/// A TMPDIR whose name holds a newline and the text of a message about another
/// directory: the run removes only its own scratch directory, whether it ends
/// well or by SIGKILL, and that other directory stays.
#[test]
fn a_tmpdir_that_names_another_directory_removes_only_the_runs_own() {
    let victim = std::env::temp_dir().join(format!("examples-mmap-victim-{}", std::process::id()));
    let plant = || {
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("precious"), b"kept").unwrap();
    };
    plant();
    let launch = |fault| {
        let args = ["many-children", "--n", "1000", "--children", "2"];
        Launch::new(BIN, "examples-mmap-faults", &args)
            .child_fault(fault)
            .tmpdir_named(&tmpdir_naming(&victim))
    };
    let intact = || std::fs::read(victim.join("precious")).is_ok_and(|kept| kept == b"kept");
    let outcome = launch(None).start().finish(); // the watchdog included: nothing runs
    assert!(outcome.status.success(), "{}", outcome.stderr);
    let after_success = intact();
    plant();
    let mut run = launch(Some("sleep")).start();
    run.children(2);
    run.signal_parent(Signal::SIGKILL);
    let (_, left) = run.finish_and_list();
    let after_sigkill = intact();
    let _ = std::fs::remove_dir_all(&victim);
    assert!(after_success, "a run that went well removed the other directory");
    assert!(after_sigkill, "the watchdog removed the other directory");
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

/// SIGKILL of the parent in a TMPDIR whose name holds a newline and a byte that is
/// not UTF-8: the watchdog still finds, and removes, the scratch directory.
#[test]
fn a_parent_killed_in_an_odd_tmpdir_leaves_nothing() {
    for name in [&b"new\nline"[..], b"not-utf8-\xff", b"both\n\xfe"] {
        let args = ["one-child", "--n", "100"];
        let launch = Launch::new(BIN, "examples-mmap-faults", &args).child_fault(Some("sleep"));
        let mut run = launch.tmpdir_named(name).start();
        run.children(1);
        assert_eq!(std::fs::read_dir(run.tmpdir()).unwrap().count(), 1, "the scratch directory");
        run.signal_parent(Signal::SIGKILL);
        run.finish(); // the run's TMPDIR is empty
    }
}

/// Two runs on the same --path at once: the second is refused with one line while
/// the first holds the file, instead of cutting the file short under the first
/// one's mapping (which killed the first with SIGBUS). Once the first has ended, the
/// path can be used again; a file the first run created and did not finish is gone.
#[test]
fn a_second_run_on_the_same_path_is_refused() {
    let dir = test_dir("lock");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shared.f32");
    let path = path.to_str().unwrap();
    let mut first = start(&["one-child", "--n", "100000", "--path", path], Some("sleep"));
    first.children(1);
    let second = start(&["one-child", "--n", "10", "--path", path], None).finish();
    assert_eq!(second.status.code(), Some(1), "{}", second.stderr);
    let expected = format!("error: {path} is in use by another run; choose another --path");
    assert_eq!(error_lines(&second.stderr), [expected.as_str()]);
    assert_eq!(std::fs::metadata(path).unwrap().len(), 400_000, "the first run's file, untouched");
    first.signal_parent(Signal::SIGINT);
    assert_eq!(first.finish().status.code(), Some(130));
    assert!(!std::path::Path::new(path).exists(), "the interrupted run made it, and removed it");
    let third = start(&["one-child", "--n", "10", "--path", path], None).finish();
    assert!(third.status.success(), "{}", third.stderr);
    assert_eq!(std::fs::metadata(path).unwrap().len(), 40, "kept after a run that went well");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// --path on what is not a regular file or a new name: a FIFO (whose open would
/// wait for a reader), a device, a directory, a symbolic link to a file, one to
/// nowhere. Each is one line, at once, and nothing is made or changed: no file at a
/// link's target, the link still a link.
#[test]
fn a_path_that_is_no_regular_file_is_refused_at_once() {
    use std::os::unix::fs::symlink;
    let dir = test_dir("kinds");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600))
        .unwrap();
    std::fs::write(dir.join("file"), b"user's").unwrap();
    symlink(dir.join("file"), dir.join("to-file")).unwrap();
    symlink(dir.join("nowhere"), dir.join("to-nowhere")).unwrap();
    symlink("nowhere-relative", dir.join("to-nowhere-relative")).unwrap();
    for (name, what) in [
        ("fifo", "a FIFO (a named pipe)"),
        ("", "a directory"),
        ("to-file", "a symbolic link"),
        ("to-nowhere", "a symbolic link"),
        ("to-nowhere-relative", "a symbolic link"),
    ] {
        let path = dir.join(name);
        let path = path.to_str().unwrap().trim_end_matches('/');
        let started = std::time::Instant::now();
        let outcome = start(&["one-child", "--n", "10", "--path", path], None).finish();
        assert!(started.elapsed() < Duration::from_secs(5), "{name}: it waited");
        assert_eq!(outcome.status.code(), Some(1), "{name}: {}", outcome.stderr);
        let expected = format!("error: cannot use {path}: it is {what}, not a regular file");
        assert_eq!(error_lines(&outcome.stderr), [expected.as_str()], "{name}");
    }
    let outcome = start(&["one-child", "--n", "10", "--path", "/dev/null"], None).finish();
    assert_eq!(error_lines(&outcome.stderr).len(), 1, "{}", outcome.stderr);
    assert!(outcome.stderr.contains("it is a device"), "{}", outcome.stderr);
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["fifo", "file", "to-file", "to-nowhere", "to-nowhere-relative"]);
    assert!(std::fs::symlink_metadata(dir.join("to-nowhere")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(dir.join("file")).unwrap(), b"user's");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A --child-cmd program that starts children of its own (`sleep 100 &`): Ctrl-C
/// and SIGKILL of the parent end them too, as the whole process group of the child.
#[test]
fn a_child_programs_own_children_end_with_the_run() {
    let cmd = "sh -c 'sleep 100 & sleep 100' sh";
    for signal in [Signal::SIGINT, Signal::SIGKILL] {
        let mut run = start(&["one-child", "--n", "10", "--child-cmd", cmd], None);
        let sleeping = |pid: i32| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep"))
        };
        assert_eq!(run.wait_for_processes(2, "the two sleeps", sleeping).len(), 2);
        run.signal_parent(signal);
        run.finish(); // no process of the run is left, the sleeps included
    }
}

/// TMPDIR set but empty: the scratch directory goes to /tmp, with a note, and
/// never into the current directory; it is removed at the end.
#[test]
fn an_empty_tmpdir_means_tmp() {
    let cwd = test_dir("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let launch = Launch::new(BIN, "examples-mmap-faults", &["one-child", "--n", "10"]);
    let cwd_for_run = cwd.clone();
    let launch = launch.child_fault(Some("sleep")).tmpdir(Some(""));
    let mut run = launch
        .configure(|command| {
            command.current_dir(cwd_for_run);
        })
        .start();
    let child = run.children(1)[0];
    let in_cwd = std::fs::read_dir(&cwd).unwrap().count();
    let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
    let file = cmdline.split('\0').find(|arg| arg.ends_with("data.f32")).unwrap_or("").to_owned();
    run.signal_parent(Signal::SIGINT);
    let outcome = run.finish();
    std::fs::remove_dir(&cwd).unwrap();
    assert_eq!(in_cwd, 0, "nothing in the current directory");
    assert!(file.starts_with("/tmp/examples-mmap-"), "{file}");
    assert!(!std::path::Path::new(&file).parent().unwrap().exists(), "{file} is left");
    assert!(
        outcome.stderr.starts_with("note: TMPDIR \"\" is not absolute; scratch files go to /tmp\n"),
        "{}",
        outcome.stderr
    );
}

/// An --n too large for the disk: the message names TMPDIR, where the user can
/// look, not the scratch directory inside it, which is gone by then.
#[test]
fn a_file_too_large_for_the_disk_names_tmpdir() {
    let run = start(&["one-child", "--n", "1000000000000"], None);
    let tmpdir = run.tmpdir().display().to_string();
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    let errors = error_lines(&outcome.stderr);
    assert_eq!(errors.len(), 1, "{}", outcome.stderr);
    // A disk of more than 4 TB free refuses it for memory instead.
    assert!(
        errors[0].ends_with(&format!("are free in {tmpdir}")) || errors[0].contains("of memory"),
        "{}",
        errors[0]
    );
}

/// A limit on processes (`ulimit -u`) that 50 children exceed: one line, status 1,
/// and nothing left of the children that did start.
#[test]
fn a_limit_on_processes_is_one_clear_error() {
    let args = ["many-children", "--n", "1000", "--children", "50"];
    test_support::check_process_limit(Launch::new(BIN, "examples-mmap-faults", &args));
}

/// A directory of this test run's own in TMPDIR: examples-mmap-faults-PID-TAG.
fn test_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("examples-mmap-faults-{}-{tag}", std::process::id()))
}

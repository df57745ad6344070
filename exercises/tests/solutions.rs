//! Every worked solution still runs and still teaches what its page says: each
//! example runs at a small size, exits 0 and prints the verdict the exercise predicts.
//! `cargo test` builds the examples before it runs this file.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `target/<profile>/examples/<name>` with `args` and returns its stdout.
fn run(name: &str, args: &[&str]) -> String {
    let test = std::env::current_exe().expect("the test knows its path");
    let binary: PathBuf = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from <target>/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        binary.exists(),
        "{} is missing: run this through `cargo test`, which builds the examples",
        binary.display()
    );
    let mut child = Command::new(&binary)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let started = Instant::now();
    while child.try_wait().expect("waitable").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{name} {args:?} still ran after 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

fn verdict(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|line| line.starts_with("verdict: "))
        .unwrap_or_else(|| panic!("no verdict line in:\n{stdout}"))
}

#[test]
fn argument_send_back_returns_the_childs_zeros() {
    let out = run("argument_send_back", &["--n", "50"]);
    assert!(verdict(&out).contains("the parent now holds zeros in all 2500 elements"));
}

#[test]
fn argument_fork_pages_copies_only_what_is_written() {
    let out = run("argument_fork_pages", &["--n", "512"]); // 2 MB, 512 pages
    let pages = |what: &str| -> u64 {
        let line = out.lines().find(|l| l.contains(what)).expect("a child line");
        let copied = line.split("copy ").nth(1).expect("a count");
        copied.split(' ').next().unwrap().parse().unwrap()
    };
    assert!(pages("reading every element") < 16, "{out}");
    assert!(pages("writing the first row") < 16, "{out}");
    assert!(pages("writing every element") >= 512, "{out}");
    assert!(verdict(&out).contains("still sees 1.0"));
}

#[test]
fn pipe_end_of_file_needs_every_write_end_closed() {
    let closed = run("pipe_keep_write_end", &["--n", "1000"]);
    assert!(verdict(&closed).contains("end-of-file came"));
    let kept = run("pipe_keep_write_end", &["--n", "1000", "--keep-write-end"]);
    assert!(verdict(&kept).contains("no end-of-file"));
}

#[test]
fn pipe_whole_message_arrives_either_way() {
    for flags in [&["--n", "100"][..], &["--n", "100", "--whole-message"]] {
        let out = run("pipe_whole_message", flags);
        assert!(verdict(&out).contains("all 10000 elements as 1.0"));
    }
}

#[test]
fn queue_copies_at_the_put() {
    let out = run("queue_put_then_change", &["--n", "20"]);
    assert!(verdict(&out).contains("the copy was made at the put"));
}

#[test]
fn queue_reports_a_dead_producer() {
    let lived = run("queue_dead_producer", &["--n", "20"]);
    assert!(verdict(&lived).contains("both puts arrived"));
    let died = run("queue_dead_producer", &["--n", "20", "--die"]);
    assert!(verdict(&died).contains("no hang"));
    assert!(died.contains("exit status: 3"));
}

#[test]
fn mmap_atomic_adds_lose_nothing() {
    let out =
        run("mmap_lost_updates", &["--n", "100000", "--children", "4", "--how", "fetch-update"]);
    assert!(verdict(&out).contains("all 100000 values are exactly 4"));
    // Without atomics the count depends on timing; the run must still succeed.
    let out = run("mmap_lost_updates", &["--n", "1000", "--children", "2"]);
    assert!(verdict(&out).starts_with("verdict: load-store:"));
}

#[test]
fn mmap_changes_are_seen_without_a_flush() {
    let out = run("mmap_no_flush", &["--n", "100"]);
    assert!(verdict(&out).contains("all 100 values read back as 2.0"));
}

#[test]
fn shm_shared_and_private_anonymous_mappings_differ() {
    let shared = run("shm_private_anonymous", &["--n", "1000"]);
    assert!(verdict(&shared).contains("MAP_SHARED: the parent sees the child's 2.0"));
    let private = run("shm_private_anonymous", &["--n", "1000", "--private"]);
    assert!(verdict(&private).contains("MAP_PRIVATE: the parent still sees 1.0"));
}

#[test]
fn shm_name_outlives_the_writer_until_unlinked() {
    let out = run("shm_outlives_writer", &["--n", "1000"]);
    assert!(out.contains("child 2: opened") && out.contains("1000 of 1000 values are 2.0"));
    let early = run("shm_outlives_writer", &["--n", "1000", "--unlink-early"]);
    assert!(early.contains("child 2: cannot open"));
    assert!(verdict(&early).contains("holds child 1's 2.0"));
    // Nothing left behind in /dev/shm.
    let leftovers = std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("exercise-"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "a segment was left in /dev/shm");
}

#[test]
fn manager_answers_the_new_mean_request() {
    let out = run("manager_mean", &["--n", "1000"]);
    assert!(out.contains("parent: mean through my proxy: 1"));
    assert!(verdict(&out).contains("the server answered the new Mean request"));
}

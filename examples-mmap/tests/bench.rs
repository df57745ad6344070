//! Runs `examples-mmap bench` at a tiny n: the protocol's rows and format, and
//! nothing left behind in the temporary directory or the process table, also when
//! the child fails or a run is interrupted. Each run has its own marker and TMPDIR
//! (test-support), checked when it finishes.

use std::path::PathBuf;

use nix::sys::signal::Signal;
use test_support::{Launch, Outcome, Run, error_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-mmap");

fn start(args: &[&str], fault: Option<&str>) -> Run {
    Launch::new(BIN, "examples-mmap-bench", args).child_fault(fault).start()
}

fn bench(fault: Option<&str>) -> Outcome {
    start(&["bench", "--n", "1000", "--repeats", "1"], fault).finish()
}

#[test]
fn bench_prints_one_line_per_method_in_the_protocol_format() {
    let outcome = bench(None);
    assert!(outcome.status.success(), "stderr: {}", outcome.stderr);
    let out = &outcome.stdout;
    let methods: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(methods, ["floor", "floor-mmap", "mmap"], "{out}");
    for line in out.lines() {
        let fields: Vec<(&str, &str)> =
            line.split(' ').skip(1).map(|field| field.split_once('=').unwrap()).collect();
        let keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, ["median", "min", "max", "peak_parent_mb", "peak_child_mb"], "{line}");
        for (key, value) in fields {
            assert!(value.parse::<f64>().is_ok(), "{key} in {line}");
        }
    }
    // The mmap row's child reported its own peak: a few MB, not the parent's array.
    let mmap = out.lines().find(|l| l.starts_with("mmap ")).unwrap();
    let child_mb: u64 = mmap.rsplit_once("peak_child_mb=").unwrap().1.parse().unwrap();
    assert!((1..100).contains(&child_mb), "{mmap}");
}

#[test]
fn a_failing_bench_child_fails_the_bench_and_leaves_nothing() {
    for fault in ["exit", "panic"] {
        let outcome = bench(Some(fault));
        let err = &outcome.stderr;
        assert_eq!(outcome.status.code(), Some(1), "stderr: {err}");
        let errors = error_lines(err);
        assert_eq!(errors.len(), 1, "{err}");
        assert!(errors[0].contains("the mmap run failed"), "{err}");
        assert!(errors[0].contains("the child process failed"), "{err}");
    }
}

#[test]
fn an_interrupted_bench_run_kills_its_child_and_removes_the_file() {
    // SIGTERM: the run's own cleanup; SIGKILL: its watchdog's.
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        // The child sleeps as it starts its task: the run is mid-way.
        let mut run = start(&["bench-run", "mmap", "--n", "1000"], Some("sleep"));
        run.child_pid();
        let scratch: Vec<PathBuf> =
            std::fs::read_dir(run.tmpdir()).unwrap().map(|entry| entry.unwrap().path()).collect();
        assert_eq!(scratch.len(), 1, "{scratch:?}");
        assert!(scratch[0].join("data.f64").exists(), "{scratch:?}");

        run.signal_parent(signal);
        let outcome = run.finish(); // and nothing left in TMPDIR
        if signal == Signal::SIGTERM {
            assert_eq!(outcome.status.code(), Some(128 + 15), "stderr: {}", outcome.stderr);
            assert!(outcome.stderr.contains("interrupted by SIGTERM"), "{}", outcome.stderr);
        }
    }
}

//! `--trace`: what the processes asked the kernel to do, per scene. `argument`: the
//! parent writes the array's header and values into the child's pipe, and the child
//! reads exactly those bytes (its copy). `inherit`: the forked child moves no data
//! at all, and was never a new program. Where strace cannot run, each test says so
//! in one line and passes, unless EXAMPLES_REQUIRE_STRACE=1.

use test_support::{Launch, bytes_in, trace_summary, traced, traced_run};

const BIN: &str = env!("CARGO_BIN_EXE_examples-argument");

/// The traced run's standard output; None where strace cannot trace.
fn run(args: &[&str], test: &str) -> Option<String> {
    traced_run(Launch::new(BIN, "examples-argument-trace", args), test)
}

#[test]
fn the_child_reads_the_header_and_the_array_the_parent_wrote() {
    let Some(stdout) = run(
        &["argument", "--n", "100", "--trace"],
        "the_child_reads_the_header_and_the_array_the_parent_wrote",
    ) else {
        return;
    };
    let summary = trace_summary(&stdout, "argument");
    // bincode writes each of the shape's two numbers below 251 in one byte.
    let (array, header) = (100 * 100 * 8, 2);
    let parent = traced(&summary, "parent");
    let wrote: Vec<&str> = parent.iter().copied().filter(|l| l.starts_with("write")).collect();
    assert_eq!(wrote.len(), 1, "{parent:#?}");
    assert_eq!(bytes_in(wrote[0]), Some(array + header), "{}", wrote[0]);
    assert!(wrote[0].ends_with(", to child"), "{}", wrote[0]);
    let child = traced(&summary, "child");
    assert!(child[0].starts_with("execve examples-argument child argument "), "{child:#?}");
    let read: Vec<&str> = child.iter().copied().filter(|l| l.starts_with("read")).collect();
    assert_eq!(read.len(), 1, "{child:#?}");
    assert_eq!(bytes_in(read[0]), Some(array + header), "{}", read[0]);
    assert!(read[0].ends_with(", from parent"), "{}", read[0]);
    let pipe = &read[0][read[0].find("pipe:[").expect("a pipe")..];
    let pipe = &pipe[..=pipe.find(']').unwrap()];
    assert!(wrote[0].contains(pipe), "the same pipe: {} / {}", wrote[0], read[0]);
}

#[test]
fn the_forked_child_moves_no_data_and_runs_no_new_program() {
    let Some(stdout) = run(
        &["inherit", "--n", "100", "--trace"],
        "the_forked_child_moves_no_data_and_runs_no_new_program",
    ) else {
        return;
    };
    let summary = trace_summary(&stdout, "inherit");
    let child = traced(&summary, "child");
    assert!(!child.is_empty(), "{summary:#?}");
    assert!(child.iter().all(|l| !l.starts_with("execve") && !l.contains(" bytes on ")));
    assert!(traced(&summary, "parent").contains(&"clone started child"), "{summary:#?}");
    assert!(
        summary
            .contains(&"trace: in all: 0 bytes sent through pipes and sockets, 0 shared mappings")
    );
    assert!(summary.iter().any(|l| l.starts_with("trace: fork copies no page")), "{summary:#?}");
}

//! `--trace`: what the processes asked the kernel to do, per scene. The array lives
//! in the server: a child that sums through its proxy sends and receives only small
//! messages, while the parent that fetches a full copy (hosted-sum) receives the
//! whole array from the server. Where strace cannot run, each test says so in one
//! line and passes, unless EXAMPLES_REQUIRE_STRACE=1.

use test_support::{Launch, bytes_in, trace_summary, traced, traced_run};

const BIN: &str = env!("CARGO_BIN_EXE_examples-manager");
/// 100,000 f64: the hosted array's bytes.
const ARRAY: u64 = 800_000;

/// The traced run of `scene`; None where strace cannot trace.
fn run(scene: &str, test: &str) -> Option<String> {
    let args = [scene, "--n", "100000", "--trace"];
    traced_run(Launch::new(BIN, "examples-manager-trace", &args).short_tmpdir("mt"), test)
}

/// The bytes of the lines that send (`out`) or receive, and how many calls made them.
fn moved(lines: &[&str], out: bool) -> (u64, u64) {
    let verbs: &[&str] = if out { &["send", "write"] } else { &["recv", "read"] };
    let lines =
        lines.iter().filter(|l| verbs.iter().any(|v| l.starts_with(v)) && l.contains(" on "));
    lines.fold((0, 0), |(bytes, calls), line| {
        let n = line.split_once('×').map_or(1, |(_, rest)| {
            rest.split(':').next().unwrap().replace(',', "").parse().unwrap()
        });
        (bytes + bytes_in(line).unwrap_or(u64::MAX / 4), calls + n)
    })
}

#[test]
fn a_child_with_a_proxy_sends_and_receives_only_small_messages() {
    let Some(stdout) =
        run("child-proxy", "a_child_with_a_proxy_sends_and_receives_only_small_messages")
    else {
        return;
    };
    let child = traced(&trace_summary(&stdout, "child-proxy"), "child");
    let (sent, messages) = moved(&child, true);
    let (received, _) = moved(&child, false);
    assert!(messages > 0 && sent < 1000 && received < 1000, "{child:#?}");
    assert!(sent / messages < 100, "small messages: {child:#?}");
}

#[test]
fn fetching_a_copy_moves_the_whole_array_from_the_server() {
    let Some(stdout) = run("hosted-sum", "fetching_a_copy_moves_the_whole_array_from_the_server")
    else {
        return;
    };
    let summary = trace_summary(&stdout, "hosted-sum");
    let (sent, _) = moved(&traced(&summary, "server"), true);
    let (received, _) = moved(&traced(&summary, "parent"), false);
    assert!((ARRAY..ARRAY + 1000).contains(&sent), "{summary:#?}");
    assert!((ARRAY..ARRAY + 1000).contains(&received), "{summary:#?}");
}

//! What the kernel says about the array's pages (the `memory:` lines), at 40 MB so
//! that page counts are unambiguous: in every scene the child's pages are the
//! parent's, shared, in a shared mapping.

use test_support::{Launch, memory_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-shm");

#[test]
fn every_child_shares_the_parents_pages_in_a_shared_mapping() {
    for (scene, mapping) in [
        ("named", "a shared mapping of /dev/shm/exshm-"),
        ("anonymous", "a shared mapping"),
        ("copy-in", "a shared mapping"),
    ] {
        let outcome = Launch::new(BIN, "es-memory", &[scene, "--n", "5000000"]).start().finish();
        assert!(outcome.status.success(), "{}", outcome.stderr);
        let lines = memory_lines(&outcome.stdout, "child");
        assert_eq!(lines.len(), 1, "{scene}: {}", outcome.stdout);
        assert!(lines[0].shared_mb >= 40 && lines[0].private_mb == 0, "{scene}: {lines:?}");
        assert!(lines[0].mapping.starts_with(mapping), "{scene}: {lines:?}");
    }
}

/// `--pause`: the child is held while it holds the array, and what the pause lines
/// name exists at that moment: the segment, the child, and mappings that hold the
/// whole array (the `grep` of /proc/PID/maps matches every mapping the array spans,
/// and only those). Enter on standard input goes on, and the scene ends as usual.
#[test]
fn pause_names_what_exists_and_goes_on_at_enter() {
    let mut run =
        Launch::new(BIN, "es-pause", &["named", "--n", "1000000", "--pause"]).stdin_piped().start();
    run.wait_for_line("pause: press Enter here to go on");
    let pause: Vec<String> =
        run.lines_so_far().iter().filter(|l| l.starts_with("pause:")).cloned().collect();
    let line = |name: &str| -> &str {
        pause.iter().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{name}: {pause:?}"))
    };
    let ls: Vec<&str> = line("ls -l /dev/shm/").split_whitespace().collect();
    assert!(std::path::Path::new(ls[3]).exists(), "{ls:?} while paused");
    // "pause:   at START-END; look from another terminal:"
    let range = line("; look from another terminal:").split_whitespace().nth(2).unwrap();
    let range = range.trim_end_matches(';');
    let hex = |text: &str| usize::from_str_radix(text, 16).unwrap();
    let (start, end) = range.split_once('-').map(|(a, b)| (hex(a), hex(b))).unwrap();
    // "pause:   grep -E '^(7f1200000000|7f1300000000)-' /proc/N/maps"
    let grep: Vec<&str> = line("grep -E '^(").split_whitespace().collect();
    let maps = std::fs::read_to_string(grep[4]).expect("the child's maps while paused");
    let starts: Vec<&str> = grep[3].trim_matches(|c| "'^()-".contains(c)).split('|').collect();
    let matched: Vec<(usize, usize)> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.split_once('-'))
        .filter(|(from, _)| starts.contains(from))
        .map(|(from, to)| (hex(from), hex(to)))
        .collect();
    assert_eq!(matched.len(), starts.len(), "{grep:?}: {maps}");
    assert!(matched.first().unwrap().0 <= start && matched.last().unwrap().1 >= end, "{range}");
    let rollup: Vec<&str> = line("smaps_rollup").split_whitespace().collect();
    assert!(std::path::Path::new(rollup.last().unwrap()).exists(), "{rollup:?}");
    run.type_line("");
    let outcome = run.finish();
    assert!(outcome.status.success(), "{}", outcome.stderr);
    assert!(outcome.stdout.contains("verdict: named: "), "{}", outcome.stdout);
    assert!(!std::path::Path::new(ls[3]).exists(), "{ls:?} after the scene");
}

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

/// `--pause`: the child is held while it holds the array, and every path the pause
/// lines name exists at that moment (the segment keeps its name until Enter); Enter
/// on standard input goes on, and the scene ends as usual.
#[test]
fn pause_names_what_exists_and_goes_on_at_enter() {
    let mut run =
        Launch::new(BIN, "es-pause", &["named", "--n", "1000", "--pause"]).stdin_piped().start();
    run.wait_for_line("pause: press Enter here to go on");
    let pause: Vec<String> =
        run.lines_so_far().iter().filter(|l| l.starts_with("pause:")).cloned().collect();
    let command = |name: &str| -> Vec<String> {
        let line = pause.iter().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{pause:?}"));
        line.split_whitespace().skip(1).map(str::to_owned).collect()
    };
    let ls = command("ls -l /dev/shm/");
    assert!(std::path::Path::new(&ls[2]).exists(), "{ls:?} while paused");
    let grep = command("grep ");
    let maps = std::fs::read_to_string(&grep[2]).expect("the child's maps while paused");
    assert!(maps.contains(&grep[1]), "{grep:?}: {maps}");
    let pmap = command("pmap -x ");
    assert!(std::path::Path::new(&format!("/proc/{}", pmap[2])).exists(), "{pmap:?}");
    run.type_line("");
    let outcome = run.finish();
    assert!(outcome.status.success(), "{}", outcome.stderr);
    assert!(outcome.stdout.contains("verdict: named: "), "{}", outcome.stdout);
    assert!(!std::path::Path::new(&ls[2]).exists(), "{ls:?} after the scene");
}

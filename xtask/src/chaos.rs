//! `cargo xtask chaos`: runs the programs at small sizes and hurts each run once,
//! at a random moment: SIGINT, SIGTERM, SIGHUP or SIGKILL, sent to the parent, to
//! one of its children, or to its watchdog. Then it counts what a learner would
//! find: processes that outlived the run (orphans), runs that did not end (hangs),
//! and files or shared-memory segments left behind (leftovers). The promise it
//! checks: 3 seconds after any signal to any process of a run, nothing of the run
//! remains. Each program runs both plainly and with `--trace` (under strace, which
//! is then one more process to hurt), where strace can trace.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// `chaos`'s flags.
#[derive(clap::Args)]
pub struct ChaosArgs {
    /// Runs per program
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Only these programs (default: all), e.g. --programs mmap,shm
    #[arg(long, value_delimiter = ',')]
    programs: Vec<String>,
    /// The random seed, to repeat a run exactly [default: from the clock]
    #[arg(long)]
    seed: Option<u64>,
}

/// Each program's run: its default sequence of scenes, at small sizes; then each
/// again with `--trace`.
const RUNS: [(&str, &[&str]); 12] = [
    ("argument", &["--n", "400"]),
    ("pipe", &["--n", "400"]),
    ("queue", &["--n", "100", "--producers", "3"]),
    ("mmap", &["--n", "200000", "--children", "4"]),
    ("shm", &["--n", "1000000"]),
    ("manager", &["--n", "200000", "--clients", "2"]),
    ("argument", &["--n", "400", "--trace"]),
    ("pipe", &["--n", "400", "--trace"]),
    ("queue", &["--n", "100", "--producers", "3", "--trace"]),
    ("mmap", &["--n", "200000", "--children", "4", "--trace"]),
    ("shm", &["--n", "1000000", "--trace"]),
    ("manager", &["--n", "200000", "--clients", "2", "--trace"]),
];

/// What is sent.
const SIGNALS: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGKILL];

/// How long after its signal a run may take to be gone entirely.
const GONE_WITHIN: Duration = Duration::from_secs(3);
/// A run still going this long after its signal hangs.
const HANG: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Counts {
    runs: u32,
    orphans: u32,
    hangs: u32,
    leftovers: u32,
}

pub fn run(args: ChaosArgs, root: &Path, target: &Path) -> Result<bool> {
    let seed = args.seed.unwrap_or_else(|| {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        now.as_nanos() as u64 | 1
    });
    let mut random = Random(seed);
    let traced = |run_args: &[&str]| run_args.contains(&"--trace");
    let can_trace = test_support::strace_works("chaos's --trace runs");
    let runs: Vec<(&str, &[&str])> = RUNS
        .iter()
        .filter(|(program, _)| {
            args.programs.is_empty() || args.programs.iter().any(|p| p == program)
        })
        .filter(|(_, run_args)| can_trace || !traced(run_args))
        .copied()
        .collect();
    if runs.is_empty() {
        bail!("no such program; the programs are {:?}", RUNS.map(|(p, _)| p));
    }
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(root).args(["build", "--quiet"]);
    for (program, _) in runs.iter().filter(|(_, run_args)| !traced(run_args)) {
        build.args(["-p", &format!("examples-{program}")]);
    }
    if !build.status().context("could not run cargo build")?.success() {
        bail!("cargo build failed");
    }
    let scratch = target.join("chaos");
    println!("chaos: seed {seed} (--seed {seed} repeats this run)");
    let mut counts = Counts::default();
    for (program, run_args) in &runs {
        let binary = target.join("debug").join(format!("examples-{program}"));
        let name =
            if traced(run_args) { format!("{program} --trace") } else { program.to_string() };
        let tmpdir = scratch.join(name.replace(' ', ""));
        // A clean run first: how long the program lives, so that the signal can come
        // at any moment of it.
        let lifetime = clean_run(&binary, run_args, &tmpdir)?;
        for round in 1..=args.rounds {
            let found = chaotic_run(&binary, run_args, &tmpdir, lifetime, &mut random)?;
            counts.runs += 1;
            counts.orphans += u32::from(!found.orphans.is_empty());
            counts.hangs += u32::from(found.hung);
            counts.leftovers += u32::from(!found.leftovers.is_empty());
            let mut problems = Vec::new();
            if found.hung {
                problems.push("HANG: the parent still ran 20 s after the signal".to_owned());
            }
            if !found.orphans.is_empty() {
                problems.push(format!("ORPHANS: {:?}", found.orphans));
            }
            if !found.leftovers.is_empty() {
                problems.push(format!("LEFTOVERS: {:?}", found.leftovers));
            }
            let verdict = if problems.is_empty() { "ok".to_owned() } else { problems.join("; ") };
            println!("chaos: {name} #{round}: {}: {verdict}", found.what);
        }
        let _ = std::fs::remove_dir_all(&tmpdir);
    }
    let Counts { runs, orphans, hangs, leftovers } = counts;
    println!(
        "chaos: {runs} runs: {orphans} with orphans, {hangs} hangs, {leftovers} with leftovers"
    );
    Ok(orphans + hangs + leftovers == 0)
}

/// What one hurt run left.
struct Found {
    /// What was done: "SIGTERM to a child (pid 123) after 0.120 s".
    what: String,
    hung: bool,
    orphans: Vec<String>,
    leftovers: Vec<String>,
}

/// One run, one signal at a random moment, then a look at what is left once the
/// grace of [`GONE_WITHIN`] is over (or as soon as nothing is).
fn chaotic_run(
    binary: &Path,
    args: &[&str],
    tmpdir: &Path,
    lifetime: Duration,
    random: &mut Random,
) -> Result<Found> {
    let _ = std::fs::remove_dir_all(tmpdir);
    std::fs::create_dir_all(tmpdir)?;
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let marker = format!("chaos-{}-{count}", std::process::id());
    let mut parent = Command::new(binary)
        .args(args)
        .env("TMPDIR", tmpdir)
        .env(test_support::MARKER_VARIABLE, &marker)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let drains = [drain(parent.stdout.take()), drain(parent.stderr.take())];
    let started = Instant::now();
    let parent_pid = parent.id() as i32;

    // A moment anywhere in the run's life, a little past its end included.
    let delay = Duration::from_micros(random.below(lifetime.as_micros() as u64 * 11 / 10 + 1));
    thread::sleep(delay);
    let signal = SIGNALS[random.below(SIGNALS.len() as u64) as usize];
    let children: Vec<i32> = test_support::processes_with(&marker)
        .into_iter()
        .filter(|&pid| pid != parent_pid)
        .collect();
    let watchdogs = test_support::watchdogs_with(&marker);
    let choice = random.below(100);
    let (whom, pid) = if choice >= 85 && !watchdogs.is_empty() {
        ("the watchdog", watchdogs[0])
    } else if choice >= 50 && !children.is_empty() {
        ("a child", children[random.below(children.len() as u64) as usize])
    } else {
        ("the parent", parent_pid)
    };
    let at = started.elapsed();
    let sent = kill(Pid::from_raw(pid), signal).is_ok();
    let signalled = Instant::now();
    let what = match sent {
        true => format!("{signal} to {whom} (pid {pid}) after {:.3} s", at.as_secs_f64()),
        false => format!("{signal} to {whom} after {:.3} s: it had ended", at.as_secs_f64()),
    };

    // Every process of the run seen, for the segments named after them: a traced
    // program's pid is not the pid of the process this task started.
    let mut seen: Vec<i32> = vec![parent_pid];
    let look = |seen: &mut Vec<i32>| {
        for pid in test_support::every_process_with(&marker) {
            if !seen.contains(&pid) {
                seen.push(pid);
            }
        }
    };
    look(&mut seen);
    let mut hung = false;
    while parent.try_wait()?.is_none() {
        look(&mut seen);
        if signalled.elapsed() > HANG {
            hung = true;
            let _ = parent.kill();
            let _ = parent.wait();
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    // Nothing of the run may be left 3 s after the signal (or after the run's end,
    // if the signal came too late to find it).
    let deadline = signalled.max(started + lifetime).max(Instant::now()) + GONE_WITHIN;
    let (orphans, leftovers) = loop {
        let orphans: Vec<String> =
            test_support::every_process_with(&marker).into_iter().map(describe_process).collect();
        look(&mut seen);
        let leftovers = leftovers(tmpdir, &seen);
        if (orphans.is_empty() && leftovers.is_empty()) || Instant::now() > deadline {
            break (orphans, leftovers);
        }
        thread::sleep(Duration::from_millis(20));
    };
    // Leave a clean machine for the next run, whatever this one left.
    for pid in test_support::every_process_with(&marker) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    for segment in seen.iter().flat_map(|&pid| segments_of(pid)) {
        let _ = std::fs::remove_file(segment);
    }
    for drain in drains {
        let _ = drain.join();
    }
    Ok(Found { what, hung, orphans, leftovers })
}

/// Reads a pipe to its end on a thread, so the program never blocks writing.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        }
    })
}

/// "1234 examples-mmap child many-children ..." for a report.
fn describe_process(pid: i32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> =
        cmdline.split(|&b| b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    format!("{pid} {}", words.join(" ").trim())
}

/// What the run left in its TMPDIR and in /dev/shm (segments named after any of
/// its processes).
fn leftovers(tmpdir: &Path, processes: &[i32]) -> Vec<String> {
    let mut left: Vec<String> = std::fs::read_dir(tmpdir)
        .map(|entries| entries.flatten().map(|e| e.path().display().to_string()).collect())
        .unwrap_or_default();
    let segments = processes.iter().flat_map(|&pid| segments_of(pid));
    left.extend(segments.map(|path| path.display().to_string()));
    left
}

/// The shared-memory segments a run with this parent made: default names carry the
/// parent's pid ("/exshm-<pid>-<random>").
fn segments_of(parent: i32) -> Vec<PathBuf> {
    let prefix = format!("exshm-{parent}-");
    std::fs::read_dir("/dev/shm")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the program once, untouched; returns how long it took.
fn clean_run(binary: &Path, args: &[&str], tmpdir: &Path) -> Result<Duration> {
    let _ = std::fs::remove_dir_all(tmpdir);
    std::fs::create_dir_all(tmpdir)?;
    let started = Instant::now();
    let status = Command::new(binary)
        .args(args)
        .env("TMPDIR", tmpdir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let took = started.elapsed();
    let _ = std::fs::remove_dir_all(tmpdir);
    if !status.success() {
        bail!("{} {args:?} fails even untouched: {status}", binary.display());
    }
    Ok(took)
}

/// A small, repeatable random number generator (xorshift64*): the run is chaos,
/// but a seed repeats it.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_the_same_choices() {
        let (mut a, mut b) = (Random(42), Random(42));
        let first: Vec<u64> = (0..5).map(|_| a.below(100)).collect();
        assert_eq!(first, (0..5).map(|_| b.below(100)).collect::<Vec<_>>());
        assert!(first.iter().all(|&x| x < 100));
    }

    #[test]
    fn what_a_run_leaves_is_found() {
        let tmpdir = std::env::temp_dir().join(format!("chaos-test-{}", std::process::id()));
        std::fs::create_dir_all(tmpdir.join("examples-mmap-x")).unwrap();
        let pid = std::process::id() as i32;
        let segment = PathBuf::from(format!("/dev/shm/exshm-{pid}-test"));
        std::fs::write(&segment, b"left").unwrap();
        let left = leftovers(&tmpdir, &[1, pid]);
        std::fs::remove_file(&segment).unwrap();
        std::fs::remove_dir_all(&tmpdir).unwrap();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(leftovers(&tmpdir, &[pid]).is_empty());
    }
}

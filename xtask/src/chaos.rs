//! `cargo xtask chaos`: runs the programs at small sizes and hurts each run once,
//! at a random moment: SIGINT, SIGTERM, SIGHUP or SIGKILL, sent to the parent, to
//! one of its children, or to its watchdog. Then it counts what a learner would
//! find: processes that outlived the run (orphans), runs that did not end (hangs),
//! files or shared-memory segments left behind (leftovers), and anything removed
//! that the run did not make. The promise it checks: 3 seconds after any signal to
//! any process of a run, nothing of the run remains, and nothing else is gone.
//!
//! Two kinds of run make it harder than a plain run:
//!
//! - **An odd TMPDIR.** Rounds take turns: a plain TMPDIR, one whose name holds a
//!   newline, and one whose name holds a newline, a byte that is not UTF-8, and the
//!   text of a message about another directory (the decoy), which a watchdog that
//!   read its messages as lines would have taken as the parent's. The decoy must
//!   survive every run.
//! - **A name shared with a concurrent run** (mmap's `--path`, shm's `--name`): a
//!   second run starts on the same name while the first one runs, and either run is
//!   hurt. The mmap runs share a file that neither made, which must still be there
//!   afterwards; the second shm run takes the name with `--replace --keep`, so if it
//!   succeeds its segment must be there afterwards, whatever the first run's cleanup
//!   did (and if it said it kept it: a traced run's lines pass through its parent,
//!   so with that parent killed by SIGKILL they may be lost, and a segment still
//!   there is then counted neither way). A run that was not hurt must not die of a
//!   signal (a SIGBUS, say).
//!
//! Each program runs both plainly and with `--trace` (under strace, which is then
//! one more process to hurt), where strace can trace.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// `chaos`'s flags.
#[derive(clap::Args)]
pub struct ChaosArgs {
    /// Runs per program (and as many pairs sharing a name, for mmap and shm)
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
    /// Runs after which something they did not make was gone.
    foreign: u32,
    /// Runs that were not hurt, yet died of a signal.
    crashed: u32,
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
    let mut programs: Vec<&str> = runs.iter().map(|(program, _)| *program).collect();
    programs.sort_unstable();
    programs.dedup();
    crate::build_programs(root, programs, false)?;
    let scratch = target.join("chaos");
    let decoy = Decoy(scratch.join("decoy"));
    println!("chaos: seed {seed} (--seed {seed} repeats this run)");
    let mut counts = Counts::default();
    for (program, run_args) in &runs {
        let binary = target.join("debug").join(format!("examples-{program}"));
        let words: Vec<OsString> = run_args.iter().map(OsString::from).collect();
        let name =
            if traced(run_args) { format!("{program} --trace") } else { program.to_string() };
        let base = scratch.join(name.replace(' ', ""));
        // A clean run first: how long the program lives, so that the signal can come
        // at any moment of it.
        let lifetime = clean_run(&binary, &words, &base)?;
        for round in 1..=args.rounds {
            decoy.plant()?;
            let tmpdir = odd_tmpdir(&base, round, &decoy.0);
            let mut runs = [Launched::start(&binary, &words, &tmpdir)?];
            let found = hurt(&mut runs, lifetime, &mut random)?;
            let found = found.also_foreign(!decoy.intact(), "the decoy directory");
            found.report(&format!("{name} #{round}"), &mut counts);
            let _ = std::fs::remove_dir_all(&base);
        }
        if matches!(*program, "mmap" | "shm") {
            let dir = scratch.join(format!("{}-shared", name.replace(' ', "")));
            let lifetime = clean_run(&binary, &shared_args(program, &words, &dir, 0).0, &dir)?;
            for round in 1..=args.rounds {
                let found = shared_run(program, &binary, &words, &dir, lifetime, &mut random)?;
                found.report(&format!("{name} shared #{round}"), &mut counts);
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&decoy.0);
    let Counts { runs, orphans, hangs, leftovers, foreign, crashed } = counts;
    println!(
        "chaos: {runs} runs: {orphans} with orphans, {hangs} hangs, {leftovers} with \
         leftovers, {foreign} removed what was not theirs, {crashed} unhurt crashed"
    );
    Ok(orphans + hangs + leftovers + foreign + crashed == 0)
}

/// A directory no run makes, which an odd TMPDIR names.
struct Decoy(PathBuf);

impl Decoy {
    fn plant(&self) -> Result<()> {
        std::fs::create_dir_all(&self.0)?;
        Ok(std::fs::write(self.0.join("precious"), b"not a run's")?)
    }

    fn intact(&self) -> bool {
        std::fs::read(self.0.join("precious")).is_ok_and(|kept| kept == b"not a run's")
    }
}

/// The TMPDIR of round `round` inside `base`: plain; with a newline; or with a
/// newline, the text of a message about `decoy`, and a byte that is not UTF-8.
fn odd_tmpdir(base: &Path, round: u32, decoy: &Path) -> PathBuf {
    let name = match round % 3 {
        1 => return base.to_owned(),
        2 => b"new\nline".to_vec(),
        _ => [&b"x\nannounce Dir 0 "[..], decoy.as_os_str().as_bytes(), b"\ny\xff"].concat(),
    };
    base.join(OsStr::from_bytes(&name))
}

/// The first run's arguments for a run sharing a name, and the second's: mmap's
/// share a `--path` file that neither made; shm's a `--name`, which the second takes
/// with `--replace --keep`. Also the shared thing's path.
fn shared_args(
    program: &str,
    words: &[OsString],
    dir: &Path,
    count: u32,
) -> (Vec<OsString>, Vec<OsString>, PathBuf) {
    let mut first = words.to_vec();
    let mut second = words.to_vec();
    if program == "mmap" {
        let file = dir.join("users.f32");
        first.extend(["--path".into(), file.clone().into()]);
        second.extend(["--path".into(), file.clone().into()]);
        (first, second, file)
    } else {
        let name = format!("exshm-chaos-{}-{count}", std::process::id());
        first.extend(["--name".into(), name.clone().into()]);
        second.extend(["--name", &name, "--replace", "--keep"].map(OsString::from));
        (first, second, Path::new("/dev/shm").join(name))
    }
}

/// Two runs of `program` that share a name, started one after the other, one of them
/// hurt: see the module's documentation.
fn shared_run(
    program: &str,
    binary: &Path,
    words: &[OsString],
    dir: &Path,
    lifetime: Duration,
    random: &mut Random,
) -> Result<Found> {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (first_args, second_args, shared) = shared_args(program, words, dir, count);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    if program == "mmap" {
        std::fs::write(&shared, b"the user's own file")?;
    }
    let first = Launched::start(binary, &first_args, &dir.join("first"))?;
    // The second starts once the first has made the name its own (or has ended).
    let made = Instant::now();
    while program == "shm" && !shared.exists() && made.elapsed() < HANG && first.running() {
        thread::sleep(Duration::from_millis(2));
    }
    let pause = random.below(lifetime.as_micros() as u64 / 2 + 1);
    thread::sleep(Duration::from_micros(pause));
    let second = Launched::start(binary, &second_args, &dir.join("second"))?;
    let mut runs = [first, second];
    let found = hurt(&mut runs, lifetime, random)?;
    let still_there = shared.exists();
    // It said so once it had let the segment go (--keep): from then on it is kept,
    // even if the run is hurt later on.
    let kept = found.stdouts[1].lines().any(|line| line.starts_with("parent: kept /"));
    // Unless its "kept" line was lost with the traced run's parent: then a segment
    // still there may be kept or left, and is counted neither way.
    let unheard = found.unheard && found.hurt == 1;
    let found = match program {
        "mmap" => found.also_foreign(!still_there, "the --path file neither run made"),
        _ if kept => found.also_foreign(!still_there, "the segment the second run took and kept"),
        _ if unheard => found,
        _ => found.also_left(still_there, &shared),
    };
    let _ = std::fs::remove_file(&shared);
    Ok(found)
}

/// One run, started with its marker.
struct Launched {
    marker: String,
    /// Run with `--trace`: its output passes through its parent, which strace runs.
    traced: bool,
    parent: std::process::Child,
    tmpdir: PathBuf,
    /// The threads reading its standard output (returned) and error.
    drains: Vec<thread::JoinHandle<String>>,
}

impl Launched {
    fn start(binary: &Path, args: &[OsString], tmpdir: &Path) -> Result<Launched> {
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
        let drains = vec![drain(parent.stdout.take()), drain(parent.stderr.take())];
        let traced = args.iter().any(|arg| arg == "--trace");
        Ok(Launched { marker, traced, parent, tmpdir: tmpdir.to_owned(), drains })
    }

    fn pid(&self) -> i32 {
        self.parent.id() as i32
    }

    fn running(&self) -> bool {
        test_support::processes_with(&self.marker).contains(&self.pid())
    }
}

/// What one hurt run, or pair of runs, left.
struct Found {
    /// What was done: "SIGTERM to a child (pid 123) after 0.120 s".
    what: String,
    hung: bool,
    orphans: Vec<String>,
    leftovers: Vec<String>,
    /// What was gone that the runs did not make.
    foreign: Vec<String>,
    /// How each run ended (None: it hung and was killed).
    statuses: Vec<Option<ExitStatus>>,
    /// Which run was hurt.
    hurt: usize,
    /// What each run printed on its standard output.
    stdouts: Vec<String>,
    /// The hurt run's last lines may be lost: it was traced, and its parent, which
    /// passes its program's lines on, was killed with SIGKILL.
    unheard: bool,
}

impl Found {
    fn also_foreign(mut self, gone: bool, what: &str) -> Found {
        if gone {
            self.foreign.push(what.to_owned());
        }
        self
    }

    fn also_left(mut self, left: bool, path: &Path) -> Found {
        if left {
            self.leftovers.push(path.display().to_string());
        }
        self
    }

    /// Runs not hurt that died of a signal, as "run 2: signal 7".
    fn crashes(&self) -> Vec<String> {
        let unhurt = self.statuses.iter().enumerate().filter(|(i, _)| *i != self.hurt);
        unhurt
            .filter_map(|(i, status)| {
                Some(format!("run {}: signal {}", i + 1, (*status)?.signal()?))
            })
            .collect()
    }

    fn report(&self, name: &str, counts: &mut Counts) {
        let crashes = self.crashes();
        counts.runs += 1;
        counts.orphans += u32::from(!self.orphans.is_empty());
        counts.hangs += u32::from(self.hung);
        counts.leftovers += u32::from(!self.leftovers.is_empty());
        counts.foreign += u32::from(!self.foreign.is_empty());
        counts.crashed += u32::from(!crashes.is_empty());
        let mut problems = Vec::new();
        if self.hung {
            problems.push("HANG: a parent still ran 20 s after the signal".to_owned());
        }
        if !self.orphans.is_empty() {
            problems.push(format!("ORPHANS: {:?}", self.orphans));
        }
        if !self.leftovers.is_empty() {
            problems.push(format!("LEFTOVERS: {:?}", self.leftovers));
        }
        if !self.foreign.is_empty() {
            problems.push(format!("REMOVED: {:?}", self.foreign));
        }
        if !crashes.is_empty() {
            problems.push(format!("CRASHED: {crashes:?}"));
        }
        let verdict = if problems.is_empty() { "ok".to_owned() } else { problems.join("; ") };
        let ended: Vec<String> = self
            .statuses
            .iter()
            .map(|status| status.map_or("hung".into(), |status| status.to_string()))
            .collect();
        let ended =
            if ended.len() > 1 { format!(" ({})", ended.join("; ")) } else { String::new() };
        println!("chaos: {name}: {}{ended}: {verdict}", self.what);
    }
}

/// One signal at a random moment to one process of one of `runs`, then a look at
/// what is left once the grace of [`GONE_WITHIN`] is over (or as soon as nothing is).
fn hurt(runs: &mut [Launched], lifetime: Duration, random: &mut Random) -> Result<Found> {
    let started = Instant::now();
    // A moment anywhere in the run's life, a little past its end included.
    let delay = Duration::from_micros(random.below(lifetime.as_micros() as u64 * 11 / 10 + 1));
    thread::sleep(delay);
    let signal = SIGNALS[random.below(SIGNALS.len() as u64) as usize];
    let hurt = random.below(runs.len() as u64) as usize;
    let run = &runs[hurt];
    let children: Vec<i32> = test_support::processes_with(&run.marker)
        .into_iter()
        .filter(|&pid| pid != run.pid())
        .collect();
    let watchdogs = test_support::watchdogs_with(&run.marker);
    let choice = random.below(100);
    let (whom, pid) = if choice >= 85 && !watchdogs.is_empty() {
        ("the watchdog", watchdogs[0])
    } else if choice >= 50 && !children.is_empty() {
        ("a child", children[random.below(children.len() as u64) as usize])
    } else {
        ("the parent", run.pid())
    };
    let which = if runs.len() > 1 { format!(" of run {}", hurt + 1) } else { String::new() };
    let at = started.elapsed().as_secs_f64();
    let sent = kill(Pid::from_raw(pid), signal).is_ok();
    let signalled = Instant::now();
    let unheard = sent && signal == Signal::SIGKILL && whom == "the parent" && run.traced;
    let what = match sent {
        true => format!("{signal} to {whom}{which} (pid {pid}) after {at:.3} s"),
        false => format!("{signal} to {whom}{which} after {at:.3} s: it had ended"),
    };

    // Every process of each run seen, for the segments named after them: a traced
    // program's pid is not the pid of the process this task started.
    let mut seen: Vec<Vec<i32>> = runs.iter().map(|run| vec![run.pid()]).collect();
    let look = |seen: &mut Vec<Vec<i32>>, runs: &[Launched]| {
        for (pids, run) in seen.iter_mut().zip(runs) {
            for pid in test_support::every_process_with(&run.marker) {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
    };
    look(&mut seen, runs);
    let mut hung = false;
    let mut statuses = Vec::new();
    for index in 0..runs.len() {
        let status = loop {
            look(&mut seen, runs);
            let run = &mut runs[index];
            if let Some(status) = run.parent.try_wait()? {
                break Some(status);
            }
            if signalled.elapsed() > HANG {
                hung = true;
                let _ = run.parent.kill();
                let _ = run.parent.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(10));
        };
        statuses.push(status);
    }
    // Nothing of the runs may be left 3 s after the signal (or after the runs' end,
    // if the signal came too late to find them).
    let deadline = signalled.max(started + lifetime).max(Instant::now()) + GONE_WITHIN;
    let (orphans, leftovers) = loop {
        let orphans: Vec<String> = runs
            .iter()
            .flat_map(|run| test_support::every_process_with(&run.marker))
            .map(describe_process)
            .collect();
        look(&mut seen, runs);
        let leftovers: Vec<String> =
            runs.iter().zip(&seen).flat_map(|(run, pids)| leftovers(&run.tmpdir, pids)).collect();
        if (orphans.is_empty() && leftovers.is_empty()) || Instant::now() > deadline {
            break (orphans, leftovers);
        }
        thread::sleep(Duration::from_millis(20));
    };
    // Leave a clean machine for the next run, whatever this one left.
    for (run, pids) in runs.iter().zip(&seen) {
        for pid in test_support::every_process_with(&run.marker) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        for segment in pids.iter().flat_map(|&pid| segments_of(pid)) {
            let _ = std::fs::remove_file(segment);
        }
    }
    let mut stdouts = Vec::new();
    for run in runs.iter_mut() {
        let mut output = run.drains.drain(..).map(|drain| drain.join().unwrap_or_default());
        stdouts.push(output.next().unwrap_or_default());
    }
    let foreign = Vec::new();
    Ok(Found { what, hung, orphans, leftovers, foreign, statuses, hurt, stdouts, unheard })
}

/// Reads a pipe to its end on a thread, so the program never blocks writing, and
/// returns what it read.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
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
fn clean_run(binary: &Path, args: &[OsString], tmpdir: &Path) -> Result<Duration> {
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
    use std::os::unix::ffi::OsStringExt;

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

    #[test]
    fn the_odd_tmpdirs_hold_what_they_promise() {
        let base = Path::new("/tmp/chaos");
        let decoy = Path::new("/tmp/chaos/decoy");
        assert_eq!(odd_tmpdir(base, 1, decoy), base);
        let newline = odd_tmpdir(base, 2, decoy).into_os_string().into_vec();
        assert!(newline.contains(&b'\n') && std::str::from_utf8(&newline).is_ok());
        let odd = odd_tmpdir(base, 3, decoy).into_os_string().into_vec();
        assert!(odd.contains(&b'\n') && std::str::from_utf8(&odd).is_err());
        assert!(odd.windows(decoy.as_os_str().len()).any(|w| w == decoy.as_os_str().as_bytes()));
    }
}

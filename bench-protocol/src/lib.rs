//! The benchmark protocol of the `bench` commands, the same for every program.
//!
//! The protocol is the one of the tutorial "Fastest Way To Share NumPy Array Between
//! Processes": create an array of n float64 ones, share it with one new child
//! process that reads its length, wait for the child. The clock covers all of it.
//! Each program's `bench.rs` says how *its* methods create, share and wait; this
//! module only runs them the same way everywhere, so the figures compare:
//!
//! * every timed run happens in a fresh process (the program again, as `bench-run
//!   METHOD --n N`), so each run's peak memory is its own and no run reuses memory
//!   an earlier run already faulted in;
//! * one warm-up run, then `repeats` timed runs, printed as one line per method:
//!   `<method> median=<s> min=<s> max=<s> peak_parent_mb=<m> peak_child_mb=<m>`.
//!
//! Peak memory is each process's own high-water mark (VmHWM): a run prints its own
//! in its last line, and a child reports its own ([`report_child_peak`]) on the
//! run's output, which it shares. (A forked child that never execs really does map
//! the parent's pages, shared, and its VmHWM says so.)

use std::io::Read;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use plumbing::arrays::ones;
use plumbing::{Process, Word, args};

/// The tutorial's benchmark size: 100,000,000 float64 values, 800 MB.
pub const DEFAULT_N: u64 = 100_000_000;

/// `bench`'s flags, the same in every program.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct BenchArgs {
    /// Timed runs per method, after one warm-up
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeats: u32,
    /// Only these methods (default: every one), e.g. --methods floor
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
}

/// `bench` measures the tutorial's method as it is, so a scene's flag is an error
/// there, not silently ignored: `refused` pairs each such flag with whether it was
/// given.
pub fn refuse_scene_flags(refused: &[(&str, bool)]) -> Result<()> {
    let given: Vec<&str> = refused.iter().filter(|(_, on)| *on).map(|(flag, _)| *flag).collect();
    let verb = if given.len() == 1 { "applies" } else { "apply" };
    ensure!(
        given.is_empty(),
        "bench measures the tutorial's method as it is: {} {verb} to the scenes, not to bench",
        given.join(", ")
    );
    Ok(())
}

/// `bench`: runs `methods` in order (only those `--methods` names, if given), each
/// `--repeats` times after a warm-up, each run in a fresh process, and prints one
/// line per method.
pub fn run_methods(methods: &[&str], n: u64, args: &BenchArgs) -> Result<()> {
    if let Some(unknown) = args.methods.iter().find(|m| !methods.contains(&m.as_str())) {
        bail!("unknown bench method {unknown:?}; the methods are {}", methods.join(", "));
    }
    let asked = |m: &&&str| args.methods.is_empty() || args.methods.iter().any(|c| c == *m);
    for method in methods.iter().filter(asked) {
        let mut runs = Vec::new();
        for attempt in 0..=args.repeats {
            let (output, errors, ended) = one_run(method, n)?;
            if let Err(err) = ended {
                bail!("{err:#}: {}", errors.lines().last().unwrap_or("no message"));
            }
            let seconds = output.lines().last().and_then(|l| l.strip_prefix("run seconds="));
            let (seconds, parent) = seconds
                .and_then(|l| l.split_once(" peak_parent_mb="))
                .and_then(|(s, mb)| Some((s.parse::<f64>().ok()?, mb.parse::<u64>().ok()?)))
                .with_context(|| format!("the {method} run printed no figures: {output}"))?;
            // Children print their own peaks on the same output, before the run line.
            let child = output.lines().filter_map(|l| l.strip_prefix("child peak_mb="));
            let child = child.filter_map(|mb| mb.parse::<u64>().ok()).max().unwrap_or(0);
            if attempt > 0 {
                runs.push((seconds, parent, child));
            }
        }
        println!("{}", summary_line(method, &runs));
    }
    Ok(())
}

/// One timed run's command line: `bench-run <method> --n <n>`.
struct BenchRun<'a>(&'a str, u64);

impl plumbing::Task for BenchRun<'_> {
    fn args(&self) -> Vec<Word> {
        args!["bench-run", self.0, "--n", self.1]
    }

    fn label(&self) -> String {
        format!("the {} run", self.0)
    }
}

/// This program run as `bench-run <method> --n <n>` (it dies with us), with its
/// whole output and how it ended.
fn one_run(method: &str, n: u64) -> Result<(String, String, Result<()>)> {
    let (run, mut stdout, mut stderr) = Process::bench_run(BenchRun(method, n))?;
    let errors = std::thread::Builder::new()
        .spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        })
        .context("cannot start a thread to read the run's errors")?;
    let mut output = String::new();
    stdout.read_to_string(&mut output).context("cannot read the run's output")?;
    let errors = errors.join().unwrap_or_default();
    Ok((output, errors, run.join().map(drop)))
}

/// `<method> median=<s> min=<s> max=<s> peak_parent_mb=<m> peak_child_mb=<m>`,
/// seconds to the microsecond (a run at a small n takes a few milliseconds), peaks
/// being the largest seen in any timed run.
fn summary_line(method: &str, runs: &[(f64, u64, u64)]) -> String {
    let mut seconds: Vec<f64> = runs.iter().map(|run| run.0).collect();
    seconds.sort_by(f64::total_cmp);
    let middle = seconds.len() / 2;
    let median = match seconds.len() % 2 {
        1 => seconds[middle],
        _ => (seconds[middle - 1] + seconds[middle]) / 2.0,
    };
    let (parent, child) = runs.iter().fold((0, 0), |(p, c), run| (p.max(run.1), c.max(run.2)));
    let (min, max) = (seconds[0], seconds[seconds.len() - 1]);
    format!(
        "{method} median={median:.6} min={min:.6} max={max:.6} peak_parent_mb={parent} peak_child_mb={child}"
    )
}

/// In the fresh `bench-run` process: times one run of a method (`run` creates the
/// array, shares it with the child and waits for it) and prints its figures.
pub fn time_one_run(run: impl FnOnce() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    run()?;
    let seconds = started.elapsed().as_secs_f64();
    println!("run seconds={seconds:.6} peak_parent_mb={}", plumbing::memory::peak() / 1_000_000);
    Ok(())
}

/// Reports a child's own peak resident memory in bytes (its `plumbing::memory::peak`),
/// on the run's output: a method's child just before it exits, or its parent for a
/// child that cannot print there (a server, say).
pub fn report_child_peak(bytes: u64) {
    println!("child peak_mb={}", bytes / 1_000_000);
}

/// The `floor` row every program has: n ones made in this process, with no child:
/// what every method pays before any sharing starts.
pub fn floor(n: usize) -> Result<()> {
    let len = std::hint::black_box(ones(n)).len();
    ensure!(len == n, "expected {n} values, but found {len}");
    Ok(())
}

/// Writes `bytes` into a pipe by lending the pages that hold them (`vmsplice`)
/// instead of copying them into the pipe's own pages (`write`).
///
/// With `write`, the bytes are copied twice: into the pipe, and out of it by the
/// reader's `read`. With `vmsplice`, the pipe holds references to the caller's pages
/// and the reader's `read` copies straight out of them: one copy. For the benches
/// only, never a scene, because of a rule the compiler cannot check: the pages are
/// lent, not copied, so the caller must not change `bytes` until the reader has read
/// them all (a change would travel too, and the receiver's "copy" would not be one).
/// Returns once every byte is in the pipe; like `write`, each call blocks while the
/// pipe is full, and fails with EPIPE if the reader has gone.
pub fn lend_to_pipe(pipe: impl std::os::fd::AsFd, bytes: &[u8]) -> Result<()> {
    use nix::fcntl::{SpliceFFlags, vmsplice};
    let mut rest = bytes;
    while !rest.is_empty() {
        match vmsplice(&pipe, &[std::io::IoSlice::new(rest)], SpliceFFlags::empty()) {
            Ok(lent) => rest = &rest[lent..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(err) => return Err(err).context("sending the data"),
        }
    }
    Ok(())
}

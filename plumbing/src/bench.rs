//! The benchmark protocol of the `bench` commands, the same for every program.
//!
//! The protocol is the one of the tutorial "Fastest Way To Share NumPy Array Between
//! Processes": create an array of n float64 ones, share it with one new child
//! process that reads its length, wait for the child. The clock covers all of it.
//!
//! Not part of any lesson: each program's `bench.rs` says how *its* methods
//! create, share and wait; this module only runs them the same way everywhere, so
//! the figures can be compared:
//!
//! * every timed run happens in a fresh process (the program re-runs itself with a
//!   hidden `bench-run` sub-command), so each run's peak memory is its own and no
//!   run reuses memory an earlier run already faulted in;
//! * one warm-up run, then `repeats` timed runs; the median, min and max are printed
//!   as one line per method:
//!   `<method> median=<s> min=<s> max=<s> peak_parent_mb=<m> peak_child_mb=<m>`.
//!
//! Peak memory is each process's own high-water mark (VmHWM). A child reports its
//! own with [`report_child_peak`]: the kernel's `getrusage(RUSAGE_CHILDREN)` is no
//! use here, because Linux carries the parent's resident size at `fork` into the
//! child's figure even after `exec`, so a child that holds nothing would appear to
//! hold the parent's 800 MB. (A forked child that never execs really does map the
//! parent's pages, shared, and its VmHWM says so.)

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// The tutorial's benchmark size: 100,000,000 float64 values, 800 MB.
pub const DEFAULT_N: u64 = 100_000_000;
/// Timed runs per method, after one warm-up.
pub const DEFAULT_REPEATS: u32 = 3;

/// What one run measured, printed by the run's own process as its last line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunFigures {
    pub seconds: f64,
    pub peak_parent_mb: u64,
    pub peak_child_mb: u64,
}

/// Runs `methods` in order (only those `--methods` names, if given), each
/// `--repeats` times after a warm-up, each run in a fresh process started as
/// `<this program> bench-run <method> --n <n>`, and prints one line per method.
pub fn run_methods(methods: &[&str], n: u64, args: &BenchArgs) -> Result<()> {
    let repeats = args.repeats;
    if repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    if let Some(unknown) = args.methods.iter().find(|m| !methods.contains(&m.as_str())) {
        bail!("unknown bench method {unknown:?}; the methods are {}", methods.join(", "));
    }
    let chosen =
        methods.iter().filter(|m| args.methods.is_empty() || args.methods.iter().any(|c| c == *m));
    for method in chosen {
        let mut runs = Vec::new();
        for attempt in 0..=repeats {
            let (stdout, stderr, status) = one_run(method, n)?;
            if let Err(err) = status {
                let reason = stderr.lines().last().unwrap_or("no message");
                bail!("{err:#}: {reason}");
            }
            let mut figures = stdout
                .lines()
                .last()
                .and_then(parse_run_line)
                .with_context(|| format!("the {method} run printed no figures: {stdout}"))?;
            // Children print their own peaks on the same output, before the run line.
            let child_peaks = stdout.lines().filter_map(|l| l.strip_prefix(CHILD_PEAK_PREFIX));
            if let Some(peak) = child_peaks.filter_map(|mb| mb.parse().ok()).max() {
                figures.peak_child_mb = peak;
            }
            if attempt > 0 {
                runs.push(figures);
            }
        }
        println!("{}", summary_line(method, &runs));
    }
    Ok(())
}

/// `<this program> bench-run <method> --n <n>` as a child (it dies with us), with
/// its whole output and how it ended.
fn one_run(method: &str, n: u64) -> Result<(String, String, Result<()>)> {
    let mut command = crate::children::this_program(["bench-run", method, "--n", &n.to_string()])?;
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut run = crate::children::start(format!("the {method} run"), command)?;
    let mut stderr = run.stderr.take().context("no pipe from the run")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut stdout = String::new();
    if let Some(mut out) = run.stdout.take() {
        out.read_to_string(&mut stdout).context("cannot read the run's output")?;
    }
    let status = run.wait_status()?;
    let stderr = errors.join().unwrap_or_default();
    Ok((stdout, stderr, run.check(status)))
}

/// The `floor` row every program has: n ones made in this process, with no child:
/// what every method pays before any sharing starts.
pub fn floor(n: usize) -> Result<()> {
    let len = std::hint::black_box(ones(n)).len();
    ensure!(len == n, "expected {n} values, but found {len}");
    Ok(())
}

/// The names of a program's methods, from its `clap::ValueEnum`, in order.
pub fn method_names<M: clap::ValueEnum>() -> Vec<String> {
    let names = M::value_variants().iter().filter_map(|method| method.to_possible_value());
    names.map(|value| value.get_name().to_owned()).collect()
}

/// `bench`'s flags, the same in every program.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct BenchArgs {
    /// Timed runs per method, after one warm-up
    #[arg(long, default_value_t = DEFAULT_REPEATS, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeats: u32,
    /// Only these methods (default: every one), e.g. --methods floor
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
}

/// `bench` measures the tutorial's method as it is: a scene's flag given to it is an
/// error, not silently ignored. `flags` pairs each such flag with whether it was given.
pub fn refuse_scene_flags(flags: &[(&str, bool)]) -> Result<()> {
    let given: Vec<&str> = flags.iter().filter(|(_, on)| *on).map(|(flag, _)| *flag).collect();
    let verb = if given.len() == 1 { "applies" } else { "apply" };
    ensure!(
        given.is_empty(),
        "bench measures the tutorial's method as it is: {} {verb} to the scenes, not to bench",
        given.join(", ")
    );
    Ok(())
}

/// Times one run of a method and prints its figures for the driver; called in the
/// fresh `bench-run` process. `run` creates the array, shares it with the child and
/// waits for it.
pub fn time_one_run(run: impl FnOnce() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    run()?;
    let elapsed = started.elapsed();
    println!("{}", run_line(elapsed));
    Ok(())
}

/// The line a child prints (to the standard output it inherited) with its peak.
const CHILD_PEAK_PREFIX: &str = "child peak_mb=";

/// Called by a method's child process just before it exits: reports its own peak
/// resident memory to the driver.
pub fn report_child_peak() {
    report_peak_of_a_child(crate::room::peak());
}

/// Reports a child's peak resident memory in bytes, as the child measured it
/// itself, for a child that cannot print on the run's output (a server, say).
pub fn report_peak_of_a_child(bytes: u64) {
    println!("{CHILD_PEAK_PREFIX}{}", bytes / 1_000_000);
}

/// The run's figures. `peak_child_mb` here is the kernel's figure for the children,
/// used only when no child reported its own.
fn run_line(elapsed: Duration) -> String {
    format!(
        "run seconds={:.6} peak_parent_mb={} peak_child_mb={}",
        elapsed.as_secs_f64(),
        own_peak_mb(),
        crate::room::children_peak() / 1_000_000
    )
}

/// This process's peak resident memory in MB (see [`crate::room::peak`]).
pub fn own_peak_mb() -> u64 {
    crate::room::peak() / 1_000_000
}

fn parse_run_line(line: &str) -> Option<RunFigures> {
    let mut fields = line.strip_prefix("run ")?.split(' ');
    let mut value = |key: &str| fields.next()?.strip_prefix(key)?.strip_prefix('=');
    Some(RunFigures {
        seconds: value("seconds")?.parse().ok()?,
        peak_parent_mb: value("peak_parent_mb")?.parse().ok()?,
        peak_child_mb: value("peak_child_mb")?.parse().ok()?,
    })
}

/// `<method> median=<s> min=<s> max=<s> peak_parent_mb=<m> peak_child_mb=<m>`,
/// seconds to the microsecond (a run at a small n takes a few milliseconds), peaks
/// being the largest seen in any timed run.
pub fn summary_line(method: &str, runs: &[RunFigures]) -> String {
    let mut seconds: Vec<f64> = runs.iter().map(|run| run.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let middle = seconds.len() / 2;
    let median = if seconds.len() % 2 == 1 {
        seconds[middle]
    } else {
        (seconds[middle - 1] + seconds[middle]) / 2.0
    };
    format!(
        "{method} median={median:.6} min={:.6} max={:.6} peak_parent_mb={} peak_child_mb={}",
        seconds[0],
        seconds[seconds.len() - 1],
        runs.iter().map(|run| run.peak_parent_mb).max().unwrap_or(0),
        runs.iter().map(|run| run.peak_child_mb).max().unwrap_or(0),
    )
}

/// A `Vec` of n ones, allocated the way numpy's `ones` allocates a large array.
///
/// numpy asks the kernel to back large arrays with transparent huge pages (2 MiB
/// instead of 4 KiB), so filling 800 MB takes 400 page faults instead of 200,000.
/// A Rust benchmark that fills a plain `vec![1.0; n]` pays the small-page price
/// and loses to Python before any sharing starts. The advice is only a hint: where
/// the kernel has huge pages switched off, this is an ordinary vector.
pub fn ones(n: usize) -> Vec<f64> {
    let mut data: Vec<f64> = Vec::with_capacity(n);
    advise_huge_pages(data.as_mut_ptr().cast(), n * size_of::<f64>());
    data.resize(n, 1.0);
    data
}

/// A `Vec` of n zeros whose pages the kernel has not handed out yet, advised to
/// use huge pages: the buffer to receive an array into. A large zeroed allocation
/// comes straight from the kernel already zero, so nothing is written until the
/// data arrives, and then in huge pages.
pub fn zeros(n: usize) -> Vec<f64> {
    let mut data = vec![0.0; n];
    advise_huge_pages(data.as_mut_ptr().cast(), n * size_of::<f64>());
    data
}

/// [`zeros`] that reports a failed allocation as an error instead of aborting: the
/// buffer for an array whose size came from another process (a header on a pipe or
/// a queue), which must not be able to end this one by announcing too much.
pub fn try_zeros(n: usize) -> Result<Vec<f64>> {
    let layout = std::alloc::Layout::array::<f64>(n)
        .with_context(|| format!("{n} values do not fit in memory"))?;
    if n == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a non-zero size (n > 0, and an f64 is 8 bytes).
    let start = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<f64>();
    ensure!(!start.is_null(), "no memory for {n} values ({} bytes)", layout.size());
    advise_huge_pages(start.cast(), layout.size());
    // SAFETY: `start` was allocated by the global allocator with the layout of
    // exactly n f64 (so capacity n, and the alignment of f64), and all n values
    // are initialized: all-zero bytes are the f64 0.0. The Vec owns it from here.
    Ok(unsafe { Vec::from_raw_parts(start, n, n) })
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
    use nix::errno::Errno;
    use nix::fcntl::{SpliceFFlags, vmsplice};
    let mut rest = bytes;
    while !rest.is_empty() {
        match vmsplice(&pipe, &[std::io::IoSlice::new(rest)], SpliceFFlags::empty()) {
            Ok(lent) => rest = &rest[lent..],
            Err(Errno::EINTR) => {}
            Err(err) => return Err(err).context("sending the data"),
        }
    }
    Ok(())
}

/// Asks for transparent huge pages on the whole pages inside `[start, start+len)`.
pub fn advise_huge_pages(start: *mut u8, len: usize) {
    let page = 4096;
    let first = (start as usize).next_multiple_of(page);
    let end = (start as usize + len) / page * page;
    let Some(first_page) = std::ptr::NonNull::new(first as *mut std::ffi::c_void) else {
        return;
    };
    if end > first {
        // SAFETY: [first, end) lies inside an allocation the caller owns, and
        // MADV_HUGEPAGE only changes how the kernel backs those pages, never their
        // contents or who may access them, so no Rust reference is invalidated.
        // A failure (e.g. huge pages not configured) leaves the memory as it was.
        let _ = unsafe {
            nix::sys::mman::madvise(
                first_page,
                end - first,
                nix::sys::mman::MmapAdvise::MADV_HUGEPAGE,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_zeros_gives_zeros_or_an_error() {
        assert_eq!(try_zeros(3).unwrap(), [0.0; 3]);
        assert!(try_zeros(0).unwrap().is_empty());
        assert!(try_zeros(usize::MAX / 4).is_err());
    }

    #[test]
    fn a_run_line_reads_back() {
        let line = run_line(Duration::from_millis(1500));
        let figures = parse_run_line(&line).expect("parses");
        assert_eq!(figures.seconds, 1.5);
    }

    #[test]
    fn the_summary_takes_the_median_and_the_largest_peaks() {
        let run = |seconds, parent, child| RunFigures {
            seconds,
            peak_parent_mb: parent,
            peak_child_mb: child,
        };
        let line = summary_line("pipe", &[run(3.0, 10, 5), run(1.0, 30, 5), run(2.0, 20, 7)]);
        assert_eq!(
            line,
            "pipe median=2.000000 min=1.000000 max=3.000000 peak_parent_mb=30 peak_child_mb=7"
        );
        let even = summary_line("pipe", &[run(1.0, 1, 1), run(2.0, 1, 1)]);
        assert!(even.starts_with("pipe median=1.500000 "), "{even}");
    }
}

//! The parts every example in this workspace needs that are not this example's lesson:
//! refusing sizes that cannot fit, reporting peak memory and how a child ended, and
//! cleaning up on Ctrl-C.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result, ensure};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// Refuses sizes that cannot work before anything is allocated. The child holds one
/// array while the parent receives a second, so both must fit at the same time.
pub fn check_memory(n: u64) -> Result<u64> {
    let bytes = n
        .checked_mul(n)
        .and_then(|elements| elements.checked_mul(8))
        .filter(|&bytes| bytes.checked_mul(2).is_some_and(|both| both <= isize::MAX as u64))
        .with_context(|| format!("an array of ({n}, {n}) f64 does not fit in the address space"))?;
    if let Some(available) = mem_available() {
        ensure!(
            2 * bytes <= available,
            "an array of ({n}, {n}) f64 is {}, and the child and the parent each hold one ({} in all), but only {} of memory is available",
            megabytes(bytes),
            megabytes(2 * bytes),
            megabytes(available)
        );
    }
    Ok(bytes)
}

/// `check_memory` for the bench, whose array is 1-D: n values, held once by the
/// parent (what it sends) and once by the child (what it receives). Returns n.
pub fn check_bench_memory(n: u64) -> Result<usize> {
    let bytes = n
        .checked_mul(8)
        .filter(|&bytes| bytes.checked_mul(2).is_some_and(|both| both <= isize::MAX as u64))
        .with_context(|| format!("{n} f64 values do not fit in the address space"))?;
    if let Some(available) = mem_available() {
        ensure!(
            2 * bytes <= available,
            "{n} f64 values are {}, and the parent and the child each hold them ({} in all), but only {} of memory is available",
            megabytes(bytes),
            megabytes(2 * bytes),
            megabytes(available)
        );
    }
    Ok(usize::try_from(n)?)
}

fn mem_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Peak resident memory (ru_maxrss, KiB on Linux) of this process or of its waited-for
/// children.
pub fn peak_memory(who: UsageWho) -> Result<String> {
    let kib = getrusage(who).context("reading peak memory")?.max_rss();
    Ok(megabytes(kib as u64 * 1024))
}

pub fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb >= 10.0 { format!("{mb:.0} MB") } else { format!("{mb:.2} MB") }
}

pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(number)) => match Signal::try_from(number) {
            Ok(signal) => format!("killed by signal {number} ({signal})"),
            Err(_) => format!("killed by signal {number}"),
        },
        _ => status.to_string(),
    }
}

/// The child's process id while it runs (0: none), for the interrupt handler.
pub static CHILD_PID: AtomicI32 = AtomicI32::new(0);
/// Held by the interrupt handler from the signal until the process exits.
pub static HANDLING_INTERRUPT: Mutex<()> = Mutex::new(());

pub fn interrupt_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
}

/// Ctrl-C or SIGTERM must not leave the child behind. The signals are blocked in the
/// main thread (and so in the thread it starts next), and that thread waits for them:
/// it kills and reaps the child, says so, and exits. Nothing else needs cleaning: a
/// pipe is only file descriptors, and the kernel closes those with the process.
pub fn clean_up_on_interrupt() -> Result<()> {
    let signals = interrupt_signals();
    signals.thread_block().context("blocking SIGINT and SIGTERM")?;
    std::thread::spawn(move || {
        let Ok(signal) = signals.wait() else { return };
        let _busy = HANDLING_INTERRUPT.lock();
        let pid = CHILD_PID.load(Ordering::SeqCst);
        if pid > 0 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        eprintln!("error: interrupted by {signal}; cleaned up");
        // The shell's convention: 128 + the signal's number (130 for Ctrl-C).
        std::process::exit(128 + signal as i32);
    });
    Ok(())
}

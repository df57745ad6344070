//! What the fault tests of every example share (each crate's `tests/faults.rs`).
//!
//! A fault test starts the real binary, hurts it (a child that sleeps and is
//! killed, a signal to the parent, bad input) and then claims two things: the
//! program said what went wrong, and nothing of the run is left behind. The second
//! claim needs the same machinery in every crate, so it lives here once:
//!
//! - every run gets a unique marker, an environment variable that every process of
//!   the run inherits, so the test can find the run's processes (orphans included)
//!   in `/proc/*/environ` without knowing how the program starts them;
//! - every run gets its own empty TMPDIR, so whatever the program leaves there is
//!   the run's and no one else's;
//! - every wait has a deadline, so a hang fails the test instead of stalling it.
//!
//! What is particular to one program (its shared-memory names, its server process,
//! the permission bits it promises) stays in that crate's tests.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigHandler, Signal, kill};
use nix::unistd::Pid;

/// Only a hang comes near this: every run of a fault test takes well under a second.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// After a fault, the parent must be gone this soon.
pub const PROMPTLY: Duration = Duration::from_secs(5);
/// The variable that carries a run's marker to every process of the run.
pub const MARKER_VARIABLE: &str = "EXAMPLES_TEST_MARKER";

/// How to start one run: the binary, its arguments, and the environment it gets.
///
/// The binary's path comes from the test file (`env!("CARGO_BIN_EXE_...")` only
/// works there), and so does the name the run's marker starts with.
pub struct Launch {
    command: Command,
    bin: PathBuf,
    marker: String,
    count: usize,
    own_tmpdir: PathBuf,
    tmpdir: Option<PathBuf>,
    /// A TMPDIR inside the run's own, by name (bytes of any kind).
    inner_tmpdir: Option<PathBuf>,
    /// The user the run is started as, if not the test's own.
    user: Option<u32>,
    close_output_after: Option<usize>,
    stdin_piped: bool,
}

impl Launch {
    /// A run of `bin` with `args`; its marker is "`name`-<test pid>-<count>", and
    /// its TMPDIR a fresh directory of that name. EXAMPLES_CHILD_FAULT is removed
    /// from the environment: the fault is the test's choice, not the caller's. So is
    /// RUST_BACKTRACE: a panic then prints its one message, in one write, as in a
    /// learner's terminal; a backtrace takes hundreds of writes, and a parent that
    /// kills its children mid-way would leave a line half-written for its own
    /// `error:` line to be glued onto.
    pub fn new(bin: &str, name: &str, args: &[&str]) -> Launch {
        // Tests of one binary run in threads of one process: the count keeps
        // their markers apart, the pid keeps apart two test processes.
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let marker = format!("{name}-{}-{count}", std::process::id());
        let own_tmpdir = std::env::temp_dir().join(&marker);
        let mut command = Command::new(bin);
        command
            .args(args)
            .env(MARKER_VARIABLE, &marker)
            .env_remove("EXAMPLES_CHILD_FAULT")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Launch {
            command,
            bin: PathBuf::from(bin),
            marker,
            count,
            own_tmpdir,
            tmpdir: None,
            inner_tmpdir: None,
            user: None,
            close_output_after: None,
            stdin_piped: false,
        }
    }

    /// Sets EXAMPLES_CHILD_FAULT (`exit`, `panic` or `sleep`) for the run's
    /// children; None leaves them healthy.
    pub fn child_fault(self, fault: Option<&str>) -> Launch {
        match fault {
            Some(fault) => self.env("EXAMPLES_CHILD_FAULT", fault),
            None => self,
        }
    }

    /// Sets one more variable, e.g. another fault switch.
    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.command.env(key, value);
        self
    }

    /// Removes a variable the test process may have, e.g. another fault switch.
    pub fn env_remove(mut self, key: &str) -> Launch {
        self.command.env_remove(key);
        self
    }

    /// Names the run's own TMPDIR "`prefix`-<test pid>-<count>" instead of after
    /// the marker: a program that makes Unix sockets in TMPDIR needs a short path,
    /// as a socket's path must fit in 108 bytes.
    pub fn short_tmpdir(mut self, prefix: &str) -> Launch {
        let name = format!("{prefix}-{}-{}", std::process::id(), self.count);
        self.own_tmpdir = std::env::temp_dir().join(name);
        self
    }

    /// `tmpdir`: a TMPDIR of the test's choosing (to see how the program takes a bad
    /// one), not checked afterwards; None: the run's own, fresh and empty, checked.
    pub fn tmpdir(mut self, tmpdir: Option<&str>) -> Launch {
        self.tmpdir = tmpdir.map(PathBuf::from);
        self
    }

    /// TMPDIR becomes `name` inside the run's own TMPDIR, made at the start: any
    /// bytes but NUL (a newline, a byte that is not UTF-8), a '/' making directories
    /// inside directories. What the run leaves is looked for there.
    pub fn tmpdir_named(mut self, name: &[u8]) -> Launch {
        self.inner_tmpdir = Some(PathBuf::from(std::ffi::OsStr::from_bytes(name)));
        self
    }

    /// Changes the command before it starts (its working directory, its standard
    /// output, something to do before `exec`).
    pub fn configure(mut self, change: impl FnOnce(&mut Command)) -> Launch {
        change(&mut self.command);
        self
    }

    /// Runs the program with at most `processes` processes and threads for its user
    /// (RLIMIT_NPROC, `ulimit -u`). The kernel does not enforce that limit for root,
    /// so a test run as root starts the program as a user id that no process has,
    /// which gets the run's TMPDIR. None where this cannot be done: the tests do not
    /// run as root, or that user could not reach the binary.
    pub fn with_process_limit(mut self, processes: u64) -> Option<Launch> {
        use nix::sys::resource::{Resource, setrlimit};
        use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
        if !nix::unistd::geteuid().is_root() || !reachable_by_anyone(&self.bin) {
            return None;
        }
        // A user id of its own for each run: nobody else's processes count.
        let id = 2_000_000_000 + (std::process::id() % 100_000) * 100 + self.count as u32 % 100;
        self.user = Some(id);
        // SAFETY: this runs in the forked child before exec; setrlimit, setgroups,
        // setgid and setuid are system calls that allocate nothing.
        unsafe {
            self.command.pre_exec(move || {
                setrlimit(Resource::RLIMIT_NPROC, processes, processes)?;
                setgroups(&[])?;
                setgid(Gid::from_raw(id))?;
                setuid(Uid::from_raw(id))?;
                Ok(())
            });
        }
        Some(self)
    }

    /// Runs the program with a /dev/shm of its own that holds only `size` (a tmpfs
    /// size, "64k"), in a mount namespace of its own: a full /dev/shm without filling
    /// the machine's. None where mount namespaces are not allowed (not root).
    pub fn with_small_dev_shm(mut self, size: &'static std::ffi::CStr) -> Option<Launch> {
        use nix::mount::{MsFlags, mount};
        use nix::sched::{CloneFlags, unshare};
        let own_dev_shm = move || -> nix::Result<()> {
            unshare(CloneFlags::CLONE_NEWNS)?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            mount(Some("tmpfs"), "/dev/shm", Some("tmpfs"), MsFlags::empty(), Some(size))
        };
        // Tried first on a program that does nothing, to learn whether it is allowed.
        let mut probe = Command::new("/bin/true");
        // SAFETY: the closure runs in the forked child before exec, where only
        // async-signal-safe work is allowed: unshare and mount are system calls, and
        // nix passes these short paths on the stack, allocating nothing.
        unsafe { probe.pre_exec(move || Ok(own_dev_shm()?)) };
        if !probe.status().is_ok_and(|status| status.success()) {
            return None;
        }
        // SAFETY: as for the probe above: system calls only, nothing allocated.
        unsafe { self.command.pre_exec(move || Ok(own_dev_shm()?)) };
        Some(self)
    }

    /// Gives the program the default action for SIGINT and SIGTERM. A test run
    /// started in the background by a script (`cargo test &`) ignores SIGINT, and so
    /// would a program that keeps the default action: this gives the default back,
    /// as a program started from a terminal has it.
    pub fn default_signals(mut self) -> Launch {
        // SAFETY: this runs in the forked child before exec; `signal` (sigaction) is
        // async-signal-safe, and nothing is allocated.
        unsafe {
            self.command.pre_exec(|| {
                for signal in [Signal::SIGINT, Signal::SIGTERM] {
                    nix::sys::signal::signal(signal, SigHandler::SigDfl)?;
                }
                Ok(())
            });
        }
        self
    }

    /// Reads only the first `lines` lines of the program's standard output, then
    /// closes it, as `| head -n LINES` does: the program's next write finds nobody
    /// reading.
    pub fn close_output_after(mut self, lines: usize) -> Launch {
        self.close_output_after = Some(lines);
        self
    }

    /// Denies the program the `ptrace` system call, with the seccomp filter some
    /// containers have: `--trace` then cannot trace, and must say so.
    pub fn deny_ptrace(mut self) -> Launch {
        use nix::libc::{self, sock_filter};
        // SAFETY: this runs in the forked child before exec. prctl is
        // async-signal-safe; the filter is read by the kernel during the call, while
        // it is alive on this stack, and nothing is allocated.
        unsafe {
            self.command.pre_exec(|| {
                let op =
                    |code: u32, k: u32, jf: u8| sock_filter { code: code as u16, jt: 0, jf, k };
                let filter = [
                    op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0), // the call's number
                    op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, libc::SYS_ptrace as u32, 1),
                    op(
                        libc::BPF_RET | libc::BPF_K,
                        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
                        0,
                    ),
                    op(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0),
                ];
                let program = libc::sock_fprog {
                    len: filter.len() as u16,
                    filter: filter.as_ptr() as *mut sock_filter,
                };
                let filter_on = libc::SECCOMP_MODE_FILTER as libc::c_ulong;
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(libc::PR_SET_SECCOMP, filter_on, &program) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self
    }

    /// Gives the program a standard input the test writes to ([`Run::type_line`]),
    /// as a learner types into the terminal.
    pub fn stdin_piped(mut self) -> Launch {
        self.stdin_piped = true;
        self.command.stdin(Stdio::piped());
        self
    }

    /// Starts the run, with its stdout read line by line as it arrives (so a test
    /// can wait for a line) and its stderr read whole.
    pub fn start(mut self) -> Run {
        std::fs::create_dir_all(&self.own_tmpdir).unwrap();
        let checked = match &self.inner_tmpdir {
            Some(inner) => self.own_tmpdir.join(inner),
            None => self.own_tmpdir.clone(),
        };
        std::fs::create_dir_all(&checked).unwrap();
        if let Some(user) = self.user {
            for dir in checked.ancestors().take_while(|dir| dir.starts_with(&self.own_tmpdir)) {
                std::os::unix::fs::chown(dir, Some(user), Some(user)).unwrap();
            }
        }
        self.command.env("TMPDIR", self.tmpdir.as_ref().unwrap_or(&checked));
        let mut process = self.command.spawn().expect("the program starts");
        let (sender, lines) = mpsc::channel();
        let most = self.close_output_after.unwrap_or(usize::MAX);
        if let Some(stdout) = process.stdout.take() {
            thread::spawn(move || {
                // Returning drops the reader: with `close_output_after`, the pipe closes.
                for line in BufReader::new(stdout).lines().map_while(Result::ok).take(most) {
                    let _ = sender.send(line);
                }
            });
        }
        let mut stderr = process.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Run {
            marker: self.marker,
            tmpdir: checked,
            own_tmpdir: self.own_tmpdir,
            process,
            lines,
            stdout: Vec::new(),
            stderr,
            started: Instant::now(),
            fault_at: None,
        }
    }
}

/// One run of the program, with its output arriving line by line.
pub struct Run {
    marker: String,
    /// Where TMPDIR points (unless the test chose one), checked at the end.
    tmpdir: PathBuf,
    /// The run's own directory, removed at the end.
    own_tmpdir: PathBuf,
    process: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: JoinHandle<String>,
    started: Instant,
    fault_at: Option<Instant>,
}

/// How a run ended, once nothing of it was left.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The pid of the parent, the process the test started.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The marker every process of the run has in its environment.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The run's TMPDIR, to look at what the program keeps there mid-run.
    pub fn tmpdir(&self) -> &Path {
        &self.tmpdir
    }

    /// Types `line` and Enter on the program's standard input (see
    /// [`Launch::stdin_piped`]).
    pub fn type_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.process.stdin.as_mut().expect("started with stdin_piped");
        stdin.write_all(format!("{line}\n").as_bytes()).expect("the program reads its input");
    }

    /// The lines of standard output read so far.
    pub fn lines_so_far(&self) -> &[String] {
        &self.stdout
    }

    /// Reads stdout until a line contains `needle`: the way to know the program
    /// reached a point of its scene before the test hurts it there.
    pub fn wait_for_line(&mut self, needle: &str) {
        while self.started.elapsed() < DEADLINE {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(50)) {
                let found = line.contains(needle);
                self.stdout.push(line);
                if found {
                    return;
                }
            }
        }
        self.kill_everything();
        panic!("no line with {needle:?}; saw {:?}", self.stdout);
    }

    /// Waits until at least `count` processes of the run pass `keep`, and returns
    /// them: a child can be killed only once it exists. `what` names them in the
    /// message of a run where they never came.
    pub fn wait_for_processes(
        &self,
        count: usize,
        what: &str,
        keep: impl Fn(i32) -> bool,
    ) -> Vec<i32> {
        loop {
            let found: Vec<i32> =
                processes_with(&self.marker).into_iter().filter(|&pid| keep(pid)).collect();
            if found.len() >= count {
                return found;
            }
            assert!(self.started.elapsed() < DEADLINE, "{what} never started");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the run has `count` children (its processes other than the
    /// parent); returns their pids.
    pub fn children(&self, count: usize) -> Vec<i32> {
        let parent = self.process.id() as i32;
        self.wait_for_processes(count, "the children", |pid| pid != parent)
    }

    /// The pid of the child, in a run with one: waits for it to appear.
    pub fn child_pid(&self) -> i32 {
        self.children(1)[0]
    }

    /// For the programs that talk through ipc-channel: waits until every process
    /// started so far has connected. Its socket directory (a `.tmp*` directory in
    /// the run's own directory in TMPDIR), made before it was started, is gone once
    /// it has, so none left means all have.
    pub fn wait_until_connected(&self) {
        let sockets_waiting = || {
            let run_dirs = std::fs::read_dir(&self.tmpdir).unwrap().flatten();
            run_dirs
                .filter_map(|dir| std::fs::read_dir(dir.path()).ok())
                .flatten()
                .flatten()
                .any(|entry| entry.file_name().to_string_lossy().starts_with(".tmp"))
        };
        while sockets_waiting() {
            assert!(self.started.elapsed() < DEADLINE, "a child never connected");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills one process of the run with SIGKILL; from now on the parent has
    /// `PROMPTLY` to notice and end.
    pub fn kill_child(&mut self, pid: i32) {
        self.fault_at = Some(Instant::now());
        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    }

    /// Sends `signal` to the parent; from now on it has `PROMPTLY` to end.
    pub fn signal_parent(&mut self, signal: Signal) {
        self.fault_at = Some(Instant::now());
        kill(Pid::from_raw(self.process.id() as i32), signal).unwrap();
    }

    /// Kills every process of the run: a failed test must not leave them behind
    /// either.
    pub fn kill_everything(&mut self) {
        for pid in every_process_with(&self.marker) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// Waits for the parent, promptly after a fault, then checks that nothing of
    /// the run is left: no process (orphans included) and nothing in TMPDIR.
    pub fn finish(self) -> Outcome {
        let (outcome, left) = self.finish_and_list();
        assert!(left.is_empty(), "left in TMPDIR: {left:?}");
        outcome
    }

    /// The same, but returns what is left in TMPDIR, with its permission bits (and
    /// then removes it), for the cases where the test expects something there.
    pub fn finish_and_list(mut self) -> (Outcome, Vec<(PathBuf, u32)>) {
        let status = loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                break status;
            }
            let late = match self.fault_at {
                Some(at) => at.elapsed() > PROMPTLY,
                None => self.started.elapsed() > DEADLINE,
            };
            if late {
                self.kill_everything();
                panic!("the parent was still running: {:?}", self.stdout);
            }
            thread::sleep(Duration::from_millis(10));
        };
        // Before reading to the end of the output: a survivor holds the pipes open.
        if let Err(left) = nothing_left(&self.marker) {
            self.kill_everything();
            panic!("processes left behind: {left:?}");
        }
        let mut stdout = std::mem::take(&mut self.stdout);
        stdout.extend(self.lines.iter());
        let stderr = self.stderr.join().unwrap();
        let left: Vec<(PathBuf, u32)> = std::fs::read_dir(&self.tmpdir)
            .unwrap()
            .flatten()
            .map(|entry| {
                let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
                (entry.path(), mode)
            })
            .collect();
        let _ = std::fs::remove_dir_all(&self.own_tmpdir);
        let outcome = Outcome { status, stdout: stdout.join("\n"), stderr };
        (outcome, left)
    }
}

/// The processes of the run whose environment holds `marker` (zombies excluded:
/// their environment reads empty): the scene's own processes. This finds a run's
/// processes however they were started, and finds them still after their parent
/// died. Not counted: the run's watchdog, and a process caught between `fork` and
/// `exec` (still a copy of its parent: it is counted once it has become what it
/// was started as, or once a forked child has named itself "child").
pub fn processes_with(marker: &str) -> Vec<i32> {
    marked(marker).into_iter().filter(|process| process.scene).map(|process| process.pid).collect()
}

/// Every process whose environment holds `marker`, the run's watchdog included:
/// what must be gone once the run is over.
pub fn every_process_with(marker: &str) -> Vec<i32> {
    marked(marker).into_iter().map(|process| process.pid).collect()
}

/// The run's watchdog (see `plumbing::watchdog`), once it has started.
pub fn watchdogs_with(marker: &str) -> Vec<i32> {
    marked(marker)
        .into_iter()
        .filter(|process| process.watchdog)
        .map(|process| process.pid)
        .collect()
}

struct Marked {
    pid: i32,
    /// Not the watchdog, and not caught between fork and exec.
    scene: bool,
    watchdog: bool,
}

fn marked(marker: &str) -> Vec<Marked> {
    let needle = format!("{MARKER_VARIABLE}={marker}");
    let read = |pid: &str, what: &str| std::fs::read(format!("/proc/{pid}/{what}")).ok();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<i32>() else {
            continue;
        };
        let Some(environ) = read(&name, "environ") else {
            continue;
        };
        if !environ.split(|&b| b == 0).any(|var| var == needle.as_bytes()) {
            continue;
        }
        let watchdog = read(&name, "comm").is_some_and(|comm| comm == b"watchdog\n");
        let stat = read(&name, "stat").unwrap_or_default();
        let stat = String::from_utf8_lossy(&stat);
        // Field 4, after the name in parentheses (which may hold spaces): the parent.
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        let copy_of_parent = parent.is_some_and(|parent| {
            let named_child = read(&name, "comm").is_some_and(|comm| comm == b"child\n");
            !named_child
                && !watchdog
                && read(&name, "cmdline").is_some_and(|own| read(parent, "cmdline") == Some(own))
        });
        found.push(Marked { pid, scene: !watchdog && !copy_of_parent, watchdog });
    }
    found
}

/// Whether every user may run `bin`: it and each directory above it executable by
/// all.
fn reachable_by_anyone(bin: &Path) -> bool {
    let bin = std::fs::canonicalize(bin).unwrap_or_default();
    bin.ancestors().filter(|path| !path.as_os_str().is_empty()).all(|path| {
        std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o001 != 0)
    })
}

/// Checks that no process has the marker, allowing the kernel a moment to deliver
/// parent-death signals; returns the survivors otherwise.
fn nothing_left(marker: &str) -> Result<(), Vec<i32>> {
    let started = Instant::now();
    loop {
        let left = every_process_with(marker);
        if left.is_empty() {
            return Ok(());
        }
        if started.elapsed() > PROMPTLY {
            return Err(left);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The `verdict:` lines of a run's output, each joined with the lines that continue
/// it (a verdict is wrapped to 80 columns; its further lines start with spaces).
pub fn verdicts(stdout: &str) -> Vec<String> {
    let mut verdicts: Vec<String> = Vec::new();
    let mut in_verdict = false;
    for line in stdout.lines() {
        if line.starts_with("verdict:") {
            verdicts.push(line.to_string());
            in_verdict = true;
        } else if in_verdict && line.starts_with("         ") {
            let last = verdicts.last_mut().expect("a verdict line came first");
            last.push(' ');
            last.push_str(line.trim_start());
        } else {
            in_verdict = false;
        }
    }
    verdicts
}

/// The `error:` lines of stderr: the programs promise exactly one for each failure,
/// so tests count and compare these.
pub fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error:")).collect()
}

/// The program run with `args`, its standard output closed after the first `lines`
/// lines (as `| head -n LINES` does), for each count in `after`: every run must end
/// quietly, with nothing on standard error and nothing left behind. A run that
/// wrote after the close ends with status 141 (128 + SIGPIPE, as the shell reports a
/// tool that a closed pipe stopped); one that had written everything before the
/// reader closed (its last lines waiting in the pipe) ends with 0, as it would under
/// `head` too. After the first line the programs always have more to do, so the
/// first count must give 141: the check cannot pass without the closed pipe at work.
pub fn check_closed_output(bin: &str, name: &str, args: &[&str], after: &[usize]) {
    for (i, &lines) in after.iter().enumerate() {
        let outcome = Launch::new(bin, name, args).close_output_after(lines).start().finish();
        let code = outcome.status.code();
        let what = format!("{args:?} | head -{lines}: {:?}\n{}", outcome.status, outcome.stderr);
        if i == 0 {
            assert_eq!(code, Some(141), "{what}");
        } else {
            assert!(matches!(code, Some(0 | 141)), "{what}");
        }
        assert_eq!(outcome.stderr, "", "{args:?} | head -{lines}");
        assert_eq!(outcome.stdout.split('\n').count(), lines, "{args:?} | head -{lines}");
    }
}

/// The program run with `args` and its standard output on a full device (`>
/// /dev/full`): one line on standard error that says so, status 1, nothing left
/// behind. (The first line the program prints already fails.)
pub fn check_full_output(bin: &str, name: &str, args: &[&str]) {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let outcome = Launch::new(bin, name, args).configure(|command| {
        command.stdout(full);
    });
    let outcome = outcome.start().finish();
    assert_eq!(outcome.status.code(), Some(1), "{args:?} > /dev/full: {}", outcome.stderr);
    let expected = "error: cannot write to standard output: No space left on device (os error 28)";
    assert_eq!(outcome.stderr.lines().collect::<Vec<_>>(), [expected], "{args:?} > /dev/full");
}

/// A run whose TMPDIR is named `odd-\xff` (not UTF-8), which ipc-channel cannot
/// take for a socket's path: one line that names TMPDIR, status 1, nothing left.
/// The same run in a TMPDIR whose name holds a newline goes as usual. (`launch`
/// makes the run in a TMPDIR of the given name.)
pub fn check_tmpdir_not_utf8(launch: impl Fn(&[u8]) -> Run) {
    let run = launch(b"odd-\xff");
    let expected =
        format!("error: TMPDIR {:?} is not UTF-8, which a socket's path must be", run.tmpdir());
    let outcome = run.finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    assert_eq!(error_lines(&outcome.stderr), [expected.as_str()], "{}", outcome.stderr);
    let outcome = launch(b"new\nline").finish();
    assert!(outcome.status.success(), "{}", outcome.stderr);
}

/// `launch` under a limit of 15 processes (`ulimit -u 15`), which its children
/// exceed: one line that says so, status 1, no panic, nothing left. Where the
/// limit cannot be set (not root), the test says so in one line and passes.
pub fn check_process_limit(launch: Launch) {
    let Some(launch) = launch.with_process_limit(15) else {
        eprintln!("skipped: RLIMIT_NPROC can be set for a user of its own only by root");
        return;
    };
    let outcome = launch.start().finish();
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    let errors = error_lines(&outcome.stderr);
    assert_eq!(errors.len(), 1, "{}", outcome.stderr);
    assert!(errors[0].contains("Resource temporarily unavailable"), "{}", errors[0]);
    assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
}

/// The standard output of `launch`, a run with `--trace`, which must succeed; None
/// where strace cannot trace (see [`strace_works`]: the test `test` then passes).
pub fn traced_run(launch: Launch, test: &str) -> Option<String> {
    if !strace_works(test) {
        return None;
    }
    let outcome = launch.start().finish();
    assert_eq!(outcome.status.code(), Some(0), "{}\n{}", outcome.stdout, outcome.stderr);
    Some(outcome.stdout)
}

/// Whether `--trace` can run here: strace is installed and may trace. Where it
/// cannot, the test `test` says so in one line and passes without running, unless
/// EXAMPLES_REQUIRE_STRACE=1 (`.ci/run` sets it): then it fails.
pub fn strace_works(test: &str) -> bool {
    let traced = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "--", "/bin/sh", "-c", ":"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if traced.is_ok_and(|status| status.success()) {
        return true;
    }
    let how = "strace cannot trace here (on Debian: apt install strace)";
    assert!(
        std::env::var("EXAMPLES_REQUIRE_STRACE").as_deref() != Ok("1"),
        "EXAMPLES_REQUIRE_STRACE=1 but {how}"
    );
    eprintln!("skipped {test}: {how}");
    false
}

/// The `--trace` summary of `scene` in a run's standard output: its lines from
/// `trace: SCENE: ...` to `trace: in all: ...`, and the notes after it.
pub fn trace_summary<'a>(stdout: &'a str, scene: &str) -> Vec<&'a str> {
    let heading = format!("trace: {scene}: ");
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines.iter().position(|l| l.starts_with(&heading));
    let start = start.unwrap_or_else(|| panic!("no trace summary of {scene}:\n{stdout}"));
    let end = lines[start..].iter().position(|l| l.starts_with("trace: in all: ")).unwrap();
    let notes = lines[start + end + 1..].iter().take_while(|l| l.starts_with("trace:")).count();
    lines[start..=start + end + notes].to_vec()
}

/// What a summary says of `who` ("parent", "child 2"): its lines, without the label.
pub fn traced<'a>(summary: &[&'a str], who: &str) -> Vec<&'a str> {
    let label = format!("{who}: trace: ");
    summary.iter().filter_map(|line| line.strip_prefix(label.as_str())).collect()
}

/// The bytes a summary line gives, exactly ("write ×2: 160 bytes on fd 4 ...");
/// None for a size in MB or GB, or none.
pub fn bytes_in(line: &str) -> Option<u64> {
    let (before, _) = line.split_once(" bytes")?;
    before.rsplit(' ').next()?.parse().ok()
}

/// One memory line a program printed, with the line after it:
///
/// ```text
/// child: memory: the array's 80 MB: 80 MB shared, 0 MB private,
/// child:   in a shared mapping of /dev/shm/exshm-4711-1a2b3c4d
/// ```
#[derive(Debug)]
pub struct MemoryLine {
    pub shared_mb: u64,
    pub private_mb: u64,
    /// The second line, after "in ": the kind of mapping.
    pub mapping: String,
}

/// The memory lines of `who` (e.g. "child", "parent"), in the order printed.
pub fn memory_lines(stdout: &str, who: &str) -> Vec<MemoryLine> {
    let prefix = format!("{who}: memory: the array's ");
    let kind_prefix = format!("{who}:   in ");
    let lines: Vec<&str> = stdout.lines().collect();
    let mut found = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix(&prefix) else { continue };
        if rest.contains("too small to tell") {
            continue;
        }
        let number = |after: &str, before: &str| -> u64 {
            let start = rest.find(after).expect("the field") + after.len();
            let tail = &rest[start..];
            tail[..tail.find(before).expect("the unit")].trim().parse().expect("a number")
        };
        let next = lines.get(at + 1).copied().unwrap_or_default();
        found.push(MemoryLine {
            shared_mb: number(": ", " MB shared"),
            private_mb: number("shared, ", " MB private"),
            mapping: next.strip_prefix(&kind_prefix).unwrap_or_default().to_owned(),
        });
    }
    found
}

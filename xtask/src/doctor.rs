//! `cargo xtask doctor`: before a workshop day, whether this machine can run every
//! scene at the tutorial's sizes, one line per check, and what to do about each
//! thing missing.
//!
//! The sizes are the programs' own: [`SCENES`] lists every scene with its default
//! `--n` and the number of arrays the program itself checks for before it
//! allocates, each row with the source text it was read from, and a test fails when
//! that text is no longer in the program.

use std::path::Path;

use anyhow::Result;
use plumbing::show::size;

use crate::{command_output, workspace_root};

/// Where a scene's array has a file, besides memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum File {
    /// A named POSIX shared-memory segment: a file in /dev/shm.
    DevShm,
    /// A file in TMPDIR.
    TmpDir,
}

/// One scene at the tutorial's size.
#[derive(Debug)]
struct Scene {
    program: &'static str,
    scene: &'static str,
    /// The default `--n`: the side of an (n, n) array when `square`, else its length.
    n: u64,
    square: bool,
    /// Bytes per value: 8 for f64, 4 for f32.
    element: u64,
    /// Arrays held in memory at once, as the program counts them in its own check.
    arrays: u64,
    /// Who holds them.
    holders: &'static str,
    file: Option<File>,
    /// Source text in the program's `src/` that fixes `n` and `arrays` (whitespace
    /// is not compared); a test checks that it is there.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by a test"))]
    declared: &'static [&'static str],
}

impl Scene {
    fn array_bytes(&self) -> u64 {
        self.n * if self.square { self.n } else { 1 } * self.element
    }

    fn memory_bytes(&self) -> u64 {
        self.array_bytes() * self.arrays
    }

    /// The largest `--n` (two significant digits) whose arrays fit in `bytes`,
    /// holding `copies` arrays of `self.element`-byte values.
    fn largest_n(&self, bytes: u64, copies: u64) -> u64 {
        let values = bytes / (copies * self.element);
        let n = if self.square { values.isqrt() } else { values };
        two_digits(n)
    }

    fn command(&self, n: u64) -> String {
        format!("cargo run -p {} -- {} --n {n}", self.program, self.scene)
    }
}

/// Every scene of every program, at its default size. The memory is what the
/// program itself refuses to start without (its `check_memory` / `checked_shape` /
/// `array_len` calls).
const SCENES: &[Scene] = &[
    Scene {
        program: "examples-argument",
        scene: "argument",
        n: 10_000,
        square: true,
        element: 8,
        arrays: 2,
        holders: "the parent's and the child's",
        file: None,
        declared: &["const TUTORIAL_N: u64 = 10_000;", "checked_shape(n, 2)"],
    },
    Scene {
        program: "examples-argument",
        scene: "inherit",
        n: 10_000,
        square: true,
        element: 8,
        arrays: 2,
        holders: "the parent's, and the child's once it has written every page",
        file: None,
        declared: &["const TUTORIAL_N: u64 = 10_000;", "checked_shape(n, 2)"],
    },
    Scene {
        program: "examples-pipe",
        scene: "pipe",
        n: 10_000,
        square: true,
        element: 8,
        arrays: 2,
        holders: "the child's and the parent's",
        file: None,
        declared: &[
            "checked_side(cli.n.unwrap_or(10_000))",
            "memory::array_len(n, n.checked_mul(n), size_of::<f64>(), 2, \"the child's and the parent's\")",
        ],
    },
    Scene {
        program: "examples-queue",
        scene: "queue",
        n: 1000,
        square: true,
        element: 8,
        arrays: 2,
        holders: "the child's and the parent's",
        file: None,
        declared: &[
            "let (n, producers) = (cli.n.unwrap_or(1000), cli.producers.unwrap_or(4));",
            "checked_side(n, 2,",
        ],
    },
    Scene {
        program: "examples-queue",
        scene: "argument-and-queue",
        n: 1000,
        square: true,
        element: 8,
        arrays: 2 + 1,
        holders: "the parent's, the child's and the one sent back",
        file: None,
        declared: &[
            "let (n, producers) = (cli.n.unwrap_or(1000), cli.producers.unwrap_or(4));",
            "checked_side(n, 3, holders)",
        ],
    },
    Scene {
        program: "examples-queue",
        scene: "many-producers",
        n: 1000,
        square: true,
        element: 8,
        arrays: 4 + 1,
        holders: "one per producer, and the parent's",
        file: None,
        declared: &[
            "let (n, producers) = (cli.n.unwrap_or(1000), cli.producers.unwrap_or(4));",
            "checked_side(n, u64::from(producers) + 1, holders)",
        ],
    },
    Scene {
        program: "examples-mmap",
        scene: "one-child",
        n: 1000,
        square: false,
        element: 4,
        arrays: 1,
        holders: "the file's pages",
        file: Some(File::TmpDir),
        declared: &["if self.has_one_child() { 1000 } else { 100_000_000 }"],
    },
    Scene {
        program: "examples-mmap",
        scene: "many-children",
        n: 100_000_000,
        square: false,
        element: 4,
        arrays: 1,
        holders: "the file's pages",
        file: Some(File::TmpDir),
        declared: &[
            "if self.has_one_child() { 1000 } else { 100_000_000 }",
            "place.check_room(n_for(scene), u64::from(scene == Scene::CopyOnWrite))",
        ],
    },
    Scene {
        program: "examples-mmap",
        scene: "many-children-locked",
        n: 100_000_000,
        square: false,
        element: 4,
        arrays: 1,
        holders: "the file's pages",
        file: Some(File::TmpDir),
        declared: &[
            "if self.has_one_child() { 1000 } else { 100_000_000 }",
            "place.check_room(n_for(scene), u64::from(scene == Scene::CopyOnWrite))",
        ],
    },
    Scene {
        program: "examples-mmap",
        scene: "copy-on-write",
        n: 1000,
        square: false,
        element: 4,
        arrays: 2,
        holders: "the file's pages and the child's private copy",
        file: Some(File::TmpDir),
        declared: &[
            "if self.has_one_child() { 1000 } else { 100_000_000 }",
            "memory::array_len(n, Some(n), size_of::<f32>(), 1 + private_copies, holders)",
        ],
    },
    Scene {
        program: "examples-shm",
        scene: "named",
        n: 100_000_000,
        square: false,
        element: 8,
        arrays: 1,
        holders: "the segment's pages",
        file: Some(File::DevShm),
        declared: &[
            "const TUTORIAL_N: u64 = 100_000_000;",
            "let arrays = if scene == Scene::CopyIn { 2 } else { 1 };",
        ],
    },
    Scene {
        program: "examples-shm",
        scene: "anonymous",
        n: 100_000_000,
        square: false,
        element: 8,
        arrays: 1,
        holders: "the shared mapping",
        file: None,
        declared: &[
            "const TUTORIAL_N: u64 = 100_000_000;",
            "let arrays = if scene == Scene::CopyIn { 2 } else { 1 };",
        ],
    },
    Scene {
        program: "examples-shm",
        scene: "copy-in",
        n: 100_000_000,
        square: false,
        element: 8,
        arrays: 2,
        holders: "the original and the shared copy",
        file: None,
        declared: &[
            "const TUTORIAL_N: u64 = 100_000_000;",
            "let arrays = if scene == Scene::CopyIn { 2 } else { 1 };",
        ],
    },
    Scene {
        program: "examples-manager",
        scene: "hosted-sum",
        n: 50_000_000,
        square: false,
        element: 8,
        arrays: 2,
        holders: "the server's and the parent's copy",
        file: None,
        declared: &["const HOSTED_SUM_N: u64 = 50_000_000;", "array_len(n, HOSTED_SUM_N, 2)"],
    },
    Scene {
        program: "examples-manager",
        scene: "child-proxy",
        n: 100_000_000,
        square: false,
        element: 8,
        arrays: 1,
        holders: "the server's",
        file: None,
        declared: &["const N: u64 = 100_000_000;", "child_proxy::parent(array_len(n, N, 1)?)"],
    },
    Scene {
        program: "examples-manager",
        scene: "attribute",
        n: 100_000_000,
        square: false,
        element: 8,
        arrays: 1,
        holders: "the server's",
        file: None,
        declared: &["const N: u64 = 100_000_000;", "attribute::parent(array_len(n, N, 1)?)"],
    },
    Scene {
        program: "examples-manager",
        scene: "slice",
        n: 100_000_000,
        square: false,
        element: 8,
        arrays: 1,
        holders: "the server's",
        file: None,
        declared: &["const N: u64 = 100_000_000;", "slice::parent(array_len(n, N, 1)?)"],
    },
    Scene {
        program: "examples-manager",
        scene: "mutate",
        n: 100_000_000,
        square: false,
        element: 8,
        arrays: 1,
        holders: "the server's",
        file: None,
        declared: &["const N: u64 = 100_000_000;", "mutate::parent(array_len(n, N, 1)?,"],
    },
];

/// ipc-channel's socket path is TMPDIR plus 18 bytes, and a Unix socket's address
/// holds 107: examples-queue and examples-manager refuse a longer TMPDIR.
const LONGEST_TMPDIR: usize = 76;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Missing,
    /// Optional: reported, never a failure.
    Note,
}

/// One line of the report, and indented lines under it.
#[derive(Debug)]
struct Finding {
    status: Status,
    what: &'static str,
    text: String,
    details: Vec<String>,
}

impl Finding {
    fn new(status: Status, what: &'static str, text: impl Into<String>) -> Finding {
        Finding { status, what, text: text.into(), details: Vec::new() }
    }

    fn print(&self) {
        let status = match self.status {
            Status::Ok => "ok",
            Status::Missing => "MISSING",
            Status::Note => "note",
        };
        // Wrapped to 80 columns, as the programs print, each further line indented.
        let mut lines = wrap(&format!("{status:<7} {}:", self.what), 8, &self.text);
        for detail in &self.details {
            lines.extend(wrap(&" ".repeat(9), 12, detail));
        }
        println!("{}", lines.join("\n"));
    }
}

/// `head` and the words of `text`, in lines of at most 80 columns (a word longer
/// than a line gets one of its own), the further lines indented by `indent`.
fn wrap(head: &str, indent: usize, text: &str) -> Vec<String> {
    let mut lines = vec![head.to_string()];
    for word in text.split(' ') {
        let last = lines.last().expect("one line at least");
        if last.len() + 1 + word.len() > 80 && !last.trim().is_empty() {
            lines.push(" ".repeat(indent - 1));
        }
        let last = lines.last_mut().expect("one line at least");
        last.push(' ');
        last.push_str(word);
    }
    lines
}

/// Runs every check and prints one line each; true when no required one failed.
pub fn run() -> Result<bool> {
    let root = workspace_root()?;
    let findings = [
        linux(),
        dev_shm(Path::new("/dev/shm")),
        memory(plumbing::memory::available()),
        tmpdir(&std::env::temp_dir()),
        rust(&root),
        python(),
        strace(),
    ];
    for finding in &findings {
        finding.print();
    }
    let missing = findings.iter().filter(|f| f.status == Status::Missing).count();
    if missing == 0 {
        println!("doctor: ready: every scene can run at the tutorial's sizes");
    } else {
        let checks = if missing == 1 { "check" } else { "checks" };
        println!("doctor: not ready: {missing} required {checks} failed (MISSING above)");
    }
    Ok(missing == 0)
}

fn linux() -> Finding {
    const USES: &str = "fork, POSIX shared memory, /proc and PR_SET_PDEATHSIG";
    if cfg!(target_os = "linux") && Path::new("/proc/self/status").exists() {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Finding::new(
            Status::Ok,
            "linux",
            format!("Linux {} (the programs use {USES})", release.trim()),
        )
    } else if cfg!(target_os = "linux") {
        Finding::new(
            Status::Missing,
            "linux",
            format!("/proc is not mounted; the programs use {USES}: mount proc, or use a Linux VM"),
        )
    } else {
        Finding::new(
            Status::Missing,
            "linux",
            format!(
                "this is {}, not Linux; the programs use {USES}: use a Linux VM or container",
                std::env::consts::OS
            ),
        )
    }
}

/// Bytes free to this user on the file system that holds `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let disk = nix::sys::statvfs::statvfs(dir).ok()?;
    // Both are u64 on Linux, narrower elsewhere.
    Some(disk.blocks_available() as u64 * disk.fragment_size() as u64)
}

/// The first scene with the largest file of kind `file`, and the names of every
/// scene with a file that large: "examples-mmap many-children, many-children-locked".
fn largest_file(file: File) -> (&'static Scene, String) {
    let with_file = || SCENES.iter().filter(move |s| s.file == Some(file));
    let largest = with_file().map(Scene::array_bytes).max().expect("a scene makes such a file");
    let scenes = || with_file().filter(move |s| s.array_bytes() == largest);
    (scenes().next().expect("one is largest"), names(scenes()))
}

/// "examples-argument argument, inherit; examples-pipe pipe".
fn names<'a>(scenes: impl Iterator<Item = &'a Scene>) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for scene in scenes {
        match groups.last_mut() {
            Some((program, names)) if *program == scene.program => names.push(scene.scene),
            _ => groups.push((scene.program, vec![scene.scene])),
        }
    }
    let groups: Vec<String> =
        groups.iter().map(|(program, names)| format!("{program} {}", names.join(", "))).collect();
    groups.join("; ")
}

fn dev_shm(dir: &Path) -> Finding {
    let (scene, makers) = largest_file(File::DevShm);
    let needed = scene.array_bytes();
    let what = format!("{makers} makes a segment of {} there", size(needed));
    let Some(free) = dir.is_dir().then(|| free_bytes(dir)).flatten() else {
        return Finding::new(
            Status::Missing,
            "/dev/shm",
            format!(
                "{} is missing, and {what} (POSIX shared memory): mount a tmpfs there, or use a Linux VM or container",
                dir.display()
            ),
        );
    };
    if free >= needed {
        return Finding::new(Status::Ok, "/dev/shm", format!("{} free; {what}", size(free)));
    }
    let mut finding =
        Finding::new(Status::Missing, "/dev/shm", format!("only {} free, but {what}", size(free)));
    finding.details = vec![
        "a container's /dev/shm is 64 MB unless it is started with a larger --shm-size, e.g. `docker run --shm-size=2g ...`".into(),
        format!("or run it smaller: `{}`", scene.command(scene.largest_n(free, 1))),
    ];
    finding
}

fn memory(available: Option<u64>) -> Finding {
    let largest = SCENES.iter().map(Scene::memory_bytes).max().unwrap_or(0);
    let Some(available) = available else {
        return Finding::new(
            Status::Missing,
            "memory",
            "cannot read MemAvailable in /proc/meminfo (is this Linux?)",
        );
    };
    if available >= largest {
        let biggest = names(SCENES.iter().filter(|s| s.memory_bytes() == largest));
        return Finding::new(
            Status::Ok,
            "memory",
            format!(
                "{} available; the most any scene holds at once is {} ({})",
                size(available),
                size(largest),
                biggest
            ),
        );
    }
    let short: Vec<&Scene> = SCENES.iter().filter(|s| s.memory_bytes() > available).collect();
    let mut finding = Finding::new(
        Status::Missing,
        "memory",
        format!(
            "{} available, but {} of the {} scenes need more at the tutorial's sizes:",
            size(available),
            short.len(),
            SCENES.len()
        ),
    );
    for scene in short {
        let n = scene.largest_n(available, scene.arrays);
        let advice = if n == 0 {
            "close other programs first".to_string()
        } else {
            format!("try `{}`", scene.command(n))
        };
        finding.details.push(format!(
            "{} {}: {} ({} arrays of {}: {}); {advice}",
            scene.program,
            scene.scene,
            size(scene.memory_bytes()),
            scene.arrays,
            size(scene.array_bytes()),
            scene.holders
        ));
    }
    finding
}

fn tmpdir(dir: &Path) -> Finding {
    let shown = dir.display();
    let length = dir.as_os_str().len();
    let mut problems = Vec::new();
    if length > LONGEST_TMPDIR {
        problems.push(format!(
            "its path is {length} bytes; examples-queue and examples-manager make Unix sockets in it and need one of at most {LONGEST_TMPDIR}: use a shorter TMPDIR, e.g. TMPDIR=/tmp"
        ));
    }
    let (scene, makers) = largest_file(File::TmpDir);
    let needed = scene.array_bytes();
    let mut free = None;
    if !dir.is_dir() {
        problems.push(format!(
            "it is not a directory; examples-mmap puts its file there and ipc-channel its sockets: `mkdir -p {shown}`, or unset TMPDIR to use /tmp"
        ));
    } else if let Err(err) = probe_write(dir) {
        problems.push(format!(
            "cannot write in it ({err}); examples-mmap puts its file there and ipc-channel its sockets: point TMPDIR at a directory of yours"
        ));
    } else {
        free = free_bytes(dir);
        if let Some(free) = free.filter(|&free| free < needed) {
            problems.push(format!(
                "only {} free, but {makers} make a file of {} there: free some space, point TMPDIR elsewhere, or run `{}`",
                size(free),
                size(needed),
                scene.command(scene.largest_n(free, 1))
            ));
        }
    }
    if problems.is_empty() {
        let free = free.map_or("unknown room".to_string(), |free| format!("{} free", size(free)));
        return Finding::new(
            Status::Ok,
            "TMPDIR",
            format!(
                "{shown} is writable, {free} ({makers} make a file of {}), {length} bytes long (Unix sockets need at most {LONGEST_TMPDIR})",
                size(needed)
            ),
        );
    }
    let mut finding =
        Finding::new(Status::Missing, "TMPDIR", format!("{shown}: {}", problems.remove(0)));
    finding.details = problems;
    finding
}

/// Creates and removes a file in `dir`.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".xtask-doctor-{}", std::process::id()));
    std::fs::File::create_new(&probe)?;
    std::fs::remove_file(&probe)
}

fn rust(root: &Path) -> Finding {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let wanted = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version"))
        .map(|rest| rest.trim_start_matches([' ', '=']).trim().trim_matches('"').to_string());
    let Some(wanted) = wanted else {
        return Finding::new(Status::Missing, "rust", "Cargo.toml names no rust-version");
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Some(found) = command_output(&rustc, &["--version"]) else {
        return Finding::new(
            Status::Missing,
            "rust",
            format!("`{rustc} --version` does not run; install Rust {wanted} or newer with rustup"),
        );
    };
    let have = found.split_whitespace().nth(1).unwrap_or_default();
    if version(have) >= version(&wanted) {
        Finding::new(Status::Ok, "rust", format!("{found}; the workspace needs {wanted} or newer"))
    } else {
        Finding::new(
            Status::Missing,
            "rust",
            format!("{found}, but the workspace needs {wanted} or newer: `rustup update stable`"),
        )
    }
}

/// "1.89" -> [1, 89, 0]; "1.95.0-nightly" -> [1, 95, 0].
fn version(text: &str) -> [u64; 3] {
    let mut parts = text.split(['.', '-']).map(|p| p.parse::<u64>().unwrap_or(0));
    [0; 3].map(|_| parts.next().unwrap_or(0))
}

fn python() -> Finding {
    const HOW: &str = "python3 -m venv .venv && .venv/bin/pip install -r docs/python/requirements.txt, then export EXAMPLES_PYTHON=$PWD/.venv/bin/python";
    let python = std::env::var("EXAMPLES_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys, numpy; print(sys.version.split()[0], numpy.__version__)";
    if let Some(found) = command_output(&python, &["-c", script]) {
        let (version, numpy) = found.split_once(' ').unwrap_or((&found, "?"));
        return Finding::new(
            Status::Ok,
            "python",
            format!("{python}: Python {version} with numpy {numpy}, for the Python parts"),
        );
    }
    let why = match command_output(&python, &["--version"]) {
        Some(version) => format!("{python} ({version}) has no numpy"),
        None => format!("no {python} to run"),
    };
    Finding::new(
        Status::Note,
        "python",
        format!("{why}; only the Python parts need it (optional). For them: {HOW}"),
    )
}

/// strace, which `--trace` runs (optional): whether it is there and may trace.
fn strace() -> Finding {
    const HOW: &str = "only --trace needs it (optional). For it, on Debian: apt install strace";
    let Some(version) = command_output("strace", &["-V"]) else {
        return Finding::new(Status::Note, "strace", format!("not installed; {HOW}"));
    };
    let version = version.lines().next().unwrap_or_default().replace(" -- version", "");
    let probe = ["-f", "-qq", "-o", "/dev/null", "--", "/bin/sh", "-c", ":"];
    if command_output("strace", &probe).is_none() {
        let why = "but this machine does not allow ptrace, so --trace cannot run (optional)";
        return Finding::new(Status::Note, "strace", format!("{version} is installed, {why}"));
    }
    Finding::new(Status::Ok, "strace", format!("{version}, for --trace"))
}

/// Rounded down to two significant digits: 8944 -> 8900.
fn two_digits(n: u64) -> u64 {
    let mut unit = 1;
    while n / unit >= 100 {
        unit *= 10;
    }
    n / unit * unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_declared_in_its_program() {
        let root = workspace_root().unwrap();
        let squeeze = |text: &str| text.split_whitespace().collect::<String>();
        let mut problems = Vec::new();
        for scene in SCENES {
            let source = rust_sources(&root.join(scene.program).join("src"));
            for text in scene.declared {
                if !squeeze(&source).contains(&squeeze(text)) {
                    problems.push(format!(
                        "{} {}: `{text}` is not in {}/src: check the scene's n and arrays in SCENES",
                        scene.program, scene.scene, scene.program
                    ));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    fn rust_sources(dir: &Path) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                text += &rust_sources(&path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                text += &std::fs::read_to_string(&path).unwrap();
            }
        }
        text
    }

    #[test]
    fn the_largest_scenes_hold_two_800_mb_arrays() {
        let largest = SCENES.iter().map(Scene::memory_bytes).max().unwrap();
        assert_eq!(largest, 1_600_000_000);
        let (named, makers) = largest_file(File::DevShm);
        assert_eq!((named.array_bytes(), makers.as_str()), (800_000_000, "examples-shm named"));
        let (file, makers) = largest_file(File::TmpDir);
        assert_eq!(file.array_bytes(), 400_000_000);
        assert_eq!(makers, "examples-mmap many-children, many-children-locked");
    }

    #[test]
    fn plenty_of_memory_is_ok() {
        let finding = memory(Some(24_000_000_000));
        assert_eq!(finding.status, Status::Ok);
        assert!(finding.text.contains("1.6 GB"), "{}", finding.text);
        assert!(finding.text.contains("examples-argument argument, inherit"), "{}", finding.text);
    }

    #[test]
    fn short_memory_names_the_scenes_and_a_smaller_n() {
        let finding = memory(Some(1_000_000_000));
        assert_eq!(finding.status, Status::Missing);
        // argument, inherit, pipe and copy-in need 1.6 GB; nothing else more than 800 MB.
        assert_eq!(finding.details.len(), 4, "{:#?}", finding.details);
        // sqrt(1e9 / 16) = 7905 -> 7900
        assert!(
            finding.details[0].contains("`cargo run -p examples-argument -- argument --n 7900`"),
            "{}",
            finding.details[0]
        );
        // 1e9 / 16 = 62,500,000
        assert!(
            finding.details[3].contains("`cargo run -p examples-shm -- copy-in --n 62000000`"),
            "{}",
            finding.details[3]
        );
        assert_eq!(memory(None).status, Status::Missing);
    }

    #[test]
    fn a_missing_or_long_tmpdir_is_missing() {
        let finding = tmpdir(Path::new("/no/such/directory"));
        assert_eq!(finding.status, Status::Missing);
        assert!(finding.text.contains("not a directory"), "{}", finding.text);
        let long = format!("/tmp/{}", "x".repeat(90));
        let finding = tmpdir(Path::new(&long));
        assert_eq!(finding.status, Status::Missing);
        assert!(finding.text.contains("95 bytes"), "{}", finding.text);
    }

    #[test]
    fn a_missing_dev_shm_is_missing() {
        assert_eq!(dev_shm(Path::new("/no/such/shm")).status, Status::Missing);
    }

    #[test]
    fn numbers_read_plainly() {
        assert_eq!(two_digits(7905), 7900);
        assert_eq!(two_digits(62_500_000), 62_000_000);
        assert_eq!(two_digits(42), 42);
        assert!(version("1.95.0") >= version("1.89"));
        assert!(version("1.88.1") < version("1.89"));
    }
}

//! The log added up: per scene and per thread, the calls that carry the lesson, and
//! a count of all. A scene starts where the traced program's first process writes
//! its heading (`=== pipe: ...`) to standard output; what comes before the second
//! heading (the program's start included) is the first scene.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::call::Call;
use crate::log::{self, Event, descriptor, split_args, string};

/// Everything read so far.
#[derive(Default)]
pub struct Trace {
    /// The process strace started: the program's parent, "parent" in the summary.
    pub top: Option<u32>,
    pub scenes: Vec<Scene>,
    /// A thread's id, and the process it belongs to.
    pub threads: HashMap<u32, u32>,
    pub who: HashMap<u32, Who>,
    /// Files the run created (opened with O_CREAT): the lesson's own.
    created: HashSet<String>,
    /// What each mapping the summary shows maps, by process and start address.
    mappings: HashMap<(u32, String), String>,
    /// Every event so far, to put processes in the order they appeared.
    count: u64,
}

/// What tells a process's label: what it printed (`child 2: ...`), the name it gave
/// itself (prctl), or its command line.
#[derive(Default, Debug)]
pub struct Who {
    pub printed: Option<String>,
    pub named: Option<String>,
    pub argv: Option<Vec<String>>,
    /// How it ended: `Ok(status)`, or `Err(signal)`.
    pub ended: Option<Result<i32, String>>,
}

/// One scene: its name, each thread's tally, who wrote (true) or read each pipe or
/// socket.
#[derive(Default)]
pub struct Scene {
    pub name: String,
    pub tallies: HashMap<u32, Tally>,
    pub users: HashMap<(String, bool), BTreeSet<u32>>,
}

/// One thread's calls in one scene, as the summary shows them.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    /// When it first appeared in the log (for the order of the summary).
    pub first: u64,
    pub calls: u64,
    pub shown: u64,
    pub execs: Vec<String>,
    /// The processes started, with the call that started them.
    pub started: Vec<(String, u32)>,
    /// Each pipe made, and its channel's key (see [`crate::names::channel`]).
    pub pipes: Vec<(String, String)>,
    /// Each socketpair made: its type, its two ends, its channel's key.
    pub socketpairs: Vec<(String, i32, i32, String)>,
    /// Opens and sizes (`openat …/data.f32 (O_RDWR)`, `ftruncate to 4000 bytes`),
    /// each with the descriptors it was done to.
    pub opens: Listed,
    pub sizes: Listed,
    /// (flags, what is mapped) -> the descriptors that mapped it, one per call.
    pub maps: BTreeMap<(String, u64, String), Vec<i32>>,
    pub unmaps: u64,
    /// msync (a flush to the disk) of a mapping shown, with its flags.
    pub syncs: BTreeMap<String, u64>,
    pub unlinks: Vec<String>,
    pub moved: BTreeMap<Moved, Flow>,
    /// (sent, kind) -> how many descriptors passed with SCM_RIGHTS.
    pub passed: BTreeMap<(bool, &'static str), u64>,
    pub signals_sent: BTreeMap<(String, String), Vec<u32>>,
    pub signals_got: BTreeMap<String, u64>,
    pub waits: BTreeMap<String, u64>,
    pub ended: Option<String>,
}

/// What was done, each with the descriptors it was done to, in order.
pub type Listed = Vec<(String, Vec<i32>)>;

/// Adds `fds` to what `what` was done to.
pub fn list(listed: &mut Listed, what: String, fds: Vec<i32>) {
    match listed.iter_mut().find(|(done, _)| *done == what) {
        Some((_, to)) => to.extend(fds),
        None => listed.push((what, fds)),
    }
}

/// Bytes moved on one descriptor in one direction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Moved {
    pub out: bool,
    pub fd: i32,
    /// How the summary names it ("pipe:[6401]", "a socket"); what links its ends.
    pub shown: String,
    pub key: String,
    /// A pipe or a socket: between processes.
    pub between: bool,
}

#[derive(Default, Debug, Clone)]
pub struct Flow {
    pub bytes: u64,
    pub calls: u64,
    pub names: BTreeSet<String>,
}

impl Tally {
    /// Adds a thread's tally to its process's.
    pub fn absorb(&mut self, other: &Tally) {
        let o = other.clone();
        self.first = self.first.min(o.first);
        (self.calls, self.shown) = (self.calls + o.calls, self.shown + o.shown);
        self.execs.extend(o.execs);
        self.started.extend(o.started);
        self.pipes.extend(o.pipes);
        for (what, fds) in o.opens {
            list(&mut self.opens, what, fds);
        }
        for (what, fds) in o.sizes {
            list(&mut self.sizes, what, fds);
        }
        self.unmaps += o.unmaps;
        for (k, v) in o.syncs {
            *self.syncs.entry(k).or_default() += v;
        }
        self.unlinks.extend(o.unlinks);
        self.socketpairs.extend(o.socketpairs);
        for (k, v) in o.maps {
            self.maps.entry(k).or_default().extend(v);
        }
        for (k, v) in o.moved {
            let flow = self.moved.entry(k).or_default();
            (flow.bytes, flow.calls) = (flow.bytes + v.bytes, flow.calls + v.calls);
            flow.names.extend(v.names);
        }
        for (k, v) in o.passed {
            *self.passed.entry(k).or_default() += v;
        }
        for (k, v) in o.signals_sent {
            self.signals_sent.entry(k).or_default().extend(v);
        }
        for (k, v) in o.signals_got {
            *self.signals_got.entry(k).or_default() += v;
        }
        for (k, v) in o.waits {
            *self.waits.entry(k).or_default() += v;
        }
        self.ended = self.ended.take().or(o.ended);
    }
}

impl Trace {
    /// The process a thread belongs to.
    pub fn process_of(&self, tid: u32) -> u32 {
        self.threads.get(&tid).copied().unwrap_or(tid)
    }

    /// Adds one whole line of the log (see [`log::Joiner`]).
    pub fn add(&mut self, tid: u32, line: &str) {
        let Some(event) = log::event(line) else { return };
        let top = *self.top.get_or_insert(tid);
        let pid = self.process_of(tid);
        if let Event::Call { name: "write", args, .. } = &event
            && pid == top
            && let Some(name) = heading(args)
        {
            match self.scenes.last_mut() {
                Some(scene) if scene.name.is_empty() => scene.name = name,
                _ => self.scenes.push(Scene { name, ..Scene::default() }),
            }
        }
        if self.scenes.is_empty() {
            self.scenes.push(Scene::default());
        }
        self.count += 1;
        let first = self.count;
        let scene = self.scenes.last_mut().expect("a scene");
        let tally = scene.tallies.entry(tid).or_insert_with(|| Tally { first, ..Tally::default() });
        let who = self.who.entry(pid).or_default();
        match event {
            Event::Signal(signal) => *tally.signals_got.entry(signal.into()).or_default() += 1,
            Event::Exited(code) => {
                tally.ended = Some(format!("exited with status {code}"));
                who.ended = Some(Ok(code));
            }
            Event::Killed(signal) => {
                tally.ended = Some(format!("killed by {signal}"));
                who.ended = Some(Err(signal.into()));
            }
            Event::Call { name, args, ret } => {
                let mut call = Call { pid, name, args, ret, tally, who, used: None };
                let shown = call.classify(&mut self.created, &mut self.mappings, &mut self.threads);
                call.tally.calls += 1;
                call.tally.shown += u64::from(shown);
                if let Some(key) = call.used {
                    scene.users.entry(key).or_default().insert(pid);
                }
            }
        }
    }
}

/// The scene's name if `args` are a write of its heading to standard output.
fn heading(args: &str) -> Option<String> {
    let parts = split_args(args);
    let (fd, _) = descriptor(parts.first()?).unwrap_or((-1, ""));
    let text = string(parts.get(1)?)?;
    let name = text.strip_prefix("=== ")?.split(':').next()?.trim();
    (fd == 1 && !name.is_empty()).then(|| name.to_owned())
}

//! What the summary says of one process in one scene, in this order: the program
//! it became, what it made for the array (pipes, files, mappings), the processes it
//! started, the data it moved, the descriptors it passed, signals and waits, what it
//! unlinked, how it ended; and how many calls were left out.

use std::collections::{BTreeMap, HashMap, HashSet};

use plumbing::show::size;

use crate::render::thousands;
use crate::tally::{Flow, Scene, Tally, Trace};

/// Lines per process, its count of what was left out included.
const MOST: usize = 15;

/// What every process's lines are read against.
pub struct Context<'a> {
    pub scene: &'a Scene,
    pub trace: &'a Trace,
    pub labels: &'a HashMap<u32, String>,
    /// The pipes and sockets that carried data in the scene: the others (std's word
    /// that an exec worked, a signal handler's wake-up) are left out.
    pub carried: &'a HashSet<&'a str>,
    /// The largest private anonymous mapping of the scene, in bytes.
    pub largest_private: u64,
}

impl Context<'_> {
    fn name(&self, pid: &u32) -> String {
        self.labels.get(pid).cloned().unwrap_or_else(|| format!("pid {pid}"))
    }
}

/// A process's lines, without its label.
pub fn lines(t: &Tally, pid: u32, context: &Context) -> Vec<String> {
    let mut hidden = 0;
    let mut out: Vec<String> = t.execs.iter().map(|c| format!("execve {c}")).collect();
    out.extend(made(t, context, &mut hidden));
    if !t.started.is_empty() {
        let mut how: Vec<&str> = t.started.iter().map(|(call, _)| call.as_str()).collect();
        how.dedup();
        let whom: Vec<String> = t.started.iter().map(|(_, pid)| context.name(pid)).collect();
        let whom = match whom.len() {
            1..=3 => whom.join(", "),
            n => format!("{n} processes, {} … {}", whom[0], whom[n - 1]),
        };
        out.push(format!("{} started {whom}", how.join("/")));
    }
    let flows = moved(t, pid, context, &mut hidden);
    let data = out.len()..out.len() + flows.len();
    out.extend(flows);
    out.extend(the_rest(t, context));
    // Too many lines: the smallest flows of data give way.
    if out.len() > MOST - 1 && data.len() > 2 {
        let cut = (out.len() + 2 - MOST).min(data.len() - 1);
        out.splice(data.end - cut..data.end, [format!("and {cut} smaller flows of data")]);
    }
    let left = t.calls - t.shown + hidden as u64;
    if left > 0 {
        out.push(format!("{} left out", plural(left, "other call")));
    }
    out
}

/// Pipes, socketpairs, opens, sizes, mappings.
fn made(t: &Tally, context: &Context, hidden: &mut usize) -> Vec<String> {
    let carried = |key: &String| context.carried.contains(key.as_str());
    let pipes: Vec<&String> = t.pipes.iter().filter(|p| carried(&p.1)).map(|p| &p.0).collect();
    let pairs: Vec<_> = t.socketpairs.iter().filter(|p| carried(&p.3)).collect();
    *hidden += t.pipes.len() + t.socketpairs.len() - pipes.len() - pairs.len();
    let mut out: Vec<String> = pipes.into_iter().cloned().collect();
    match &pairs[..] {
        [] => {}
        [(kind, a, b, _)] => out.push(format!("socketpair(AF_UNIX, {kind}) = fds {a}, {b}")),
        pairs => {
            let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
            for (kind, ..) in pairs {
                *kinds.entry(kind).or_default() += 1;
            }
            let kinds: Vec<String> = match kinds.len() {
                1 => kinds.keys().map(|k| k.to_string()).collect(),
                _ => kinds.iter().map(|(k, n)| format!("{k}{}", times(*n))).collect(),
            };
            out.push(format!("socketpair{} ({})", times(pairs.len() as u64), kinds.join(", ")));
        }
    }
    for (what, on) in &t.opens {
        let (what, flags) = what.split_once('\t').unwrap_or((what, ""));
        let flags = if flags.is_empty() { String::new() } else { format!(" ({flags})") };
        out.push(format!("{what}{} = {}{flags}", times(on.len() as u64), fds(on)));
    }
    for (what, on) in &t.sizes {
        let (call, to) = what.split_once(' ').unwrap_or((what, ""));
        out.push(format!("{call}{}: {} {to}", times(on.len() as u64), fds(on)));
    }
    // Private memory: the arrays (the scene's largest), not smaller buffers.
    for ((flags, bytes, what), on) in &t.maps {
        if flags.contains("MAP_PRIVATE|MAP_ANONYMOUS") && bytes * 4 < context.largest_private {
            *hidden += on.len();
            continue;
        }
        let calls = times(on.len() as u64);
        let on: Vec<i32> = on.iter().copied().filter(|&fd| fd >= 0).collect();
        let of = if on.is_empty() { String::new() } else { format!(", {}", fds(&on)) };
        out.push(format!("mmap {flags}{calls}{of}: {what}"));
    }
    for (what, n) in &t.syncs {
        let (call, what) = what.split_once('\t').unwrap_or((what, ""));
        out.push(format!("{call}{}: {what}", times(*n)));
    }
    if t.unmaps > 0 {
        out.push(format!("munmap: {} it made", plural(t.unmaps, "mapping")));
    }
    out
}

/// The data moved, largest first: a line per pipe or file; for sockets (ipc-channel
/// makes many), a line per direction. What moved nothing is left out.
fn moved(t: &Tally, pid: u32, context: &Context, hidden: &mut usize) -> Vec<String> {
    // (sent, what) -> the flow, on which descriptors, of which pipes or sockets.
    #[derive(Default)]
    struct Sum<'a> {
        flow: Flow,
        fds: Vec<i32>,
        keys: Vec<&'a str>,
    }
    let mut flows: BTreeMap<(bool, &str), Sum> = BTreeMap::new();
    for (m, flow) in &t.moved {
        if flow.bytes == 0 {
            *hidden += flow.calls as usize;
            continue;
        }
        let sum = flows.entry((m.out, m.shown.as_str())).or_default();
        (sum.flow.bytes, sum.flow.calls) =
            (sum.flow.bytes + flow.bytes, sum.flow.calls + flow.calls);
        sum.flow.names.extend(flow.names.iter().cloned());
        sum.fds.push(m.fd);
        sum.keys.push(m.key.as_str());
    }
    let mut flows: Vec<_> = flows.into_iter().collect();
    flows.sort_by_key(|(_, sum)| std::cmp::Reverse(sum.flow.bytes));
    let mut out = Vec::new();
    for ((sent, what), Sum { flow, fds: mut on, keys }) in flows {
        let names: Vec<&str> = flow.names.iter().map(String::as_str).collect();
        let (names, calls, bytes) = (names.join("/"), times(flow.calls), size(flow.bytes));
        on.sort();
        on.dedup();
        let on = match &on[..] {
            [fd] => format!("fd {fd} ({what})"),
            _ => format!("{} {}s", on.len(), what.trim_start_matches("a ")),
        };
        let peers = peers(&keys, sent, pid, context);
        out.push(format!("{names}{calls}: {bytes} on {on}{peers}"));
    }
    out
}

/// Who read what `pid` wrote into the pipes or sockets of `keys` (`sent`), or wrote
/// what it read from them: ", to parent".
fn peers(keys: &[&str], sent: bool, pid: u32, context: &Context) -> String {
    let mut others: Vec<u32> = Vec::new();
    for key in keys {
        let users = context.scene.users.get(&(key.to_string(), !sent)).into_iter().flatten();
        others.extend(users.map(|tid| context.trace.process_of(*tid)).filter(|&p| p != pid));
    }
    others.sort_by_key(|p| context.scene.tallies.get(p).map_or(u64::MAX, |t| t.first));
    others.dedup();
    let peers: Vec<String> = others.iter().map(|p| context.name(p)).collect();
    match (peers.len(), sent) {
        (0, _) => String::new(),
        (1..=2, true) => format!(", to {}", peers.join(", ")),
        (1..=2, false) => format!(", from {}", peers.join(", ")),
        (n, _) => format!(", with {n} processes"),
    }
}

/// Descriptors passed, signals, waits, unlinks, the end.
fn the_rest(t: &Tally, context: &Context) -> Vec<String> {
    let mut out = Vec::new();
    for (sent, call, verb) in [(true, "sendmsg", "passed"), (false, "recvmsg", "got")] {
        let passed = t.passed.iter().filter(|((s, _), _)| *s == sent);
        let kinds: Vec<String> = passed.clone().map(|((_, kind), n)| plural(*n, kind)).collect();
        let n: u64 = passed.map(|(_, n)| n).sum();
        if n > 0 {
            let descriptors = plural(n, "descriptor");
            out.push(format!("{call} {verb} {descriptors} (SCM_RIGHTS): {}", kinds.join(", ")));
        }
    }
    for ((call, signal), targets) in &t.signals_sent {
        let name = |p: &u32| if *p == 0 { "itself".into() } else { context.name(p) };
        let mut whom: Vec<String> = targets.iter().map(name).collect();
        whom.dedup();
        out.push(format!("{call} {signal}{} to {}", times(targets.len() as u64), whom.join(", ")));
    }
    let counted = |counts: &BTreeMap<String, u64>| -> Vec<String> {
        counts.iter().map(|(what, n)| format!("{what}{}", times(*n))).collect()
    };
    if !t.signals_got.is_empty() {
        out.push(format!("got {}", counted(&t.signals_got).join(", ")));
    }
    if !t.waits.is_empty() {
        out.push(format!("waited: {}", counted(&t.waits).join(", ")));
    }
    let mut unlinks: BTreeMap<String, u64> = BTreeMap::new();
    for path in &t.unlinks {
        *unlinks.entry(path.clone()).or_default() += 1;
    }
    if !unlinks.is_empty() {
        out.push(format!("unlink {}", counted(&unlinks).join(", ")));
    }
    out.extend(t.ended.clone());
    out
}

/// "fd 3", "fds 3, 5", or how many when there are many.
fn fds(on: &[i32]) -> String {
    let mut on = on.to_vec();
    on.sort();
    on.dedup();
    let listed: Vec<String> = on.iter().map(i32::to_string).collect();
    match on.len() {
        1 => format!("fd {}", listed[0]),
        2..=4 => format!("fds {}", listed.join(", ")),
        n => format!("{n} descriptors"),
    }
}

/// "1 socket", "3 sockets".
pub fn plural(n: u64, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{} {what}s", thousands(n)) }
}

/// " ×3", or nothing for once.
fn times(n: u64) -> String {
    if n == 1 { String::new() } else { format!(" ×{}", thousands(n)) }
}

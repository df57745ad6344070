//! A scene's summary as printed: a heading line, then per process (the parent
//! first, the others as they appeared) its lines (lines.rs) labelled like the
//! program's own (`child 2: trace: ...`), then what the scene moved in all.

use std::collections::{BTreeMap, HashMap, HashSet};

use plumbing::show::size;

use crate::lines::{Context, lines, plural};
use crate::names::cut;
use crate::tally::{Tally, Trace};

/// Every line fits a terminal of this width.
pub const WIDTH: usize = 80;

/// A count with its thousands marked, for counts people read (the
/// benchmark's tables use it too): 12208 as "12,208".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The summary of scene `index`.
pub fn scene(trace: &Trace, index: usize) -> Vec<String> {
    let Some(scene) = trace.scenes.get(index) else { return Vec::new() };
    let mut merged: BTreeMap<u32, Tally> = BTreeMap::new();
    for (&tid, tally) in &scene.tallies {
        let pid = trace.process_of(tid);
        match merged.get_mut(&pid) {
            Some(into) => into.absorb(tally),
            None => drop(merged.insert(pid, tally.clone())),
        }
    }
    let mut order: Vec<u32> = merged.keys().copied().collect();
    order.sort_by_key(|pid| (Some(*pid) != trace.top, merged[pid].first));
    let labels = labels(trace, &order);
    let calls = thousands(merged.values().map(|t| t.calls).sum());
    let (name, n) = (if scene.name.is_empty() { "the run" } else { &scene.name }, order.len());
    let mut out = vec![format!(
        "trace: {name}: {calls} system calls by {n} processes; the ones that matter:"
    )];
    if out[0].chars().count() > WIDTH {
        out[0] = format!("trace: {name}: {calls} system calls by {n} processes:");
    }
    // Pipes and sockets that carried nothing (std's word that an exec worked, a
    // signal handler's wake-up) are left out with what they did.
    let flows = || merged.values().flat_map(|t| &t.moved);
    let carried: HashSet<&str> =
        flows().filter(|(_, flow)| flow.bytes > 0).map(|(m, _)| m.key.as_str()).collect();
    let private = merged.values().flat_map(|t| t.maps.keys());
    let private = private.filter(|(flags, ..)| flags.contains("MAP_PRIVATE|MAP_ANONYMOUS"));
    let largest_private = private.map(|(_, bytes, _)| *bytes).max().unwrap_or(0);
    let context = Context { scene, trace, labels: &labels, carried: &carried, largest_private };
    let blocks: Vec<(u32, Vec<String>)> =
        order.iter().map(|&pid| (pid, lines(&merged[&pid], pid, &context))).collect();
    let mut at = 0;
    while at < blocks.len() {
        let (pid, lines) = &blocks[at];
        let label = &labels[pid];
        out.extend(lines.iter().map(|line| cut(&format!("{label}: trace: {line}"), WIDTH)));
        // Children that made the same kinds of calls (many-children): one of them.
        let same = |(_, other): &&(u32, Vec<String>)| template(other) == template(lines);
        let alike = blocks[at + 1..].iter().take_while(same).count();
        if Some(*pid) != trace.top && alike >= 2 {
            let (first, last) = (&labels[&blocks[at + 1].0], &labels[&blocks[at + alike].0]);
            out.push(format!("{first} … {last}: trace: the same kinds of calls as {label}"));
            at += alike;
        }
        at += 1;
    }
    let between: u64 =
        flows().filter(|(m, _)| m.out && m.between).map(|(_, flow)| flow.bytes).sum();
    let maps = || merged.values().flat_map(|t| &t.maps);
    let t_shared: usize = maps()
        .filter(|((flags, ..), _)| flags.contains("MAP_SHARED"))
        .map(|(_, fds)| fds.len())
        .sum();
    let between = size(between);
    let shared = plural(t_shared as u64, "shared mapping");
    out.push(format!("trace: in all: {between} sent through pipes and sockets, {shared}"));
    let passed = merged.values().flat_map(|t| t.passed.keys());
    if t_shared > 0 && passed.clone().any(|(_, kind)| matches!(*kind, "memfd" | "segment")) {
        out.push("trace: the array itself is copied through those shared windows, by plain".into());
        out.push("trace:   memory copies: no system call shows it".into());
    } else if t_shared > 0 {
        out.push("trace: reads and writes of a shared mapping make no system call at all".into());
    }
    let private_file = |((flags, ..), _): &(&(String, u64, String), _)| {
        flags.contains("MAP_PRIVATE") && !flags.contains("MAP_ANONYMOUS")
    };
    if maps().any(|entry| private_file(&entry)) {
        out.push("trace: writes into a MAP_PRIVATE mapping copy its pages, without a call".into());
    }
    // A child forked to do the lesson's work (it printed), never made another program.
    let forked = merged.values().flat_map(|t| &t.started).any(|(_, child)| {
        let who = trace.who.get(child);
        who.is_some_and(|w| w.argv.is_none() && w.printed.is_some())
    });
    if forked {
        out.push(
            "trace: fork copies no page: the forked child starts on its parent's pages".into(),
        );
    }
    out
}

/// Each process's label: "parent" for the first; else what it printed before its
/// lines (`child 2: ...`), the name it gave itself, or its command line.
fn labels(trace: &Trace, order: &[u32]) -> HashMap<u32, String> {
    // Children started alike but for a last number (`... many-children FILE N 3`):
    // "child 3", as the program names them.
    let numbered = |pid: &u32| {
        let argv = trace.who.get(pid)?.argv.as_ref()?;
        let (last, head) = argv.split_last()?;
        (head.get(1).map(String::as_str) == Some("child") && last.parse::<u32>().is_ok())
            .then(|| (head.to_vec(), last.clone()))
    };
    let mut alike: HashMap<Vec<String>, usize> = HashMap::new();
    for (head, _) in order.iter().filter_map(numbered) {
        *alike.entry(head).or_default() += 1;
    }
    let label = |pid: &u32| -> String {
        let who = trace.who.get(pid);
        if Some(*pid) == trace.top {
            return "parent".into();
        }
        if let Some(label) = who.and_then(|w| w.printed.clone().or(w.named.clone())) {
            return label;
        }
        if let Some((head, last)) = numbered(pid).filter(|(head, _)| alike[head] > 1) {
            return format!("{} {last}", head[1]);
        }
        match who.and_then(|w| w.argv.as_ref()) {
            Some(argv) if argv.get(1).is_some_and(|w| w == "child") => "child".into(),
            Some(argv) if !argv.is_empty() => crate::names::command(&argv[..1]),
            _ => format!("process {pid}"),
        }
    };
    order.iter().map(|pid| (*pid, label(pid))).collect()
}

/// A process's lines with their figures blotted out: processes that made the same
/// kinds of calls have the same template.
fn template(lines: &[String]) -> String {
    lines.join("\n").chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect()
}

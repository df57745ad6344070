//! One call of the log, added to its thread's tally if it carries the lesson (see
//! the crate's documentation for which do): what it did, to which descriptor, and
//! the label a process gives itself by what it prints.

use std::collections::{HashMap, HashSet};

use plumbing::show::size;

use crate::log::{descriptor, split_args, string, strings};
use crate::tally::{Moved, Tally, Who, list};

/// One call being added to its thread's tally.
pub struct Call<'a, 'b> {
    pub pid: u32,
    pub name: &'a str,
    pub args: &'a str,
    pub ret: &'a str,
    pub tally: &'b mut Tally,
    pub who: &'b mut Who,
    /// The pipe or socket the call moved data on (which links its two ends), and
    /// whether it wrote.
    pub used: Option<(String, bool)>,
}

impl Call<'_, '_> {
    /// Records the call if it carries the lesson; whether it does.
    pub fn classify(
        &mut self,
        created: &mut HashSet<String>,
        mappings: &mut HashMap<(u32, String), String>,
        threads: &mut HashMap<u32, u32>,
    ) -> bool {
        let args = split_args(self.args);
        let ok = !self.ret.starts_with('-') && !self.ret.starts_with('?');
        let number = || self.ret.split_whitespace().next()?.parse::<u64>().ok();
        let t = &mut *self.tally;
        match self.name {
            "execve" | "execveat" if ok => {
                let argv = strings(args.get(1).or(args.first()).copied().unwrap_or(""));
                t.execs.push(crate::names::command(&argv));
                self.who.argv = Some(argv);
                (self.who.printed, self.who.named) = (None, None);
            }
            "clone" | "clone3" | "fork" | "vfork" if ok => {
                let Some(child) = number() else { return false };
                if self.args.contains("CLONE_THREAD") {
                    threads.insert(child as u32, self.pid);
                    return false;
                }
                t.started.push((self.name.into(), child as u32));
            }
            "wait4" | "waitid" | "waitpid" => *t.waits.entry(self.name.into()).or_default() += 1,
            "kill" | "tkill" | "tgkill" => {
                let signal = args.last().copied().unwrap_or("");
                let target = args.first().and_then(|a| a.parse::<i64>().ok()).unwrap_or(0);
                if signal == "0" || !signal.starts_with("SIG") {
                    return false;
                }
                let whom = if target.unsigned_abs() as u32 == self.pid { 0 } else { target };
                let key = (self.name.to_owned(), signal.to_owned());
                t.signals_sent.entry(key).or_default().push(whom.unsigned_abs() as u32);
            }
            "prctl" if args.first() == Some(&"PR_SET_NAME") => {
                self.who.named = args.get(1).and_then(|a| string(a));
                return false;
            }
            "pipe" | "pipe2" | "socketpair" if ok => {
                let list = args.iter().find(|a| a.starts_with('[')).copied().unwrap_or("");
                let ends: Vec<(i32, &str)> = split_args(list.trim_matches(['[', ']']))
                    .iter()
                    .filter_map(|a| descriptor(a))
                    .collect();
                let [(a, name), (b, _)] = ends[..] else { return false };
                let Some((_, key)) = crate::names::channel(name) else { return false };
                if self.name == "socketpair" {
                    let kind = args.get(1).map_or("", |k| k.split('|').next().unwrap_or(k));
                    t.socketpairs.push((kind.to_owned(), a, b, key));
                } else {
                    let text =
                        format!("{} = fd {a} (read end), fd {b} (write end): {name}", self.name);
                    t.pipes.push((text, key));
                }
            }
            "open" | "openat" | "creat" | "memfd_create" if ok => {
                let Some((fd, path)) = descriptor(self.ret) else { return false };
                let flags = args.iter().find(|a| a.starts_with("O_") || a.starts_with("MFD_"));
                let flags = flags.copied().unwrap_or("");
                if flags.contains("O_CREAT") {
                    created.insert(path.to_owned());
                }
                let lesson = path.starts_with("/dev/shm/") || created.contains(path);
                if self.name != "memfd_create" && (!lesson || flags.contains("O_DIRECTORY")) {
                    return false;
                }
                let flags = crate::names::open_flags(flags);
                let what = match self.name {
                    "memfd_create" => "memfd_create".to_owned(),
                    call => format!("{call} {}\t{flags}", crate::names::file(path)),
                };
                list(&mut t.opens, what, vec![fd]);
            }
            "ftruncate" | "fallocate" if ok => {
                let Some((fd, _)) = args.first().and_then(|a| descriptor(a)) else { return false };
                let bytes = args.last().and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
                list(&mut t.sizes, format!("{} to {}", self.name, size(bytes)), vec![fd]);
            }
            "mmap" if ok => {
                let (Some(len), Some(flags)) = (args.get(1), args.get(3)) else { return false };
                let bytes = len.parse::<u64>().unwrap_or(0);
                let prot = args.get(2).copied().unwrap_or("");
                let fd = args.get(4).and_then(|a| descriptor(a));
                let what = match fd {
                    Some((_, path)) if crate::names::lesson_file(path, created) => {
                        format!("{}, {}", size(bytes), crate::names::file(path))
                    }
                    Some(_) => return false,
                    None if flags.contains("MAP_SHARED") => size(bytes),
                    None if bytes >= 1 << 20
                        && prot != "PROT_NONE"
                        && !flags.contains("MAP_STACK")
                        && !flags.contains("MAP_NORESERVE") =>
                    {
                        size(bytes)
                    }
                    None => return false,
                };
                mappings.insert((self.pid, self.ret.to_owned()), what.clone());
                let flags = flags.replace("|MAP_FIXED", "");
                t.maps.entry((flags, bytes, what)).or_default().push(fd.map_or(-1, |(fd, _)| fd));
            }
            "munmap" if ok => {
                let start = args.first().copied().unwrap_or("");
                if mappings.remove(&(self.pid, start.to_owned())).is_none() {
                    return false;
                }
                t.unmaps += 1;
            }
            "msync" if ok => {
                let start = args.first().copied().unwrap_or("");
                let Some(what) = mappings.get(&(self.pid, start.to_owned())) else { return false };
                let flags = args.get(2).copied().unwrap_or("");
                *t.syncs.entry(format!("msync {flags}\t{what}")).or_default() += 1;
            }
            "unlink" | "unlinkat" | "rmdir" if ok => {
                let path = crate::names::unlinked(&args);
                if !path.starts_with("/dev/shm/") && !created.contains(&path) {
                    return false;
                }
                t.unlinks.push(crate::names::file(&path));
            }
            _ => return self.moved(&args, created),
        }
        true
    }

    /// A call that reads or writes data: summed per descriptor, if it is a pipe, a
    /// socket or a lesson's file. Writes to standard output give the label.
    fn moved(&mut self, args: &[&str], created: &HashSet<String>) -> bool {
        let out = match self.name {
            "write" | "writev" | "pwrite64" | "pwritev" | "pwritev2" | "sendmsg" | "sendto"
            | "sendmmsg" | "vmsplice" => true,
            "read" | "readv" | "pread64" | "preadv" | "preadv2" | "recvmsg" | "recvfrom"
            | "recvmmsg" => false,
            _ => return false,
        };
        let Some((fd, path)) = args.first().and_then(|a| descriptor(a)) else { return false };
        if fd <= 2 {
            if out && self.who.printed.is_none() {
                self.who.printed = args.get(1).and_then(|a| string(a)).and_then(label_of);
            }
            return false;
        }
        let bytes = self.ret.split_whitespace().next().and_then(|r| r.parse::<u64>().ok());
        let (shown, key, between) = match crate::names::channel(path) {
            Some((shown, key)) => {
                self.used = Some((key.clone(), out));
                (shown, key, true)
            }
            None if crate::names::lesson_file(path, created) => {
                (crate::names::file(path), path.to_owned(), false)
            }
            None => return false,
        };
        for (sent, kind) in crate::names::rights(self.args, out) {
            *self.tally.passed.entry((sent, kind)).or_default() += 1;
        }
        let flow = self.tally.moved.entry(Moved { out, fd, shown, key, between }).or_default();
        flow.bytes += bytes.unwrap_or(0);
        flow.calls += 1;
        flow.names.insert(self.name.to_owned());
        true
    }
}

/// The label a printed line starts with: `child 2` of `child 2: made ...`.
fn label_of(text: String) -> Option<String> {
    let (label, _) = text.split_once(": ")?;
    let mut words = label.split(' ');
    let word = words.next()?;
    let number = words.next();
    let fits = !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_lowercase())
        && number.is_none_or(|n| n.bytes().all(|b| b.is_ascii_digit()))
        && words.next().is_none();
    let not_a_process = ["verdict", "trace", "pause", "error", "note", "warning"];
    (fits && !not_a_process.contains(&word)).then(|| label.to_owned())
}

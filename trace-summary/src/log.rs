//! Reading strace's log. With `-f` every line starts with the thread's id; a call
//! that another thread interrupted comes in two halves (`... <unfinished ...>`, then
//! `<... write resumed>...`), joined here into one line before it is read:
//!
//! ```text
//! 4711 write(4<pipe:[6401]>, "\0\0\0\0\0\0\360?"..., 128) = 128
//! 4711 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, ...} ---
//! 4711 +++ exited with 0 +++
//! ```

use std::collections::HashMap;

/// One line of the log, once whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A finished call: its name, the text between its parentheses, what it returned
    /// (`128`, `-1 EPIPE (Broken pipe)`, `?`).
    Call { name: &'a str, args: &'a str, ret: &'a str },
    /// A signal arrived: `SIGCHLD`.
    Signal(&'a str),
    /// The process ended with this exit status.
    Exited(i32),
    /// The process was killed by this signal.
    Killed(&'a str),
}

/// Joins the halves of interrupted calls, per thread.
#[derive(Default)]
pub struct Joiner {
    pending: HashMap<u32, String>,
}

impl Joiner {
    /// The thread and its whole line; None for a first half, or a line of no thread.
    pub fn join(&mut self, line: &str) -> Option<(u32, String)> {
        let (tid, rest) = line.split_once(' ')?;
        let tid: u32 = tid.parse().ok()?;
        let rest = rest.trim_start();
        if let Some(first) = rest.strip_suffix(" <unfinished ...>") {
            self.pending.insert(tid, first.to_owned());
            return None;
        }
        if let Some(resumed) = rest.strip_prefix("<... ") {
            let (_, tail) = resumed.split_once(" resumed>")?;
            let first = self.pending.remove(&tid)?;
            return Some((tid, first + tail));
        }
        if rest.starts_with("+++") {
            self.pending.remove(&tid); // killed in the middle of a call
        }
        Some((tid, rest.to_owned()))
    }
}

/// What a whole line says; None for what strace writes about itself.
pub fn event(line: &str) -> Option<Event<'_>> {
    if let Some(signal) = line.strip_prefix("--- ") {
        let name = signal.split_whitespace().next()?;
        return name.starts_with("SIG").then_some(Event::Signal(name));
    }
    if let Some(code) = line.strip_prefix("+++ exited with ") {
        return code.trim_end_matches(" +++").trim().parse().ok().map(Event::Exited);
    }
    if let Some(signal) = line.strip_prefix("+++ killed by ") {
        return signal.split_whitespace().next().map(Event::Killed);
    }
    let open = line.find('(')?;
    let name = &line[..open];
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let close = open + closing(&line[open..])?;
    let ret = line[close + 1..].trim_start().strip_prefix('=')?.trim();
    Some(Event::Call { name, args: &line[open + 1..close], ret })
}

/// Where the bracket that opens `text` closes: quotes, escapes and nested brackets
/// (strace's `<...>` around a descriptor's name too) are skipped. A `>` closes only
/// a `<` (not the `->` joining a socket's ends, nor `=>`).
fn closing(text: &str) -> Option<usize> {
    let (mut open, mut quoted, mut escaped) = (Vec::new(), false, false);
    for (at, b) in text.bytes().enumerate() {
        if quoted {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => quoted = false,
                _ => {}
            }
            continue;
        }
        let closes = match b {
            b'"' => {
                quoted = true;
                continue;
            }
            b'(' | b'[' | b'{' | b'<' => {
                open.push(b);
                continue;
            }
            b')' => b'(',
            b']' => b'[',
            b'}' => b'{',
            b'>' => b'<',
            _ => continue,
        };
        if open.last() == Some(&closes) {
            open.pop();
            if open.is_empty() {
                return Some(at);
            }
        } else if b != b'>' {
            return None;
        }
    }
    None
}

/// The arguments of a call, split at the commas between them.
pub fn split_args(args: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = args;
    loop {
        let mut at = 0;
        let bytes = rest.as_bytes();
        while at < bytes.len() && bytes[at] != b',' {
            at += match bytes[at] {
                b'"' | b'(' | b'[' | b'{' | b'<' => closing_any(&rest[at..]).map_or(1, |n| n + 1),
                _ => 1,
            };
        }
        parts.push(rest[..at.min(rest.len())].trim());
        if at >= rest.len() {
            return parts;
        }
        rest = &rest[at + 1..];
    }
}

/// Where a quoted string or a bracket starting `text` ends.
fn closing_any(text: &str) -> Option<usize> {
    if !text.starts_with('"') {
        return closing(text);
    }
    let mut escaped = false;
    for (at, b) in text.bytes().enumerate().skip(1) {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'"') => return Some(at),
            _ => {}
        }
    }
    None
}

/// What the bracket that opens `text` holds: `[a, b]` gives `a, b`.
pub fn inside(text: &str) -> Option<&str> {
    closing(text).map(|end| &text[1..end])
}

/// A descriptor as strace shows it with `-yy`: `4<pipe:[6401]>` is (4, "pipe:[6401]").
pub fn descriptor(text: &str) -> Option<(i32, &str)> {
    let open = text.find('<')?;
    let fd = text[..open].parse().ok()?;
    let close = open + closing(&text[open..])?;
    Some((fd, &text[open + 1..close]))
}

/// The text of a quoted string as strace writes it (`"child 2: made\n"...`), its
/// common escapes undone; None if `text` is not one.
pub fn string(text: &str) -> Option<String> {
    let end = closing_any(text.strip_prefix('"').map(|_| text)?)?;
    let mut out = String::new();
    let mut chars = text[1..end].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// The strings of a list: `["examples-pipe", "child", "pipe"]`.
pub fn strings(list: &str) -> Vec<String> {
    let inner = list.trim().trim_start_matches('[').trim_end_matches(']');
    split_args(inner).into_iter().filter_map(string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_are_joined_and_read() {
        let mut joiner = Joiner::default();
        assert_eq!(joiner.join("12 read(3<pipe:[7]>,  <unfinished ...>"), None);
        let (tid, line) = joiner.join("12 <... read resumed>\"ab\", 2) = 2").unwrap();
        assert_eq!(tid, 12);
        let Some(Event::Call { name, args, ret }) = event(&line) else { panic!("{line}") };
        assert_eq!((name, ret), ("read", "2"));
        assert_eq!(split_args(args), ["3<pipe:[7]>", "\"ab\"", "2"]);
        assert_eq!(descriptor("3<pipe:[7]>"), Some((3, "pipe:[7]")));
    }

    #[test]
    fn brackets_quotes_and_socket_ends_do_not_split() {
        let clone = "clone3({flags=CLONE_VM|CLONE_THREAD, stack=0x7f} => {parent_tid=[9]}, 88) = 9";
        assert!(matches!(event(clone), Some(Event::Call { ret: "9", .. })));
        let line = r#"sendmsg(5<UNIX:[1->2,"/tmp/s"]>, {msg_iov=[{iov_base="a, b) = 1", iov_len=9}]}, 0) = 9"#;
        let Some(Event::Call { name, args, ret }) = event(line) else { panic!() };
        assert_eq!((name, ret), ("sendmsg", "9"));
        let parts = split_args(args);
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(descriptor(parts[0]), Some((5, r#"UNIX:[1->2,"/tmp/s"]"#)));
        assert_eq!(string(r#""child 2: x\n"..."#).as_deref(), Some("child 2: x\n"));
        assert_eq!(strings(r#"["/bin/x", "child", "a b"]"#), ["/bin/x", "child", "a b"]);
    }

    #[test]
    fn signals_and_ends_are_read() {
        assert_eq!(event("--- SIGCHLD {si_signo=SIGCHLD} ---"), Some(Event::Signal("SIGCHLD")));
        assert_eq!(event("+++ exited with 3 +++"), Some(Event::Exited(3)));
        assert_eq!(event("+++ killed by SIGKILL +++"), Some(Event::Killed("SIGKILL")));
        assert_eq!(event("--- stopped by SIGSTOP ---"), None);
    }
}

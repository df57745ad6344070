//! How the summary names what strace shows: descriptors (`-yy` prints what each
//! one is), files, commands, flags.

use std::collections::HashSet;

use crate::log::{descriptor, inside, split_args, string};

/// A pipe or a socket, from what strace prints of its descriptor: how the summary
/// names it, and a key both its ends share. `pipe:[6401]` is one pipe at both ends;
/// `UNIX-STREAM:[7->8]` is the end 7 of the socket pair whose other end is 8.
pub fn channel(what: &str) -> Option<(String, String)> {
    if what.starts_with("pipe:[") {
        return Some((what.to_owned(), what.to_owned()));
    }
    let (kind, rest) = what.split_once(":[")?;
    if !(kind.starts_with("UNIX") || kind == "socket") {
        return None;
    }
    let inodes = rest.split([']', ',']).next()?;
    let key = match inodes.split_once("->") {
        Some((a, b)) if a <= b => format!("socket:{a}-{b}"),
        Some((a, b)) => format!("socket:{b}-{a}"),
        None => format!("socket:{inodes}"),
    };
    Some(("a socket".to_owned(), key))
}

/// Whether a file is the lesson's: a shared-memory segment, a memfd, or a file the
/// run created. Libraries, /proc and the like are not.
pub fn lesson_file(path: &str, created: &HashSet<String>) -> bool {
    path.starts_with("/dev/shm/") || path.starts_with("/memfd:") || created.contains(path)
}

/// A file as the summary names it: /dev/shm/NAME whole, a memfd as such, a long
/// path by its last part.
pub fn file(path: &str) -> String {
    if path.starts_with("/memfd:") {
        return "a memfd".into();
    }
    if path.chars().count() <= 32 || path.starts_with("/dev/shm/") {
        return path.to_owned();
    }
    let last = path.rsplit('/').next().unwrap_or(path);
    format!("…/{}", cut(last, 28))
}

/// At most `most` characters of `text`, "…" ending a shortened one.
pub fn cut(text: &str, most: usize) -> String {
    match text.char_indices().nth(most.saturating_sub(1)) {
        Some((at, _)) if text.chars().count() > most => format!("{}…", &text[..at]),
        _ => text.to_owned(),
    }
}

/// A command line: the program's file name, then its arguments, long paths by
/// their last part.
pub fn command(argv: &[String]) -> String {
    let mut words = Vec::new();
    for (i, word) in argv.iter().enumerate() {
        let word = match i {
            0 => word.rsplit('/').next().unwrap_or(word).to_owned(),
            _ if word.contains('/') => file(word),
            _ if word.contains(' ') || word.is_empty() => format!("'{word}'"),
            _ => word.clone(),
        };
        words.push(word);
    }
    cut(&words.join(" "), 58)
}

/// The flags of an open that say what it does: create, exclusive, truncate; the
/// access mode where it does not create.
pub fn open_flags(flags: &str) -> String {
    let creates = ["O_CREAT", "O_EXCL", "O_TRUNC"];
    let mut shown: Vec<&str> = flags.split('|').filter(|f| creates.contains(f)).collect();
    if shown.is_empty() {
        let access = ["O_RDONLY", "O_WRONLY", "O_RDWR"];
        shown = flags.split('|').filter(|f| access.contains(f)).collect();
    }
    shown.join("|")
}

/// The path an unlink removed: unlink(PATH), or unlinkat(DIR, NAME, ...) joined.
pub fn unlinked(args: &[&str]) -> String {
    let name = |at: usize| args.get(at).and_then(|a| string(a)).unwrap_or_default();
    match args.len() {
        1 => name(0),
        _ if name(1).starts_with('/') => name(1),
        _ => {
            let dir = args[0].split_once('<').map_or("", |(_, d)| d.trim_end_matches('>'));
            format!("{dir}/{}", name(1))
        }
    }
}

/// The descriptors a sendmsg or recvmsg passed with SCM_RIGHTS, by kind.
pub fn rights(args: &str, sent: bool) -> Vec<(bool, &'static str)> {
    let Some(at) = args.find("cmsg_type=SCM_RIGHTS, cmsg_data=[") else { return Vec::new() };
    let list = &args[at + "cmsg_type=SCM_RIGHTS, cmsg_data=".len()..];
    let Some(list) = inside(list) else { return Vec::new() };
    split_args(list)
        .into_iter()
        .filter_map(descriptor)
        .map(|(_, what)| {
            let kind = match what {
                w if w.starts_with("pipe:") => "pipe",
                w if w.starts_with("/memfd:") => "memfd",
                w if w.starts_with("/dev/shm/") => "segment",
                w if channel(w).is_some() => "socket",
                _ => "file",
            };
            (sent, kind)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_of_one_socket_pair_share_a_key() {
        let a = channel("UNIX-STREAM:[7->8]").unwrap();
        let b = channel(r#"UNIX-STREAM:[8->7,"/tmp/s"]"#).unwrap();
        assert_eq!(a.1, b.1);
        assert_eq!(channel("pipe:[6401]").unwrap().0, "pipe:[6401]");
        assert_eq!(channel("/dev/null<char 1:3>"), None);
    }

    #[test]
    fn descriptors_passed_are_counted_by_kind() {
        let args = r#"5<UNIX:[1->2]>, {msg_control=[{cmsg_len=28, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[6<UNIX:[3->4]>, 11</memfd:/ipc.0.1>]}], msg_controllen=32}, 0"#;
        assert_eq!(rights(args, true), [(true, "socket"), (true, "memfd")]);
        assert_eq!(unlinked(&["7</tmp/x>", "\"data.f32\"", "0"]), "/tmp/x/data.f32");
        assert_eq!(file("/tmp/examples-mmap-1234abcd/deep/data.f32"), "…/data.f32");
        assert_eq!(command(&["/a/b/examples-pipe".into(), "child".into()]), "examples-pipe child");
    }
}

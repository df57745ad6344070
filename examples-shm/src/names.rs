//! The names of shared-memory segments: which names are valid, a fresh one per run,
//! the file Linux shows for one, and how to open a kept one from Python.

/// macOS refuses POSIX shm names longer than 31 bytes (leading slash included);
/// Linux allows 255. We keep to the portable limit.
const MAX_NAME_LEN: usize = 31;

/// `--name` parser: "exshm-demo" or "/exshm-demo" both become "/exshm-demo".
pub fn parse_name(text: &str) -> Result<String, String> {
    let bare = text.strip_prefix('/').unwrap_or(text);
    if bare.is_empty() || bare == "." || bare == ".." {
        return Err("a segment name needs at least one letter or digit".into());
    }
    if bare.contains('/') {
        return Err("a segment name may not contain '/' (except one leading '/')".into());
    }
    if !bare.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err("use only letters, digits, '.', '_' and '-' in a segment name".into());
    }
    if bare.len() + 1 > MAX_NAME_LEN {
        return Err(format!("a segment name may have at most {} characters", MAX_NAME_LEN - 1));
    }
    Ok(format!("/{bare}"))
}

/// Unique per run (two students on one machine must not collide) and short
/// (macOS allows 31 bytes): "/exshm-<pid>-<8 random hex digits>".
pub fn default_name() -> String {
    fresh_name("exshm")
}

/// "/<prefix>-<pid>-<8 random hex digits>"; the bench uses "exshm-bench", so a
/// segment it ever left behind says where it came from.
pub fn fresh_name(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    // std seeds every RandomState from the OS's random source: enough for a name.
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("/{prefix}-{}-{:08x}", std::process::id(), random as u32)
}

/// The file that represents segment `name` on Linux ("/x" -> "/dev/shm/x").
pub fn dev_shm_path(name: &str) -> String {
    format!("/dev/shm{name}")
}

/// `--keep`: how to look at the segment from Python, and how to remove it.
pub fn keep_instructions(name: &str, n: usize) {
    let bare = &name[1..]; // Python adds the leading '/' itself
    println!(
        "parent: kept {name}; from Python (3.13+; for older versions see docs/deeper/shm.md):"
    );
    println!("parent:   shm = SharedMemory(name=\"{bare}\", track=False)");
    println!("parent:   a = numpy.ndarray(({n},), dtype=numpy.float64, buffer=shm.buf)");
    println!("parent: remove it with: rm {}", dev_shm_path(name));
}

/// The permission bits of /dev/shm/<name>, to show that they are 0600.
pub fn mode(name: &str) -> anyhow::Result<u32> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    let path = dev_shm_path(name);
    let metadata = std::fs::metadata(&path).with_context(|| format!("cannot stat {path}"))?;
    Ok(metadata.permissions().mode() & 0o777)
}

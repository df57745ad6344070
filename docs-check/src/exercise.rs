//! The workshop's exercises as a test reads them. Each solution on an exercise page
//! is a unified diff of one scene file, under a check marker that says what the
//! changed program does:
//!
//! ````text
//! <!-- check: cargo run -p examples-mmap -- one-child --n 1000
//! exit: 0
//! prints: verdict: shared
//! -->
//! ```diff
//! --- a/examples-mmap/src/scenes/one_child.rs
//! +++ b/examples-mmap/src/scenes/one_child.rs
//! @@ -20,3 +20,2 @@
//!      let map = file::create(path, n, 1.0f32)?;
//! -    map.flush()?;
//!      println!("...");
//! ```
//! ````
//!
//! `exit:` is a status, or `running after N s` for a program that is meant to hang
//! (it is then interrupted with SIGINT and must exit with 130). A line
//! `kill: the paused child` runs the command with `--pause` in mind: the first
//! child that pauses (its `pause: ... (pid N)` line) is killed with SIGKILL, as a
//! learner would from a second terminal. `prints:` lines (any
//! number) must each appear in what the program wrote to its standard output or
//! error; `lacks:` lines must not (what the change took away, a call gone from a
//! `--trace` summary). A hunk's line numbers are ignored: its old lines must occur exactly once in
//! the file, so the diff keeps applying while unrelated lines move, and fails as soon
//! as the lines it changes do.

/// What a solution's program must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Exit with this status.
    Exits(i32),
    /// Still be running after this many seconds.
    RunningAfter(u64),
}

/// One exercise's solution and check, as found on a page.
#[derive(Debug, Clone)]
pub struct Solution {
    /// The line of the page where the check marker starts.
    pub line: usize,
    /// The `cargo run -p ...` command of the check.
    pub command: String,
    pub outcome: Outcome,
    pub prints: Vec<String>,
    /// Texts that must not appear in the output (`lacks:`).
    pub lacks: Vec<String>,
    /// Whether the first child to pause is killed (`kill: the paused child`).
    pub kill_paused: bool,
    /// The file the diff changes, relative to the top of the repository.
    pub file: String,
    pub hunks: Vec<Hunk>,
}

/// One `@@` hunk: these lines become those.
#[derive(Debug, Clone, PartialEq)]
pub struct Hunk {
    pub old: Vec<String>,
    pub new: Vec<String>,
}

const MARKER: &str = "<!-- check: ";

/// Every solution of an exercise page, or what is wrong with one.
pub fn solutions(page: &str) -> Result<Vec<Solution>, String> {
    let lines: Vec<&str> = page.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(command) = lines[i].trim_start().strip_prefix(MARKER) else {
            i += 1;
            continue;
        };
        let line = i + 1;
        let fail = |what: String| format!("line {line}: {what}");
        let (mut outcome, mut prints, mut lacks, mut kill_paused) =
            (None, Vec::new(), Vec::new(), false);
        i += 1;
        while i < lines.len() && lines[i].trim() != "-->" {
            let text = lines[i].trim();
            if let Some(status) = text.strip_prefix("exit: ") {
                outcome = Some(parse_outcome(status).map_err(fail)?);
            } else if let Some(text) = text.strip_prefix("prints: ") {
                prints.push(text.to_owned());
            } else if let Some(text) = text.strip_prefix("lacks: ") {
                lacks.push(text.to_owned());
            } else if text == "kill: the paused child" {
                kill_paused = true;
            } else {
                return Err(fail(format!(
                    "`{text}` is not `exit: ...`, `prints: ...`, `lacks: ...` or `kill: the paused child`"
                )));
            }
            i += 1;
        }
        let outcome = outcome.ok_or_else(|| fail("the check has no `exit:` line".into()))?;
        // The diff: the next fenced block, which must be a ```diff one.
        let open = (i..lines.len()).find(|&k| lines[k].trim_start().starts_with("```"));
        let open = open.ok_or_else(|| fail("no diff follows the check".into()))?;
        if lines[open].trim_start() != "```diff" {
            return Err(fail(format!("the block after the check is `{}`", lines[open].trim())));
        }
        let indent = &lines[open][..lines[open].len() - lines[open].trim_start().len()];
        let close = (open + 1..lines.len()).find(|&k| lines[k].trim_start().starts_with("```"));
        let close = close.ok_or_else(|| fail("the diff block is not closed".into()))?;
        let body: Vec<&str> =
            lines[open + 1..close].iter().map(|l| l.strip_prefix(indent).unwrap_or(l)).collect();
        let (file, hunks) = parse_diff(&body).map_err(fail)?;
        let command = command.trim().to_owned();
        found.push(Solution { line, command, outcome, prints, lacks, kill_paused, file, hunks });
        i = close + 1;
    }
    Ok(found)
}

fn parse_outcome(text: &str) -> Result<Outcome, String> {
    if let Some(seconds) = text.strip_prefix("running after ").and_then(|t| t.strip_suffix(" s")) {
        return seconds.parse().map(Outcome::RunningAfter).map_err(|e| format!("`{text}`: {e}"));
    }
    text.parse().map(Outcome::Exits).map_err(|_| format!("`exit: {text}` is not a status"))
}

/// The file and hunks of a one-file unified diff.
fn parse_diff(lines: &[&str]) -> Result<(String, Vec<Hunk>), String> {
    let (Some(old), Some(new)) = (lines.first(), lines.get(1)) else {
        return Err("the diff has no `--- a/FILE` and `+++ b/FILE` lines".into());
    };
    let old = old.strip_prefix("--- a/");
    let new = new.strip_prefix("+++ b/");
    let file = match (old, new) {
        (Some(old), Some(new)) if old == new => old.to_owned(),
        _ => return Err("the diff must start with `--- a/FILE` and `+++ b/FILE`".into()),
    };
    let mut hunks: Vec<Hunk> = Vec::new();
    for line in &lines[2..] {
        if line.starts_with("@@") {
            hunks.push(Hunk { old: Vec::new(), new: Vec::new() });
            continue;
        }
        let hunk = hunks.last_mut().ok_or("diff lines before the first `@@`")?;
        // An empty line is an empty context line whose leading space was trimmed.
        let (kind, text) = line.split_at(line.len().min(1));
        match kind {
            " " | "" => {
                hunk.old.push(text.to_owned());
                hunk.new.push(text.to_owned());
            }
            "-" => hunk.old.push(text.to_owned()),
            "+" => hunk.new.push(text.to_owned()),
            _ => return Err(format!("`{line}` is not a diff line")),
        }
    }
    if hunks.is_empty() {
        return Err("the diff has no hunk".into());
    }
    Ok((file, hunks))
}

/// `source` with every hunk applied, or which hunk does not fit.
pub fn apply(source: &str, hunks: &[Hunk]) -> Result<String, String> {
    let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
    for (number, hunk) in hunks.iter().enumerate() {
        let fits = |at: &usize| lines[*at..].starts_with(&hunk.old);
        let places: Vec<usize> = (0..=lines.len().saturating_sub(hunk.old.len()))
            .filter(|at| *at + hunk.old.len() <= lines.len())
            .filter(fits)
            .collect();
        let [at] = places[..] else {
            return Err(format!(
                "hunk {} fits {} places of the file, not one; its old lines are:\n{}",
                number + 1,
                places.len(),
                hunk.old.join("\n")
            ));
        };
        lines.splice(at..at + hunk.old.len(), hunk.new.iter().cloned());
    }
    Ok(lines.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "Intro.\n\n<details>\n\n<!-- check: cargo run -p x -- a --n 5\nexit: running after 3 s\nprints: hello there\nlacks: msync\nkill: the paused child\n-->\n```diff\n--- a/x/src/a.rs\n+++ b/x/src/a.rs\n@@ -1,3 +1,3 @@\n fn a() {\n-    one();\n+    two();\n\n }\n```\n</details>\n";

    #[test]
    fn a_check_and_its_diff_are_read() {
        let [solution] = &solutions(PAGE).unwrap()[..] else { panic!("one solution") };
        assert_eq!(solution.line, 5);
        assert_eq!(solution.command, "cargo run -p x -- a --n 5");
        assert_eq!(solution.outcome, Outcome::RunningAfter(3));
        assert_eq!(solution.prints, ["hello there"]);
        assert_eq!(solution.lacks, ["msync"]);
        assert!(solution.kill_paused);
        assert_eq!(solution.file, "x/src/a.rs");
        let old = ["fn a() {", "    one();", "", "}"];
        assert_eq!(solution.hunks[0].old, old);
        assert_eq!(solution.hunks[0].new, ["fn a() {", "    two();", "", "}"]);
    }

    #[test]
    fn a_hunk_applies_where_its_old_lines_are_and_only_there() {
        let hunks = &solutions(PAGE).unwrap()[0].hunks;
        let source = "// top\nfn a() {\n    one();\n\n}\n";
        assert_eq!(apply(source, hunks).unwrap(), "// top\nfn a() {\n    two();\n\n}\n");
        let error = apply("fn a() {\n    three();\n}\n", hunks).unwrap_err();
        assert!(error.starts_with("hunk 1 fits 0 places"), "{error}");
        let twice = format!("{source}{source}");
        assert!(apply(&twice, hunks).unwrap_err().starts_with("hunk 1 fits 2 places"));
    }

    #[test]
    fn a_check_without_exit_or_diff_is_refused() {
        let no_exit = "<!-- check: cargo run -p x\nprints: y\n-->\n```diff\n```\n";
        assert!(solutions(no_exit).unwrap_err().contains("no `exit:` line"));
        let no_diff = "<!-- check: cargo run -p x\nexit: 0\n-->\n```rust\n```\n";
        assert!(solutions(no_diff).unwrap_err().contains("the block after the check"));
        assert_eq!(parse_outcome("1"), Ok(Outcome::Exits(1)));
    }
}

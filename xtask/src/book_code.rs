//! `cargo xtask book-code`: copies the code each page shows under a
//! `<!-- code: PATH [ITEM [.. ITEM]] -->` marker from its file again (the marker is
//! described in docs-check's crate documentation, and in this task's `--help`).

use anyhow::{Context, Result};
use docs_check::shown;

use crate::workspace_root;

/// What `cargo xtask book-code` takes.
#[derive(clap::Args)]
pub struct BookCodeArgs {
    /// Write nothing; exit 1 if a page would change or a marker points at nothing
    #[arg(long)]
    check: bool,
}

pub fn run(args: BookCodeArgs) -> Result<bool> {
    let root = workspace_root()?;
    let (mut markers, mut changed, mut broken) = (0, 0, 0);
    for file in docs_check::markdown_files(&root).context("cannot list the book's pages")? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let page = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
        let read = shown::reader(file.parent().context("a page has a folder")?);
        let (rewritten, problems) = shown::rewrite(&text, &read);
        markers += docs_check::read_page(&text).code_markers.len();
        broken += problems.len();
        for problem in problems {
            println!("{page}:{}: {}", problem.line, problem.text);
        }
        if rewritten != text {
            changed += 1;
            if args.check {
                println!("{page}: its shown code differs from the files");
            } else {
                std::fs::write(&file, rewritten)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                println!("{page}: shown code copied again from the files");
            }
        }
    }
    let pages = if changed == 1 { "page" } else { "pages" };
    let done = if args.check { "would change" } else { "rewritten" };
    println!(
        "book-code: {markers} markers, {changed} {pages} {done}, {broken} markers pointing at nothing"
    );
    Ok(broken == 0 && !(args.check && changed > 0))
}

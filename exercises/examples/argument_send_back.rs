//! Exercise "make the change visible" (docs/exercises/argument.md): the `argument`
//! scene of examples-argument, with the child sending its array back.
//!
//! The child still works on its own copy. What changes is that it serializes that
//! copy again, onto its standard output, and the parent decodes it into a new array
//! that replaces its own: the parent sees the zeros because a second copy came back.
//!
//! `cargo run -p exercises --example argument_send_back -- --n 1000`

use std::io::{BufReader, BufWriter, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use ndarray::{Array2, s};

/// The argument scene, with the child's array sent back to the parent.
#[derive(Parser)]
struct Cli {
    /// The side of the (n, n) array of f64 [default: 1000, 8 MB]
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..))]
    n: u16,
}

fn main() -> Result<()> {
    // The child is this same program, started with the word `child` (spawn style).
    if std::env::args().nth(1).as_deref() == Some("child") {
        return child();
    }
    let n = usize::from(Cli::parse().n);
    let mut data = Array2::<f64>::ones((n, n));
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .arg("child")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start the child")?;

    // There: the whole array goes into the child's standard input. The child reads
    // all of it before it writes anything back, so writing first cannot deadlock.
    let mut to_child = BufWriter::new(child.stdin.take().expect("piped"));
    bincode::serde::encode_into_std_write(&data, &mut to_child, bincode::config::standard())?;
    to_child.flush()?;
    drop(to_child); // end of input: the child's decoder has everything

    // And back: a new array replaces the parent's.
    let mut from_child = BufReader::new(child.stdout.take().expect("piped"));
    data = bincode::serde::decode_from_std_read(&mut from_child, bincode::config::standard())
        .context("could not read the array back from the child")?;
    let status = child.wait()?;
    ensure!(status.success(), "the child process failed: {status}");

    println!(
        "parent: the array went to the child and back in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    print_corner("parent", &data);
    let zeros = data.iter().filter(|&&x| x == 0.0).count();
    ensure!(
        zeros == data.len(),
        "expected the child's zeros in all {} elements, but {zeros} are zero",
        data.len()
    );
    println!(
        "verdict: the parent now holds zeros in all {} elements: the child's copy, sent back as a second copy",
        data.len()
    );
    Ok(())
}

/// The child: decode, fill zeros, encode back. Its standard output carries the
/// array, so its messages go to standard error.
fn child() -> Result<()> {
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut data: Array2<f64> =
        bincode::serde::decode_from_std_read(&mut input, bincode::config::standard())?;
    data.fill(0.0);
    eprintln!("child: filled zeros in my copy of shape {:?}; sending it back", data.dim());
    let mut output = BufWriter::new(std::io::stdout().lock());
    bincode::serde::encode_into_std_write(&data, &mut output, bincode::config::standard())?;
    output.flush()?;
    Ok(())
}

fn print_corner(who: &str, data: &Array2<f64>) {
    println!("{who}: top-left corner:");
    for row in data.slice(s![..data.nrows().min(5), ..data.ncols().min(5)]).rows() {
        let values: Vec<String> = row.iter().map(|x| format!("{x:.1}")).collect();
        println!("{who}:   [{}]", values.join(", "));
    }
}

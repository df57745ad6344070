//! The scenes, one file each, in the tutorial's order, and the child process's
//! dispatch to the job its parent gives it.

pub mod attribute;
pub mod child_proxy;
pub mod hosted_sum;
pub mod mutate;
pub mod slice;

use anyhow::Result;
use plumbing::room;

use crate::Scene;
use crate::manager::Job;

/// The tutorial's sizes: 50,000,000 f64 for the timing example, 100,000,000 for the others.
const HOSTED_SUM_N: u64 = 50_000_000;
const N: u64 = 100_000_000;

/// Runs `scenes` in order, each under its heading.
pub fn run(scenes: &[Scene], n: Option<u64>, clients: u64) -> Result<()> {
    for (i, scene) in scenes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match scene {
            Scene::HostedSum => {
                println!(
                    "=== hosted-sum: summing where the array lives versus copying it out first ==="
                );
                // The parent also holds a full copy in this scene: two arrays must fit.
                hosted_sum::parent(array_len(n, HOSTED_SUM_N, 2)?)?;
            }
            Scene::ChildProxy => {
                println!(
                    "=== child-proxy: the parent and a child both sum the hosted array through proxies ==="
                );
                child_proxy::parent(array_len(n, N, 1)?)?;
            }
            Scene::Attribute => {
                println!(
                    "=== attribute: the proxy answers the array's shape (a typed request, not an attribute lookup) ==="
                );
                attribute::parent(array_len(n, N, 1)?)?;
            }
            Scene::Slice => {
                println!(
                    "=== slice: the proxy returns a slice of values, a copy of just those ==="
                );
                slice::parent(array_len(n, N, 1)?)?;
            }
            _ => {
                println!(
                    "=== mutate: a child's writes through its proxy are seen by the parent; clients at once lose nothing ==="
                );
                mutate::parent(array_len(n, N, 1)?, clients)?;
            }
        }
    }
    Ok(())
}

/// The hidden `child` sub-command: a child called `label` does the job it is given.
pub fn child(label: &str, socket: &str) -> Result<()> {
    plumbing::children::as_child(label, || {
        crate::manager::child(socket, |label, proxy, job| match job {
            Job::Sum => child_proxy::child(label, proxy),
            Job::Fill(value) => mutate::fill(label, proxy, value),
            Job::AddOne => mutate::add_one(label, proxy),
        })
    })
}

/// The length of a scene's array: `--n` or the scene's default. Refused before
/// anything is allocated if `copies` arrays that long do not fit in memory.
pub fn array_len(n: Option<u64>, default: u64, copies: u64) -> Result<usize> {
    let n = n.unwrap_or(default);
    let bytes = room::array_bytes(n, Some(n), size_of::<f64>())?;
    room::check_memory(n, bytes, copies, "the server's and the parent's copy")?;
    Ok(bytes / size_of::<f64>())
}

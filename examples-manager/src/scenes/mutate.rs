//! mutate: the series' common pattern through a manager. A child fills the hosted
//! array with zeros through its proxy, and the parent sees them; then several
//! clients add 1 at once, and no update is lost: the server applies one request at
//! a time, with no lock.

use anyhow::{Result, ensure};
use callback::StartCallingBack;
use examples_manager::Proxy;
use plumbing::show::verdict;
use plumbing::{Process, join_all};

use crate::Task;
use crate::scenes::with_server;

/// Each adding client walks the array in this many requests, so that requests from
/// different clients interleave at the server.
const ADD_REQUESTS: usize = 100;

/// The parent: a child's zeros, then `clients` children adding at once.
pub fn parent(len: usize, clients: u64) -> Result<()> {
    let (after_fill, min, max, total) = with_server(len, |proxy| {
        // Each child gets a clone of our proxy: one more sender into the same server.
        let fill = Task::Fill { proxy: proxy.clone(), value: 0.0 };
        Process::new(fill).start_calling_back()?.join()?;
        let after_fill = proxy.sum()?;
        println!("parent: sum through my proxy after the child's fill: {after_fill}");

        // The clients at once: each starts adding as soon as it has its proxy.
        let add = |id| Process::new(Task::AddOne { id, proxy: proxy.clone() });
        let team: Result<Vec<_>> = (1..=clients).map(|id| add(id).start_calling_back()).collect();
        join_all(team?, Ok(()))?;
        let (min, max) = proxy.min_max()?;
        let total = proxy.sum()?;
        let first = proxy.slice(0, len.min(10))?;
        println!("parent: first {} values: {first:?}", first.len());
        println!("parent: sum {total}; smallest element {min}, largest {max}");
        Ok((after_fill, min, max, total))
    })?;
    let k = clients as f64;
    ensure!(
        after_fill == 0.0,
        "expected the parent to see the child's zeros (sum 0), but the sum was {after_fill}"
    );
    ensure!(
        min == k && max == k && total == k * len as f64,
        "expected {clients} in every element after {clients} clients each added 1, but saw min {min}, max {max}, sum {total}"
    );
    verdict(&format!(
        "mutate: the parent saw the child's zeros, and {clients} clients adding 1 at once left exactly {clients} in all {len} elements"
    ));
    Ok(())
}

/// A child's fill: every element set to `value`, through its proxy.
pub fn fill(proxy: &Proxy, value: f64) -> Result<()> {
    proxy.fill(value)?;
    let len: usize = proxy.shape()?.iter().product();
    println!("child: filled all {len} elements with {value} through my proxy");
    let first = proxy.slice(0, len.min(10))?;
    println!("child: first {} values: {first:?}", first.len());
    Ok(())
}

/// A client's add: 1 added to every element, a part at a time.
pub fn add_one(id: u64, proxy: &Proxy) -> Result<()> {
    let len: usize = proxy.shape()?.iter().product();
    let step = len.div_ceil(ADD_REQUESTS);
    for start in (0..len).step_by(step) {
        proxy.add(start, (start + step).min(len), 1.0)?; // data_proxy[start:end] += 1
    }
    println!("child {id}: added 1 to all {len} elements, {step} at a time");
    Ok(())
}

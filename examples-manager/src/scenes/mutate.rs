//! mutate: the series' common pattern through a manager. A child fills the hosted
//! array with zeros through its proxy, and the parent sees them; then several
//! clients add 1 at once, and no update is lost: the server applies one request at
//! a time, with no lock.

use anyhow::{Result, ensure};
use examples_manager::Proxy;

use crate::manager::{ChildHandle, FromChild, Job, with_server};

/// Each adding client walks the array in this many requests, so that requests from
/// different clients interleave at the server.
const ADD_REQUESTS: usize = 100;

/// The parent: a child's zeros, then `clients` children adding at once.
pub fn parent(len: usize, clients: u64) -> Result<()> {
    let (after_fill, min, max, total) = with_server(len, |proxy| {
        let mut child = ChildHandle::start("child")?;
        child.order(proxy, Job::Fill(0.0))?;
        child.finish()?;
        let after_fill = proxy.sum()?;
        println!("parent: sum through my proxy after the child's fill: {after_fill}");

        let team: Result<Vec<_>> =
            (1..=clients).map(|i| ChildHandle::start(&format!("child {i}"))).collect();
        let mut team = team?;
        // Orders go out only once every client is up, so their requests really
        // interleave at the server instead of one client running after another.
        for client in &mut team {
            client.order(proxy, Job::AddOne)?;
        }
        for client in team {
            client.finish()?;
        }
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
    println!(
        "verdict: mutate: the parent saw the child's zeros, and {clients} clients adding 1 at once left exactly {clients} in all {len} elements"
    );
    Ok(())
}

/// A child's fill: every element set to `value`, through its proxy.
pub fn fill(label: &str, proxy: &Proxy, value: f64) -> Result<FromChild> {
    proxy.fill(value)?;
    let len: usize = proxy.shape()?.iter().product();
    println!("{label}: filled all {len} elements with {value} through my proxy");
    let first = proxy.slice(0, len.min(10))?;
    println!("{label}: first {} values: {first:?}", first.len());
    Ok(FromChild::Done)
}

/// A client's add: 1 added to every element, a part at a time.
pub fn add_one(label: &str, proxy: &Proxy) -> Result<FromChild> {
    let len: usize = proxy.shape()?.iter().product();
    let step = len.div_ceil(ADD_REQUESTS);
    for start in (0..len).step_by(step) {
        proxy.add(start, (start + step).min(len), 1.0)?; // data_proxy[start:end] += 1
    }
    println!("{label}: added 1 to all {len} elements, {step} at a time");
    Ok(FromChild::Done)
}

//! attribute: the tutorial could not read `data_proxy.shape` through its proxy (an
//! `AttributeError`). Here the shape is one of the requests the server offers, so
//! the proxy has a method for it; and one small request shows the fixed cost of
//! asking the server anything.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use examples_manager::Proxy;
use plumbing::show::verdict;

use crate::scenes::with_server;

/// The parent: the shape, the sum, and the price of one round trip.
pub fn parent(len: usize) -> Result<()> {
    let (shape, sum) = with_server(len, |proxy| {
        let shape = proxy.shape()?; // data_proxy.shape, which the tutorial could not ask
        println!("parent: shape through my proxy: {shape:?}");
        let sum = proxy.sum()?;
        println!("parent: sum through my proxy: {sum}");
        let median = round_trip(proxy, 1000)?;
        println!(
            "parent: one small request (shape) there and back takes {:.1} µs (median of 1000)",
            median.as_secs_f64() * 1e6
        );
        Ok((shape, sum))
    })?;
    ensure!(
        shape == [len] && sum == len as f64,
        "expected shape [{len}] and sum {len}, but the proxy answered {shape:?} and {sum}"
    );
    verdict(&format!(
        "attribute: the proxy reports shape [{len}], and the server's sum over all {len} elements agrees"
    ));
    Ok(())
}

/// Median time of `count` shape requests: the fixed price of asking the server anything.
fn round_trip(proxy: &Proxy, count: usize) -> Result<Duration> {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        proxy.shape()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[count / 2])
}

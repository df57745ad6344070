//! slice: the tutorial's `data_proxy[:10]` failed, and its fix was a wrapper with a
//! `getdata` method. Here `slice` is a request the server offers: the answer is a
//! copy of just those values.

use anyhow::{Result, ensure};
use plumbing::show::verdict;

use crate::scenes::with_server;

/// The parent: the first values, and the server's word on all the others.
pub fn parent(len: usize) -> Result<()> {
    let (first, min, max) = with_server(len, |proxy| {
        println!("parent: sum through my proxy: {}", proxy.sum()?);
        let first = proxy.slice(0, len.min(10))?; // data_proxy.getdata(slice(0, 10))
        println!("parent: first {} values: {first:?}", first.len());
        let (min, max) = proxy.min_max()?;
        println!(
            "parent: smallest and largest of all {len} elements, from the server: {min} and {max}"
        );
        Ok((first, min, max))
    })?;
    ensure!(
        first.iter().all(|&x| x == 1.0) && min == 1.0 && max == 1.0,
        "expected ones everywhere, but the slice was {first:?} and the server saw min {min}, max {max}"
    );
    verdict(&format!(
        "slice: the first {} values arrived as a copy of {} bytes, and all {len} elements are 1.0 (min = max = 1)",
        first.len(),
        first.len() * 8
    ));
    Ok(())
}

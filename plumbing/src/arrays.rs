//! Arrays as the programs make them: ones the way numpy makes a large array (on
//! huge pages), zeros to receive into, and an array's values as the bytes they are
//! in memory, sent and read back in place with no buffer on either side. The bytes
//! are the machine's own: little-endian, numpy's `float64` on x86-64 and AArch64.

use std::ffi::c_void;
use std::io::{self, Read};
use std::ptr::NonNull;

use anyhow::{Context, Result, ensure};
use nix::sys::mman::{MmapAdvise, madvise};

/// A `Vec` of n ones, allocated the way numpy's `ones` allocates a large array:
/// numpy asks for transparent huge pages (2 MiB instead of 4 KiB) for large arrays,
/// so filling 800 MB takes 400 page faults instead of 200,000; a plain `vec![1.0;
/// n]` pays the small-page price and loses to Python before any sharing starts. It
/// is a hint: where huge pages are off, this is an ordinary vector.
pub fn ones(n: usize) -> Vec<f64> {
    let mut data: Vec<f64> = Vec::with_capacity(n);
    advise_huge_pages(data.as_mut_ptr().cast(), n * size_of::<f64>());
    data.resize(n, 1.0);
    data
}

/// A `Vec` of n zeros to receive an array into: fresh pages the kernel hands out,
/// already zero and advised to be huge, only as the data arrives. A failed
/// allocation is an error, not an abort: the size may come from another process,
/// which must not be able to end this one by announcing too much.
pub fn zeros(n: usize) -> Result<Vec<f64>> {
    let layout = std::alloc::Layout::array::<f64>(n)
        .with_context(|| format!("{n} values do not fit in memory"))?;
    if n == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a non-zero size (n > 0, and an f64 is 8 bytes).
    let start = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<f64>();
    ensure!(!start.is_null(), "no memory for {n} values ({} bytes)", layout.size());
    advise_huge_pages(start.cast(), layout.size());
    // SAFETY: `start` was allocated by the global allocator with the layout of
    // exactly n f64 (so capacity n, and the alignment of f64), and all n values
    // are initialized: all-zero bytes are the f64 0.0. The Vec owns it from here.
    Ok(unsafe { Vec::from_raw_parts(start, n, n) })
}

/// Asks for transparent huge pages on the whole pages inside `[start, start+len)`.
fn advise_huge_pages(start: *mut u8, len: usize) {
    let (first, end) = ((start as usize).next_multiple_of(4096), (start as usize + len) & !4095);
    let Some(first_page) = NonNull::new(first as *mut c_void).filter(|_| end > first) else {
        return;
    };
    // SAFETY: [first, end) lies inside an allocation the caller owns, and
    // MADV_HUGEPAGE only changes how the kernel backs those pages, never their
    // contents or who may access them, so no Rust reference is invalidated.
    // A failure (e.g. huge pages not configured) leaves the memory as it was.
    let _ = unsafe { madvise(first_page, end - first, MmapAdvise::MADV_HUGEPAGE) };
}

/// The values' own memory, as bytes.
pub fn as_bytes(values: &[f64]) -> &[u8] {
    // SAFETY: an f64 is 8 bytes with no padding, so its memory may be read as bytes;
    // u8 needs no alignment; the length covers exactly the memory of `values`, which
    // stays borrowed (alive, unchanged) as long as the bytes are.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) }
}

/// The values' own memory, as bytes to write into.
pub fn as_bytes_mut(values: &mut [f64]) -> &mut [u8] {
    // SAFETY: as in `as_bytes`, and every pattern of 8 bytes is a valid f64 (at worst
    // a NaN), so whatever is written here leaves valid values; the borrow is exclusive
    // because it comes from `&mut`.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), size_of_val(values)) }
}

/// Reads until `buf` is full or the input ends: (bytes read, `read` calls). Unlike
/// `read_exact`, it says how far it got, for a clear message about a short stream.
pub fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<(usize, u64)> {
    let (mut got, mut calls) = (0, 0);
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => {
                got += k;
                calls += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((got, calls))
}

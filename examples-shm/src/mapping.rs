//! The memory this program shares without a name (the tutorial's `RawArray`), and
//! typed ndarray views of any mapping, named or not.
//!
//! A mapping is only bytes at an address. Treating them as `n` f64 values is a
//! promise the compiler cannot check, and another process writing them is
//! something it cannot see; the `unsafe` here is where we make that promise out
//! loud.

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use anyhow::{Context, Result, ensure};
use ndarray::{ArrayView1, ArrayViewMut1};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use shared_memory::Shmem;

/// Memory mapped into this process: where it starts and how many bytes it has.
/// Views borrow the mapping, so none can outlive it (be used after munmap).
pub trait Mapped {
    fn start(&self) -> *mut u8;
    fn bytes(&self) -> usize;
}

impl Mapped for Shmem {
    fn start(&self) -> *mut u8 {
        self.as_ptr()
    }
    fn bytes(&self) -> usize {
        self.len()
    }
}

/// A mutable ndarray view of the first `n` f64 values of a mapping.
///
/// # Safety
/// While the view lives, nothing else may read or write these bytes: no other
/// view in this process and no other process (Rust assumes a `&mut` is the only
/// way to the data; a concurrent writer elsewhere would break that silently).
pub unsafe fn view_mut(memory: &impl Mapped, n: usize) -> Result<ArrayViewMut1<'_, f64>> {
    let values = checked_f64_ptr(memory, n)?;
    // SAFETY: aligned, in bounds and mapped read-write for as long as `memory`
    // is borrowed (checked above); exclusivity is the caller's promise.
    Ok(unsafe { ArrayViewMut1::from_shape_ptr(n, values) })
}

/// A read-only view of the first `n` f64 values.
///
/// # Safety
/// While the view lives, nobody may write these bytes (readers are fine).
pub unsafe fn view(memory: &impl Mapped, n: usize) -> Result<ArrayView1<'_, f64>> {
    let values = checked_f64_ptr(memory, n)?;
    // SAFETY: aligned, in bounds and mapped for as long as `memory` is borrowed
    // (checked above); the absence of writers is the caller's promise.
    Ok(unsafe { ArrayView1::from_shape_ptr(n, values.cast_const()) })
}

fn checked_f64_ptr(memory: &impl Mapped, n: usize) -> Result<*mut f64> {
    let values = memory.start().cast::<f64>();
    // mmap returns page-aligned addresses, but a view is only sound if this
    // holds, so we check rather than assume.
    ensure!(values.is_aligned(), "the mapping at {values:p} is not aligned for f64");
    let needed = n.checked_mul(size_of::<f64>()).context("n is too large")?;
    let bytes = memory.bytes();
    ensure!(needed <= bytes, "the mapping has {bytes} bytes, too few for {n} f64 values");
    Ok(values)
}

/// Memory shared with children forked later: `mmap(MAP_SHARED | MAP_ANONYMOUS)`,
/// the same kind of memory as Python's `RawArray`. It has no name: only this
/// process and children forked from it can ever reach it, and it disappears
/// with the last of them, whatever kills them.
///
/// Not `memmap2::MmapMut::map_anon`: that one is MAP_PRIVATE, so after fork the
/// child's writes would land in its own copy-on-write pages and the parent would
/// keep seeing ones.
pub struct SharedMapping {
    ptr: NonNull<c_void>,
    len: usize,
}

impl SharedMapping {
    pub fn new(len: usize) -> Result<Self> {
        let size = NonZeroUsize::new(len).context("cannot map 0 bytes")?;
        let protection = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        // SAFETY: a new anonymous mapping at an address the kernel chooses, so it
        // cannot overlap memory that Rust already uses.
        let ptr = unsafe { mmap_anonymous(None, size, protection, MapFlags::MAP_SHARED) }
            .with_context(|| format!("cannot map {len} bytes of shared memory"))?;
        Ok(SharedMapping { ptr, len })
    }
}

impl Mapped for SharedMapping {
    fn start(&self) -> *mut u8 {
        self.ptr.as_ptr().cast()
    }
    fn bytes(&self) -> usize {
        self.len
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no view is
        // left: views borrow `self`, and `drop` has it mutably.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

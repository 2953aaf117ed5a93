//! Guest-side bindings of machvm: the Mach VM calls of spec §3 as imports
//! from the wasm module `"mach"`, XNU's types and constants, and typed
//! wrappers that return `Result<_, KernReturn>`.
//!
//! `no_std`; its one dependency is `machvm-abi`, the ABI's values shared with the host. Build a guest for `wasm32-unknown-unknown`
//! (or `wasm64-unknown-unknown`): `usize` is the guest's word, so the `vm_*`
//! calls take and return word-sized addresses and sizes, the `mach_vm_*`
//! calls 64-bit ones, exactly as in C.
//!
//! Two layers:
//!
//! * [`sys`]: the raw `extern "C"` imports with XNU's names and C types
//!   (`vm_address_t`, `kern_return_t`, ...). Everything in it is `unsafe`.
//! * the crate root: [`KernReturn`], the constants, and wrappers. The
//!   wrappers that only read or map fresh pages are safe; those that can
//!   change or unmap memory the program may still be using (`vm_protect`,
//!   `vm_copy`, `vm_write`, `vm_deallocate`, fixed `vm_allocate`) are
//!   `unsafe fn`: the caller promises that no Rust reference points into the
//!   affected range.
//!
//! On other targets (the host, for `cargo test`) the imports are declared
//! but never called; the pure parts (constants, layout, names) are tested
//! there.
#![no_std]
#![warn(missing_docs)]

pub mod sys;

pub use sys::{
    vm_region_basic_info, vm_region_basic_info_64, VM_BEHAVIOR_DEFAULT, VM_FLAGS_ANYWHERE,
    VM_FLAGS_FIXED, VM_FLAGS_OVERWRITE, VM_FLAGS_USER_ALLOCATE, VM_INHERIT_COPY,
    VM_INHERIT_DEFAULT, VM_INHERIT_NONE, VM_INHERIT_SHARE, VM_PROT_ALL, VM_PROT_COPY,
    VM_PROT_DEFAULT, VM_PROT_EXECUTE, VM_PROT_NONE, VM_PROT_READ, VM_PROT_WRITE,
    VM_REGION_BASIC_INFO, VM_REGION_BASIC_INFO_64, VM_REGION_BASIC_INFO_COUNT,
    VM_REGION_BASIC_INFO_COUNT_64,
};
pub use sys::{
    KERN_FAILURE, KERN_INVALID_ADDRESS, KERN_INVALID_ARGUMENT, KERN_NO_SPACE,
    KERN_PROTECTION_FAILURE, KERN_RESOURCE_SHORTAGE, KERN_SUCCESS, MACH_PORT_DEAD, MACH_PORT_NULL,
    MACH_SEND_INVALID_DEST, MACH_SEND_INVALID_MEMORY,
};

use sys::{mach_msg_type_number_t, mach_port_t, vm_prot_t};

/// A `kern_return_t`: the error of every wrapper, and its name and `mach_error_string`
/// text. The same type as the host's (`machvm_abi::KernReturn`): compare it with the
/// associated constants (`KernReturn::NO_SPACE`).
pub use machvm_abi::KernReturn;

/// The typed ABI values shared with the host: protections, inheritance, `vm_allocate`'s
/// flags and port names (`Debug` spells them with the constants' names).
pub use machvm_abi::{MachPort, VmFlags, VmInherit, VmProt};

/// What `vm_region_64` / `mach_vm_region` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region<A> {
    /// First address of the region.
    pub address: A,
    /// Its length in bytes.
    pub size: A,
    /// Current protection (`VM_PROT_*`).
    pub protection: vm_prot_t,
    /// Maximum protection.
    pub max_protection: vm_prot_t,
    /// Inheritance (`VM_INHERIT_*`).
    pub inheritance: sys::vm_inherit_t,
}

impl Region<usize> {
    /// One past the last address (saturating at the top of the address space).
    pub const fn end(&self) -> usize {
        self.address.saturating_add(self.size)
    }
}

impl Region<u64> {
    /// One past the last address (saturating at the top of the address space).
    pub const fn end(&self) -> u64 {
        self.address.saturating_add(self.size)
    }
}

/// Rounds `addr` down to a multiple of `page` (a power of two).
#[inline]
pub const fn trunc_page(addr: usize, page: usize) -> usize {
    addr & !(page - 1)
}

/// Rounds `addr` up to a multiple of `page` (a power of two), wrapping to 0
/// at the top of the address space as XNU's `round_page` does.
#[inline]
pub const fn round_page(addr: usize, page: usize) -> usize {
    trunc_page(addr.wrapping_add(page - 1), page)
}

/// `"rw-"`-style rendering of a protection.
pub const fn prot_str(prot: vm_prot_t) -> &'static str {
    const S: [&str; 8] = ["---", "r--", "-w-", "rw-", "--x", "r-x", "-wx", "rwx"];
    S[(prot & VM_PROT_ALL) as usize]
}

/// `mach_task_self()`: the caller's own task port name.
#[inline]
pub fn task_self() -> mach_port_t {
    // SAFETY: no arguments, no memory access.
    unsafe { sys::mach_task_self() }
}

/// `mach_host_self()`: the host port name.
#[inline]
pub fn host_self() -> mach_port_t {
    // SAFETY: no arguments, no memory access.
    unsafe { sys::mach_host_self() }
}

/// `host_page_size(mach_host_self(), &size)`: the VM page size (4096 or 16384).
pub fn host_page_size() -> Result<usize, KernReturn> {
    let mut size: sys::vm_size_t = 0;
    // SAFETY: `size` is a valid, writable word.
    KernReturn::result(unsafe { sys::host_page_size(host_self(), &mut size) })?;
    Ok(size)
}

/// `vm_allocate(task, &addr, size, VM_FLAGS_ANYWHERE)`: maps `size` bytes
/// (rounded up to pages) of zeroes, read-write, at the lowest free address.
/// Returns the address (0 for `size == 0`).
pub fn vm_allocate(task: mach_port_t, size: usize) -> Result<usize, KernReturn> {
    let mut addr: sys::vm_address_t = 0;
    // SAFETY: ANYWHERE only maps free pages; `addr` is a valid word.
    KernReturn::result(unsafe { sys::vm_allocate(task, &mut addr, size, VM_FLAGS_ANYWHERE) })?;
    Ok(addr)
}

/// `vm_allocate` with any flags (`VM_FLAGS_FIXED`, `VM_FLAGS_OVERWRITE`, ...)
/// and address hint; returns the address mapped.
///
/// # Safety
/// With `VM_FLAGS_OVERWRITE` the range is replaced by zeroes: nothing the
/// program uses may live there.
pub unsafe fn vm_allocate_at(
    task: mach_port_t,
    address: usize,
    size: usize,
    flags: i32,
) -> Result<usize, KernReturn> {
    let mut addr: sys::vm_address_t = address;
    KernReturn::result(sys::vm_allocate(task, &mut addr, size, flags))?;
    Ok(addr)
}

/// `vm_deallocate(task, address, size)`.
///
/// # Safety
/// Unmaps the pages: nothing the program still uses may live there.
pub unsafe fn vm_deallocate(
    task: mach_port_t,
    address: usize,
    size: usize,
) -> Result<(), KernReturn> {
    KernReturn::result(sys::vm_deallocate(task, address, size))
}

/// `vm_protect(task, address, size, set_maximum, prot)`.
///
/// # Safety
/// After lowering a protection, touching the pages traps: the program must
/// not rely on accessing them (e.g. through a live reference).
pub unsafe fn vm_protect(
    task: mach_port_t,
    address: usize,
    size: usize,
    set_maximum: bool,
    prot: vm_prot_t,
) -> Result<(), KernReturn> {
    KernReturn::result(sys::vm_protect(
        task,
        address,
        size,
        set_maximum as sys::boolean_t,
        prot,
    ))
}

/// `vm_copy(task, src, size, dst)`: memmove semantics, all or nothing.
///
/// # Safety
/// Overwrites `[dst, dst + size)`: no live Rust value may be there (for the
/// caller's own task).
pub unsafe fn vm_copy(
    task: mach_port_t,
    src: usize,
    size: usize,
    dst: usize,
) -> Result<(), KernReturn> {
    KernReturn::result(sys::vm_copy(task, src, size, dst))
}

/// `vm_write(task, address, data, len)`: writes `data` into the task.
///
/// # Safety
/// Overwrites `[address, address + data.len())` (see [`vm_copy`]).
pub unsafe fn vm_write(task: mach_port_t, address: usize, data: &[u8]) -> Result<(), KernReturn> {
    let len =
        mach_msg_type_number_t::try_from(data.len()).map_err(|_| KernReturn::INVALID_ARGUMENT)?;
    KernReturn::result(sys::vm_write(
        task,
        address,
        data.as_ptr() as sys::vm_offset_t,
        len,
    ))
}

/// `vm_read_overwrite(task, address, buf.len(), buf, &outsize)`: reads the
/// task's bytes into `buf`; returns the count read.
pub fn vm_read_overwrite(
    task: mach_port_t,
    address: usize,
    buf: &mut [u8],
) -> Result<usize, KernReturn> {
    let mut out: sys::vm_size_t = 0;
    // SAFETY: the host writes at most buf.len() bytes into `buf`, which we
    // borrow mutably; `out` is a valid word.
    KernReturn::result(unsafe {
        sys::vm_read_overwrite(
            task,
            address,
            buf.len(),
            buf.as_mut_ptr() as sys::vm_address_t,
            &mut out,
        )
    })?;
    Ok(out)
}

/// `vm_read(task, address, size, &data, &count)`: copies every page the
/// range touches into a fresh allocation of the caller; returns `(data, count)`,
/// `data` pointing at the copy of `address` (the same offset within its page).
/// The caller owns the allocation and frees it with
/// [`vm_deallocate`]`(task, data, count)`.
pub fn vm_read(task: mach_port_t, address: usize, size: usize) -> Result<(usize, u32), KernReturn> {
    let mut data: sys::vm_offset_t = 0;
    let mut count: mach_msg_type_number_t = 0;
    // SAFETY: maps fresh pages only; the out-parameters are valid.
    KernReturn::result(unsafe { sys::vm_read(task, address, size, &mut data, &mut count) })?;
    Ok((data, count))
}

/// `vm_region_64(task, &addr, &size, VM_REGION_BASIC_INFO_64, ...)`: the
/// region containing `address`, or the next one above it.
pub fn vm_region_64(task: mach_port_t, address: usize) -> Result<Region<usize>, KernReturn> {
    let mut addr: sys::vm_address_t = address;
    let mut size: sys::vm_size_t = 0;
    let mut info = vm_region_basic_info_64::default();
    let mut count = VM_REGION_BASIC_INFO_COUNT_64;
    let mut object_name: mach_port_t = MACH_PORT_NULL;
    // SAFETY: every pointer is to a local of the right size.
    KernReturn::result(unsafe {
        sys::vm_region_64(
            task,
            &mut addr,
            &mut size,
            VM_REGION_BASIC_INFO_64,
            &mut info as *mut vm_region_basic_info_64 as sys::vm_region_info_t,
            &mut count,
            &mut object_name,
        )
    })?;
    Ok(Region {
        address: addr,
        size,
        protection: info.protection,
        max_protection: info.max_protection,
        inheritance: info.inheritance,
    })
}

/// `mach_vm_allocate(task, &addr, size, VM_FLAGS_ANYWHERE)`.
pub fn mach_vm_allocate(task: mach_port_t, size: u64) -> Result<u64, KernReturn> {
    let mut addr: sys::mach_vm_address_t = 0;
    // SAFETY: ANYWHERE only maps free pages.
    KernReturn::result(unsafe { sys::mach_vm_allocate(task, &mut addr, size, VM_FLAGS_ANYWHERE) })?;
    Ok(addr)
}

/// `mach_vm_deallocate`.
///
/// # Safety
/// As [`vm_deallocate`].
pub unsafe fn mach_vm_deallocate(
    task: mach_port_t,
    address: u64,
    size: u64,
) -> Result<(), KernReturn> {
    KernReturn::result(sys::mach_vm_deallocate(task, address, size))
}

/// `mach_vm_protect`.
///
/// # Safety
/// As [`vm_protect`].
pub unsafe fn mach_vm_protect(
    task: mach_port_t,
    address: u64,
    size: u64,
    set_maximum: bool,
    prot: vm_prot_t,
) -> Result<(), KernReturn> {
    KernReturn::result(sys::mach_vm_protect(
        task,
        address,
        size,
        set_maximum as sys::boolean_t,
        prot,
    ))
}

/// `mach_vm_copy`.
///
/// # Safety
/// As [`vm_copy`].
pub unsafe fn mach_vm_copy(
    task: mach_port_t,
    src: u64,
    size: u64,
    dst: u64,
) -> Result<(), KernReturn> {
    KernReturn::result(sys::mach_vm_copy(task, src, size, dst))
}

/// `mach_vm_write`.
///
/// # Safety
/// As [`vm_write`].
pub unsafe fn mach_vm_write(
    task: mach_port_t,
    address: u64,
    data: &[u8],
) -> Result<(), KernReturn> {
    let len =
        mach_msg_type_number_t::try_from(data.len()).map_err(|_| KernReturn::INVALID_ARGUMENT)?;
    KernReturn::result(sys::mach_vm_write(
        task,
        address,
        data.as_ptr() as sys::vm_offset_t,
        len,
    ))
}

/// `mach_vm_read_overwrite`: reads the task's bytes at a 64-bit address into `buf`.
pub fn mach_vm_read_overwrite(
    task: mach_port_t,
    address: u64,
    buf: &mut [u8],
) -> Result<u64, KernReturn> {
    let mut out: sys::mach_vm_size_t = 0;
    // SAFETY: as vm_read_overwrite.
    KernReturn::result(unsafe {
        sys::mach_vm_read_overwrite(
            task,
            address,
            buf.len() as u64,
            buf.as_mut_ptr() as usize as u64,
            &mut out,
        )
    })?;
    Ok(out)
}

/// `mach_vm_read`: returns `(data, count)`, a fresh allocation of the caller.
pub fn mach_vm_read(
    task: mach_port_t,
    address: u64,
    size: u64,
) -> Result<(usize, u32), KernReturn> {
    let mut data: sys::vm_offset_t = 0;
    let mut count: mach_msg_type_number_t = 0;
    // SAFETY: maps fresh pages only.
    KernReturn::result(unsafe { sys::mach_vm_read(task, address, size, &mut data, &mut count) })?;
    Ok((data, count))
}

/// `mach_vm_region(task, &addr, &size, VM_REGION_BASIC_INFO_64, ...)`.
pub fn mach_vm_region(task: mach_port_t, address: u64) -> Result<Region<u64>, KernReturn> {
    let mut addr: sys::mach_vm_address_t = address;
    let mut size: sys::mach_vm_size_t = 0;
    let mut info = vm_region_basic_info_64::default();
    let mut count = VM_REGION_BASIC_INFO_COUNT_64;
    let mut object_name: mach_port_t = MACH_PORT_NULL;
    // SAFETY: every pointer is to a local of the right size.
    KernReturn::result(unsafe {
        sys::mach_vm_region(
            task,
            &mut addr,
            &mut size,
            VM_REGION_BASIC_INFO_64,
            &mut info as *mut vm_region_basic_info_64 as sys::vm_region_info_t,
            &mut count,
            &mut object_name,
        )
    })?;
    Ok(Region {
        address: addr,
        size,
        protection: info.protection,
        max_protection: info.max_protection,
        inheritance: info.inheritance,
    })
}

#[cfg(test)]
mod tests;

//! A Rust guest of machvm (built by `guest/build.sh` into
//! `prebuilt/rust_guard.wasm`, wasm32): a buffer with a guard page, a
//! memmove-style `vm_copy` inside it, and region queries, with the typed
//! wrappers of `machvm-guest`.
//!
//! Exports:
//! * `rust_selftest() -> i32`: 0 on success, else the failing step (1..12,
//!   see [`Step`]); `last_kr()` then gives the call's `kern_return_t`
//!   (-1 for a check on data).
//! * `rust_page_size() -> i32`: the page size (`host_page_size`), or -1.
//! * `last_kr() -> i32`.
#![no_std]

use core::sync::atomic::{AtomicI32, Ordering};
use machvm_guest::{self as mach, KernReturn};

static LAST_KR: AtomicI32 = AtomicI32::new(0);

/// The steps of `rust_selftest`, numbered as its results.
#[derive(Clone, Copy)]
#[repr(i32)]
enum Step {
    PageSize = 1,
    Allocate = 2,
    ProtectGuard = 3,
    GuardRegion = 4,
    DataRegion = 5,
    Copy = 6,
    CopyData = 7,
    WriteGuard = 8,
    ReadBack = 9,
    ReadGuard = 10,
    Deallocate = 11,
    StillMapped = 12,
}

const DATA: KernReturn = KernReturn(-1);

/// Maps an error to (step, code).
trait At<T> {
    fn at(self, step: Step) -> Result<T, (Step, KernReturn)>;
}

impl<T> At<T> for Result<T, KernReturn> {
    fn at(self, step: Step) -> Result<T, (Step, KernReturn)> {
        self.map_err(|kr| (step, kr))
    }
}

fn ensure(ok: bool, step: Step) -> Result<(), (Step, KernReturn)> {
    if ok {
        Ok(())
    } else {
        Err((step, DATA))
    }
}

fn expect_err(
    r: Result<impl Sized, KernReturn>,
    want: KernReturn,
    step: Step,
) -> Result<(), (Step, KernReturn)> {
    match r {
        Err(kr) if kr == want => Ok(()),
        Err(kr) => Err((step, kr)),
        Ok(_) => Err((step, KernReturn::SUCCESS)),
    }
}

fn run() -> Result<(), (Step, KernReturn)> {
    let task = mach::task_self();
    let page = mach::host_page_size().at(Step::PageSize)?;

    // Three data pages and a guard page after them.
    let base = mach::vm_allocate(task, 4 * page).at(Step::Allocate)?;
    let guard = base + 3 * page;
    // SAFETY: the guard page is ours and nothing refers to it.
    unsafe { mach::vm_protect(task, guard, page, false, mach::VM_PROT_NONE) }
        .at(Step::ProtectGuard)?;

    let r = mach::vm_region_64(task, guard).at(Step::GuardRegion)?;
    ensure(
        r.address == guard
            && r.size >= page
            && r.protection == mach::VM_PROT_NONE
            && r.max_protection == mach::VM_PROT_ALL,
        Step::GuardRegion,
    )?;
    let r = mach::mach_vm_region(task, base as u64).at(Step::DataRegion)?;
    ensure(
        r.end() == guard as u64 && r.protection == mach::VM_PROT_DEFAULT,
        Step::DataRegion,
    )?;

    {
        // SAFETY: the three data pages are mapped RW and only used here.
        let data = unsafe { core::slice::from_raw_parts_mut(base as *mut u8, 3 * page) };
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
    }
    // Overlapping, unaligned move of two pages by 100 bytes up: a memmove.
    // SAFETY: the destination is inside our data pages, no reference is live.
    unsafe { mach::vm_copy(task, base + 7, 2 * page, base + 107) }.at(Step::Copy)?;
    {
        // SAFETY: as above; read only.
        let data = unsafe { core::slice::from_raw_parts(base as *const u8, 3 * page) };
        let moved = data[107..107 + 2 * page]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == ((i + 7) % 251) as u8);
        ensure(
            moved && data[106] == 106 && data[107 + 2 * page] == ((107 + 2 * page) % 251) as u8,
            Step::CopyData,
        )?;
    }

    // The guard answers the calls with an error instead of a trap.
    // SAFETY: the write is refused (and would hit only our guard page).
    expect_err(
        unsafe { mach::vm_write(task, guard, b"not here") },
        KernReturn::PROTECTION_FAILURE,
        Step::WriteGuard,
    )?;
    let mut buf = [0u8; 64];
    let n = mach::vm_read_overwrite(task, base + 107, &mut buf).at(Step::ReadBack)?;
    ensure(
        n == 64
            && buf
                .iter()
                .enumerate()
                .all(|(i, &b)| b == ((i + 7) % 251) as u8),
        Step::ReadBack,
    )?;
    expect_err(
        mach::vm_read_overwrite(task, guard - 8, &mut buf),
        KernReturn::PROTECTION_FAILURE,
        Step::ReadGuard,
    )?;

    // SAFETY: nothing refers to the pages any more.
    unsafe { mach::vm_deallocate(task, base, 4 * page) }.at(Step::Deallocate)?;
    match mach::vm_region_64(task, base) {
        Err(KernReturn::INVALID_ADDRESS) => Ok(()),
        Ok(r) if r.address > guard => Ok(()),
        Ok(_) => Err((Step::StillMapped, DATA)),
        Err(kr) => Err((Step::StillMapped, kr)),
    }
}

/// 0 on success, else the failing [`Step`].
#[no_mangle]
pub extern "C" fn rust_selftest() -> i32 {
    match run() {
        Ok(()) => 0,
        Err((step, kr)) => {
            LAST_KR.store(kr.0, Ordering::Relaxed);
            step as i32
        }
    }
}

/// The VM page size, or -1.
#[no_mangle]
pub extern "C" fn rust_page_size() -> i32 {
    mach::host_page_size().map_or(-1, |p| p as i32)
}

/// The `kern_return_t` of the last failed step (0 if none, -1 for data).
#[no_mangle]
pub extern "C" fn last_kr() -> i32 {
    LAST_KR.load(Ordering::Relaxed)
}

#[cfg(target_family = "wasm")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
